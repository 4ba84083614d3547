"""Read a ``classify`` output back (CSV, JSONL, or a Parquet folder) for ``report``.

The columns are the ones the writers (``infer.writer``) write: ``path``, the face columns with
``--detect`` (``face``, ``faces``, ``box``, ``detector_score``), ``label`` and one
``p_<label>`` per label (graphs with the gender head), ``age`` (the age head),
``error``. The labels are the ``p_<label>`` columns, in their order. A Parquet folder
needs pyarrow (the ``[ray]`` extra).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from gender_cli.errors import GenderCliError
from gender_cli.infer.rows import category_of
from gender_cli.infer.writer import resolve_format

REQUIRED = ("path", "error")


@dataclass
class PredictionRow:
    path: str
    label: str | None
    probabilities: dict[str, float] | None  # label -> probability; None for a failed file
    age: float | None
    error: str | None
    box: list[int] | None = None  # x, y, w, h of the face (classify --detect)

    @property
    def category(self) -> str | None:
        return category_of(self.error)


@dataclass
class Predictions:
    source: Path
    labels: list[str]  # in the order of the p_<label> columns; [] without the gender head
    rows: list[PredictionRow]
    faces: bool  # one row per face (classify --detect)
    ages: bool  # an age column


def read_predictions(path: str | Path, fmt: str | None = None) -> Predictions:
    """Every row of a classify output; GenderCliError naming the file (and line) when it
    is not one."""
    path = Path(path)
    if not path.exists():
        raise GenderCliError(f"{path} does not exist; give the output of 'gender-cli classify'")
    fmt = "parquet" if path.is_dir() else resolve_format(str(path), fmt)
    try:
        columns, records = {"csv": _csv, "jsonl": _jsonl, "parquet": _parquet}[fmt](path)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise GenderCliError(f"cannot read {path}: {exc}") from exc
    missing = [name for name in REQUIRED if name not in columns]
    if missing:
        raise GenderCliError(f"{path} is not a 'gender-cli classify' output: no {', '.join(missing)} column "
                             f"(columns: {', '.join(columns) or 'none'})")
    labels = [name[2:] for name in columns if name.startswith("p_")]
    rows = [_row(record, labels, path, number) for number, record in records]
    return Predictions(path, labels, rows, "box" in columns, "age" in columns)


def _number(value, what: str, where: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise GenderCliError(f"{where}: {what} {value!r} is not a number") from None


def _row(record: dict, labels: list[str], path: Path, number: int) -> PredictionRow:
    where = f"{path}:{number}"
    error = record.get("error") or None
    probabilities = None
    if labels and not error:
        probabilities = {label: _number(record.get(f"p_{label}"), f"p_{label}", where) for label in labels}
        if any(p is None for p in probabilities.values()):
            raise GenderCliError(f"{where}: a classified row without its probabilities")
    box = record.get("box")
    if isinstance(box, str):
        box = [int(v) for v in box.split()] if box.strip() else None
    return PredictionRow(str(record.get("path") or ""), record.get("label") or None, probabilities,
                         _number(record.get("age"), "age", where), error, list(box) if box else None)


def _csv(path: Path):
    with path.open(newline="", encoding="utf-8", errors="surrogateescape") as fh:
        reader = csv.DictReader(fh)
        columns = list(reader.fieldnames or [])
        return columns, [(number, record) for number, record in enumerate(reader, start=2)]


def _jsonl(path: Path):
    records, columns = [], []
    with path.open(encoding="utf-8", errors="surrogateescape") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                raise GenderCliError(f"{path}:{number} is not a JSON line") from None
            if not isinstance(record, dict):
                raise GenderCliError(f"{path}:{number} is not a JSON object")
            columns = columns or list(record)
            records.append((number, record))
    return columns, records


def _parquet(path: Path):
    try:
        import pyarrow.dataset as ds
    except ModuleNotFoundError:
        raise GenderCliError("reading a Parquet output needs pyarrow: pip install 'gender-cli[ray]'") from None
    table = ds.dataset(str(path), format="parquet").to_table()
    return list(table.column_names), list(enumerate(table.to_pylist(), start=1))
