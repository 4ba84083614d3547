"""Predictions as a folder of Parquet part files (``--format parquet``, for very large runs):
the third :class:`~gender_cli.infer.writer.RowWriter`.

Layout: ``OUTPUT/part-00000.parquet``, ``part-00001.parquet``, ... Each part is a
complete Parquet file with the columns of the CSV/JSONL output: ``path`` and ``label``
(strings), ``p_<label>`` (doubles, unrounded), ``age`` for a graph with the age head
(double, unrounded years), ``error`` (string); a failed file has nulls where CSV has
empty cells. Any reader of a Parquet folder reads it whole
(pyarrow.dataset, pandas, DuckDB, Spark, Ray Data). Parquet strings are UTF-8: a file
name that is not valid UTF-8 is stored with its stray bytes as ``\\xNN`` escapes, and a
resumed run does not recognise it (that file gets a second row; CSV/JSONL keep the
exact bytes and have no such gap).

Durability: rows are buffered and written as one part every ``rows_per_part`` rows or
``seconds_per_part`` seconds, and at close (Ctrl-C included). Each part is committed
whole (``parquet_parts``: a temporary name, then a rename in a local folder or a copy
in an object store), so the folder only ever holds complete parts; a hard kill loses
at most the rows buffered since the last part, and ``--resume`` classifies those files
again. Resuming reads the ``path`` and ``error`` columns of the parts present (stray
temporary files are removed) and appends parts numbered after them.

The folder may be a prefix in an object store (``-o s3://bucket/run/``): the same
parts, committed the same way, and read back by ``--resume`` from there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gender_cli.errors import GenderCliError
from gender_cli.infer.parquet_parts import Parts, open_parts, part_name
from gender_cli.infer.row_columns import decode_names, rows_to_columns
from gender_cli.infer.rows import Columns, Row, category_of
from gender_cli.infer.writer import STDOUT, ExistingRows

ROWS_PER_PART = 100_000
SECONDS_PER_PART = 60.0


def schema(columns: Columns) -> pa.Schema:
    gender = [pa.string()] if columns.labels else []
    types = [pa.string(), *gender, *[pa.float64()] * (len(columns.labels) + len(columns.values)), pa.string()]
    return pa.schema(list(zip(columns.names, types)))


class ParquetWriter:
    """Buffers rows and writes them as numbered part files, each committed whole. Rows come
    as ``Row`` objects (``write``) or as columns (``write_columns``, the Ray engine's
    blocks, turned into Arrow arrays without a Python object per row)."""

    def __init__(
        self,
        parts: Parts,
        columns: Columns,
        next_part: int = 0,
        rows_per_part: int = ROWS_PER_PART,
        seconds_per_part: float = SECONDS_PER_PART,
    ):
        self.output = parts.shown
        self.fmt = "parquet"
        self.labels, self.values = columns.labels, columns.values
        self.parts = parts
        self.schema = schema(columns)
        self.rows_per_part = rows_per_part
        self.seconds_per_part = seconds_per_part
        self._next_part = next_part
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._since = time.monotonic()

    def write(self, rows: Sequence[Row]) -> None:
        if rows:
            self.write_columns(rows_to_columns(rows, len(self.labels), self.values))

    def write_columns(self, columns) -> None:
        table = self._table(columns)
        self._pending.append(table)
        self._pending_rows += table.num_rows
        if self._pending_rows >= self.rows_per_part or (
            self._pending_rows and time.monotonic() - self._since >= self.seconds_per_part
        ):
            self.flush()

    def flush(self) -> None:
        if not self._pending_rows:
            return
        encoded = pa.BufferOutputStream()
        pq.write_table(pa.concat_tables(self._pending), encoded)
        self.parts.commit(part_name(self._next_part), encoded.getvalue())
        self._next_part += 1
        self._pending = []
        self._pending_rows = 0
        self._since = time.monotonic()

    def _table(self, columns) -> pa.Table:
        failed = np.asarray(columns["error"] != "", dtype=bool)
        names = pa.array(list(columns["path"]), pa.binary())
        try:
            paths = names.cast(pa.string())  # checks that every name is UTF-8
        except pa.ArrowInvalid:
            paths = pa.array([_utf8(name) for name in decode_names(columns["path"])], pa.string())
        data = {"path": paths}
        if self.labels:
            data["label"] = pa.array(columns["label"], pa.string(), mask=failed)
        for index, label in enumerate(self.labels):
            data[f"p_{label}"] = pa.array(columns["probabilities"][:, index], pa.float64(), mask=failed)
        for name in self.values:
            data[name] = pa.array(columns[name], pa.float64(), mask=failed)
        data["error"] = pa.array(columns["error"], pa.string(), mask=~failed)
        return pa.Table.from_pydict(data, schema=self.schema)

    def close(self) -> None:
        self.flush()

    def __enter__(self) -> ParquetWriter:
        return self

    def __exit__(self, kind, *exc) -> None:
        # When the run already failed (a lost store fails the last part too), its error is
        # the one to report; the rows of a part that could not be written are redone by --resume.
        try:
            self.close()
        except Exception:
            if kind is None:
                raise


def open_output(
    output: str, fmt: str, columns: Columns, resume: bool = False,
    incomplete: Callable[[list[dict]], set[str]] | None = None,
) -> tuple[ParquetWriter, ExistingRows]:
    """Open the folder ``output`` (local, or an object-store prefix) for Parquet parts;
    with ``resume``, read what it holds (see ``writer.open_writer``; one row per file: no
    ``extra`` columns).

    Without ``resume`` the parts already there are removed (the request refuses an
    output with rows unless it says ``force``); other files in the folder are left alone.
    """
    if columns.extra or incomplete is not None:
        raise GenderCliError("parquet output holds one row per file; write the face rows as CSV or JSONL")
    if output == STDOUT:
        raise GenderCliError("parquet output is a folder of files; give a folder name, not '-'")
    parts = open_parts(output)
    parts.remove_temporaries()
    numbered = parts.numbered()
    existing = ExistingRows()
    if resume:
        expected = columns.names
        for _, name in numbered:
            names, table = parts.read(name, expected)
            if table is None:
                raise GenderCliError(
                    f"cannot resume {output}: {name} has the columns {names}, not {expected} "
                    "(another model?); choose a new output or --force"
                )
            for path, error in zip(table.column("path").to_pylist(), table.column("error").to_pylist()):
                existing.categories[path] = category_of(error)
    else:
        for _, name in numbered:
            parts.remove(name)
        numbered = []
    next_part = numbered[-1][0] + 1 if numbered else 0
    return ParquetWriter(parts, columns, next_part=next_part), existing


def _utf8(name: str) -> str:
    return name.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="backslashreplace")
