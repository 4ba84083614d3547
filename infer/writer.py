"""Where the rows go: the row-writer interface and the table of output formats.

Three writers implement :class:`RowWriter`: CSV and JSONL (``writer_text``, one file
appended durably per batch, or stdout) and Parquet (``writer_parquet``, a folder of
part files). :data:`FORMATS` is the one table that says, per format, which extensions
name it, whether it is a folder, whether it can hold one row per face, and its default
output; :func:`resolve_format` and :func:`open_writer` read it, and so do the CLI's
help and checks.

Columns (every format): ``path``, the face columns with face detection (``face``,
``faces``, ``box``, ``detector_score``), ``label`` and one ``p_<label>`` per label in
the model's output order (with a gender head), one column per value head (``age``, in
years), ``error`` (empty, or ``"category: message"``; a row that failed has empty
label, probabilities and values).

``open_writer(..., resume=True)`` returns what the output already holds
(:class:`ExistingRows`), so those files are skipped; each writer's module says how it
stays valid when interrupted.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from gender_cli.errors import GenderCliError
from gender_cli.infer.rows import Columns, Row

STDOUT = "-"


class RowWriter(Protocol):
    """Writes rows where a run's output goes; each ``write`` leaves a valid output."""

    output: str
    fmt: str

    def write(self, rows: Sequence[Row]) -> None:
        """Append ``rows``."""

    def write_columns(self, columns: dict[str, np.ndarray]) -> None:
        """Append rows given as columns (``row_columns``)."""

    def close(self) -> None:
        """Finish the output (write what is buffered, release the file)."""

    def __enter__(self) -> RowWriter: ...

    def __exit__(self, *exc) -> None: ...


@dataclass
class ExistingRows:
    """What a resumed output already holds: path -> error category (None when classified)."""

    categories: dict[str, str | None] = field(default_factory=dict)
    cut_bytes: int = 0  # size of a partial last row that was removed
    redone: int = 0  # paths whose incomplete rows were removed (done again)


@dataclass(frozen=True)
class Format:
    name: str
    extensions: tuple[str, ...]  # output names that choose this format
    folder: bool  # a folder of part files, never stdout
    faces: bool  # holds one row per face (the face columns)
    default_output: str
    module: str  # the writer's module under gender_cli.infer: its open_output(...) opens one
    needs: str | None = None  # the module it needs beyond the core install (the [ray] extra has it)


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("csv", (".csv",), folder=False, faces=True, default_output="predictions.csv", module="writer_text"),
        Format("jsonl", (".jsonl", ".ndjson"), folder=False, faces=True, default_output="predictions.jsonl",
               module="writer_text"),
        Format("parquet", (".parquet",), folder=True, faces=False, default_output="predictions.parquet",
               module="writer_parquet", needs="pyarrow"),
    )
}
DEFAULT_FORMAT = "csv"


def resolve_format(output: str | None, fmt: str | None) -> str:
    """``fmt`` when given, else the format the output's extension names (CSV otherwise)."""
    if fmt:
        if fmt not in FORMATS:
            raise GenderCliError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        return fmt
    if output and output != STDOUT:
        suffix = Path(output).suffix.lower()
        for spec in FORMATS.values():
            if suffix in spec.extensions:
                return spec.name
    return DEFAULT_FORMAT


def open_writer(
    output: str,
    fmt: str,
    columns: Columns,
    resume: bool = False,
    incomplete: Callable[[list[dict]], set[str]] | None = None,
) -> tuple[RowWriter, ExistingRows]:
    """Open ``output`` ("-": stdout) for rows in format ``fmt`` with ``columns``.

    Without ``resume`` the output is started afresh. With ``resume`` an existing output
    is checked (same format and columns), a partial last row is cut off, and the rows
    already present are returned so their paths can be skipped; ``incomplete(records)``
    names paths whose rows are not all there (a photo's faces): they are cut off too.
    """
    spec = FORMATS.get(fmt)
    if spec is None:
        raise GenderCliError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if columns.extra and not spec.faces:
        raise GenderCliError(f"{fmt} output holds one row per file; write the face rows as CSV or JSONL")
    # by name from the table: the writers depend on this module, never the other way round
    writers = importlib.import_module(f"gender_cli.infer.{spec.module}")
    return writers.open_output(output, fmt, columns, resume=resume, incomplete=incomplete)
