"""CSV and JSONL prediction files that are valid at every moment, and can be resumed.

Two :class:`~gender_cli.infer.writer.RowWriter` implementations, :class:`CsvWriter`
and :class:`JsonlWriter`, on one appending base; the columns are ``writer``'s. In CSV
probabilities have 6 decimals and values (age) 2, an empty cell stands for a missing
value and a list (a face's box) is written with spaces between its items; in JSONL
numbers are rounded alike, missing values are ``null`` and lists are JSON lists.

Durability: each batch's rows are encoded first and written with one ``write`` on a
file opened for appending. An interruption of the run (Ctrl-C, a kill) therefore
leaves only complete rows, every row written so far in the file: the kernel holds
what was written whatever becomes of the process. A write that fails (a full disk) is
cut back to the last complete row. The file is fsync'ed when at least
:data:`FSYNC_SECONDS` have passed since the last fsync, and when it is closed, so a
crash of the machine itself loses at most that long of rows (as Parquet parts lose
what their last part had not reached); a crash in the middle of a write can at worst
leave one partial last row, which ``open_output(..., resume=True)`` cuts off before
appending, and a resumed run classifies the lost files again. An fsync per batch made
the run wait for the disk about 30 times a second with a fast model
(docs/decisions.md). Resuming reads the paths already present so they are skipped; with
``incomplete`` (rows that come in groups, as a photo's faces do) the rows of paths
whose group is not whole are cut off too, so those files are done again.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from gender_cli.atomic import names_file, write_all
from gender_cli.errors import GenderCliError
from gender_cli.infer.row_columns import columns_to_rows
from gender_cli.infer.rows import Columns, Row, category_of
from gender_cli.infer.writer import STDOUT, ExistingRows

FSYNC_SECONDS = 1.0  # at most this long of written rows are not yet on disk (a machine crash loses them)
PROBABILITY_DIGITS = 6
VALUE_DIGITS = 2  # age in years: a hundredth of a year is under four days


def _extra_cells(row: Row, extra: Sequence[str]) -> list:
    return [*row.extra, *[None] * (len(extra) - len(row.extra))]


def _csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return " ".join(str(item) for item in value)
    return str(value)


def _numbers(row: Row, labels: Sequence[str], values: Sequence[str]) -> list[tuple[float | None, int]]:
    """(number or None, digits) for each probability and value column of ``row``."""
    probabilities = row.probabilities if row.probabilities is not None else [None] * len(labels)
    cells = [(p, PROBABILITY_DIGITS) for p in probabilities] if labels else []
    return cells + [(row.values[name] if row.values else None, VALUE_DIGITS) for name in values]


class AppendingWriter:
    """Appends encoded batches to a file (durably) or to stdout; subclasses encode."""

    fmt = ""

    def __init__(self, output: str, columns: Columns, fd: int | None):
        self.output = output
        self.labels, self.values, self.extra = columns.labels, columns.values, columns.extra
        self.header = columns.names
        self._fd = fd
        self._synced = time.monotonic()

    def encode(self, rows: Iterable[Row]) -> str:
        raise NotImplementedError

    def heading(self) -> str:
        """What a new output starts with."""
        return ""

    def records(self, text: str, path: Path) -> tuple[list[dict], list[int]]:
        """The complete rows of an output's ``text`` and the character offset where each
        ends (``ends[0]``: where the rows start); raises when ``text`` is not this
        writer's output with these columns."""
        raise NotImplementedError

    def write(self, rows: Sequence[Row]) -> None:
        if not rows:
            return
        text = self.encode(rows)
        if self._fd is None:
            _write_stdout(text)
            return
        before = os.fstat(self._fd).st_size
        try:
            with names_file(self.output):
                write_all(self._fd, _to_bytes(text))
                if time.monotonic() - self._synced >= FSYNC_SECONDS:
                    self._sync()
        except OSError:
            _cut(self._fd, before)  # a full disk leaves no torn row behind
            raise

    def _sync(self) -> None:
        _sync(self._fd)
        self._synced = time.monotonic()

    def write_columns(self, columns) -> None:
        self.write(columns_to_rows(columns, self.values))

    def close(self) -> None:
        if self._fd is not None:
            try:
                with names_file(self.output):
                    self._sync()
            finally:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> AppendingWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class CsvWriter(AppendingWriter):
    fmt = "csv"

    def encode(self, rows: Iterable[Row]) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        for row in rows:
            cells = [_csv_cell(value) for value in _extra_cells(row, self.extra)]
            label = [row.label or ""] if self.labels else []
            numbers = ["" if v is None else f"{v:.{d}f}" for v, d in _numbers(row, self.labels, self.values)]
            writer.writerow([row.path, *cells, *label, *numbers, row.error or ""])
        return buffer.getvalue()

    def heading(self) -> str:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(self.header)
        return buffer.getvalue()

    def records(self, text: str, path: Path) -> tuple[list[dict], list[int]]:
        return _csv_records(text, self.header, path)


class JsonlWriter(AppendingWriter):
    fmt = "jsonl"

    def encode(self, rows: Iterable[Row]) -> str:
        buffer = io.StringIO()
        for row in rows:
            label = [row.label] if self.labels else []
            numbers = [None if v is None else round(float(v), d) for v, d in _numbers(row, self.labels, self.values)]
            cells = [row.path, *_extra_cells(row, self.extra), *label, *numbers, row.error]
            buffer.write(json.dumps(dict(zip(self.header, cells)), ensure_ascii=False) + "\n")
        return buffer.getvalue()

    def records(self, text: str, path: Path) -> tuple[list[dict], list[int]]:
        return _jsonl_records(text, self.header, path)


WRITERS: dict[str, type[AppendingWriter]] = {"csv": CsvWriter, "jsonl": JsonlWriter}


def open_output(
    output: str, fmt: str, columns: Columns, resume: bool = False,
    incomplete: Callable[[list[dict]], set[str]] | None = None,
) -> tuple[AppendingWriter, ExistingRows]:
    """Open ``output`` for CSV or JSONL rows (see ``writer.open_writer``)."""
    writer_class = WRITERS[fmt]
    if output == STDOUT:
        writer = writer_class(output, columns, None)
        if writer.heading():
            _write_stdout(writer.heading())
        return writer, ExistingRows()

    path = Path(output)
    if resume and path.is_file() and path.stat().st_size > 0:
        probe = writer_class(output, columns, None)
        existing = _read_existing(path, probe, incomplete)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        return writer_class(output, columns, fd), existing

    if path.parent and not path.parent.is_dir():
        if path.parent.exists():
            raise GenderCliError(f"output folder {path.parent} is a file, not a folder")
        raise GenderCliError(f"output folder does not exist: {path.parent}")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
    except OSError as exc:
        raise GenderCliError(f"cannot write {path}: {exc.strerror or exc}") from None
    writer = writer_class(output, columns, fd)
    if writer.heading():
        with names_file(path):
            write_all(fd, _to_bytes(writer.heading()))
            _sync(fd)
    return writer, ExistingRows()


def _sync(fd: int) -> None:
    """fsync, except for what cannot be synced (``-o /dev/null``, a pipe: EINVAL)."""
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise


def _cut(fd: int, size: int) -> None:
    try:
        os.ftruncate(fd, size)
    except OSError:
        pass  # resume cuts a partial last row anyway


def _to_bytes(text: str) -> bytes:
    # surrogateescape: file names that are not valid UTF-8 keep their exact bytes
    return text.encode("utf-8", errors="surrogateescape")


def _write_stdout(text: str) -> None:
    stream = getattr(sys.stdout, "buffer", None)
    if stream is None:  # a text-only stream (e.g. a test runner's capture)
        sys.stdout.write(text)
    else:
        sys.stdout.flush()
        stream.write(_to_bytes(text))
        stream.flush()


def _read_existing(
    path: Path, writer: AppendingWriter, incomplete: Callable[[list[dict]], set[str]] | None = None
) -> ExistingRows:
    data = path.read_bytes()
    text = data.decode("utf-8", errors="surrogateescape")  # byte-exact round trip
    records, ends = writer.records(text, path)
    fmt = writer.fmt
    complete_chars = ends[-1]
    if text[complete_chars:].endswith("\n"):
        # an interrupted write never ends with a newline: this is damage, not a cut
        line = text[:complete_chars].count("\n") + 1
        raise GenderCliError(
            f"cannot resume {path}: line {line} is not a valid {fmt.upper()} prediction row; "
            "fix or remove it, or start over with --force"
        )
    existing = ExistingRows()
    complete_bytes = len(text[:complete_chars].encode("utf-8", errors="surrogateescape"))
    existing.cut_bytes = len(data) - complete_bytes
    if incomplete is not None:
        keep, existing.redone = _whole_groups(records, incomplete(records), path)
        records = records[:keep]
        complete_bytes = len(text[: ends[keep]].encode("utf-8", errors="surrogateescape"))
    for record in records:
        error = record.get("error") or None
        existing.categories[record["path"]] = category_of(error)
    if complete_bytes < len(data):
        with open(path, "r+b") as handle:
            handle.truncate(complete_bytes)
    return existing


def _whole_groups(records: list[dict], incomplete: set[str], path: Path) -> tuple[int, int]:
    """How many leading records to keep so that no incomplete path remains, and how many
    paths that drops. Rows are written in order, so an incomplete path can only be among
    the last ones written; anywhere else the file was edited and resuming would guess."""
    if not incomplete:
        return len(records), 0
    first = next(i for i, record in enumerate(records) if record["path"] in incomplete)
    stray = next((r["path"] for r in records[first:] if r["path"] not in incomplete), None)
    if stray is not None:
        raise GenderCliError(
            f"cannot resume {path}: the rows of {records[first]['path']} are incomplete but are "
            f"followed by rows of {stray}; fix or remove them, or start over with --force"
        )
    return first, len(incomplete)


def _lines_with_offsets(text: str):
    """Lines (with their newline) and the character offset just after each."""
    offset = 0
    for line in text.splitlines(keepends=True):
        offset += len(line)
        yield line, offset


def _ends_line(text: str, offset: int) -> bool:
    return offset > 0 and text[offset - 1] == "\n"


def _csv_records(text: str, header: list[str], path: Path) -> tuple[list[dict], list[int]]:
    """The complete rows, and the character offset where each ends (``ends[0]``: the
    header's end; ``ends[i]``: row i-1's)."""
    state = {"offset": 0}

    def feed():
        for line, offset in _lines_with_offsets(text):
            state["offset"] = offset
            yield line

    reader = csv.reader(feed(), strict=True)
    records: list[dict] = []
    try:
        first = next(reader)
    except (StopIteration, csv.Error):
        first = None
    if first != header:
        raise GenderCliError(
            f"cannot resume {path}: its header {first} differs from {header} "
            "(another model or format?); choose a new output or --force"
        )
    ends = [state["offset"] if _ends_line(text, state["offset"]) else 0]
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error:  # an unterminated quote: a partial last row
            break
        if len(fields) != len(header) or not _ends_line(text, state["offset"]):
            break
        records.append(dict(zip(header, fields)))
        ends.append(state["offset"])
    return records, ends


def _jsonl_records(text: str, header: list[str], path: Path) -> tuple[list[dict], list[int]]:
    records: list[dict] = []
    ends = [0]
    for number, (line, offset) in enumerate(_lines_with_offsets(text)):
        try:
            record = json.loads(line) if line.endswith("\n") else None
        except ValueError:
            record = None
        if not isinstance(record, dict) or list(record) != header:
            if number == 0:
                raise GenderCliError(
                    f"cannot resume {path}: it is not a JSONL predictions file with the fields "
                    f"{header}; choose a new output or --force"
                )
            break
        records.append(record)
        ends.append(offset)
    return records, ends
