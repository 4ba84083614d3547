"""Where Parquet part files live, and how each one is committed: a local folder or a
prefix in an object store (``writer_parquet`` buffers the rows and encodes the parts).

A part appears whole or not at all, so neither a reader of the folder nor ``--resume``
ever sees half of one. It is first written under a hidden temporary name beside it
(``.part-00000.parquet.tmp``; dataset readers such as pyarrow, Spark and DuckDB skip
names that start with a dot), then committed:

- :class:`LocalParts` (a folder on this machine): the temporary file is fsync'ed,
  renamed to the part's name and the folder fsync'ed.
- :class:`ObjectParts` (``s3://bucket/run/``, any store pyarrow opens): the encoded
  part is uploaded to the temporary key, the size the store reports is checked against
  the bytes sent, the store copies it to the part's key (a copy becomes visible
  complete) and the temporary key is deleted. Object stores have no rename; an upload
  cut off part-way leaves at most a temporary key behind.

Opening the folder again removes temporary leftovers. Failures of an object store are
one-line errors naming the output (``object_store``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from gender_cli.errors import GenderCliError, first_line
from gender_cli.infer.object_store import missing_bucket, open_store, store_errors
from gender_cli.infer.sources import is_remote

_PART = re.compile(r"^part-(\d+)\.parquet$")
_TEMPORARY = re.compile(r"^\.part-\d+\.parquet\.tmp$")


def part_name(number: int) -> str:
    return f"part-{number:05d}.parquet"


class Parts:
    """The part files of one output folder; ``read`` goes through a pyarrow file system."""

    def __init__(self, filesystem, base: str, shown: str):
        self.filesystem = filesystem
        self.base = base.rstrip("/")
        self.shown = shown  # the output as the user named it

    def path(self, name: str) -> str:
        return f"{self.base}/{name}"

    def names(self) -> list[str]:
        """The names of the files directly in the folder."""
        raise NotImplementedError

    def remove(self, name: str) -> None:
        raise NotImplementedError

    def commit(self, name: str, data) -> None:
        """Make ``data`` (an encoded part, a pyarrow Buffer) the file ``name``, whole or not at all."""
        raise NotImplementedError

    def numbered(self) -> list[tuple[int, str]]:
        """(number, name) of each part, in order."""
        return sorted((int(m.group(1)), m.group(0)) for m in map(_PART.match, self.names()) if m)

    def remove_temporaries(self) -> None:
        """Remove what an interrupted commit left: its rows are in no part."""
        for name in self.names():
            if _TEMPORARY.match(name):
                self.remove(name)

    def read(self, name: str, columns: list[str]):
        """The column names of part ``name`` and, when they are ``columns``, its ``path``
        and ``error`` columns (else None)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            names = pq.read_schema(self.path(name), filesystem=self.filesystem).names
            table = pq.read_table(self.path(name), columns=["path", "error"],
                                  filesystem=self.filesystem) if names == columns else None
        except (pa.ArrowException, OSError) as exc:
            raise GenderCliError(f"cannot resume {self.shown}: {name} is not readable Parquet "
                                 f"({first_line(exc)})") from None
        return names, table


class LocalParts(Parts):
    """A folder on this machine: temporary file, fsync, rename, fsync the folder. Its
    own OSErrors name the file (the CLI says which, and whether the disk is full)."""

    def names(self) -> list[str]:
        return [entry.name for entry in os.scandir(self.base) if entry.is_file()]

    def remove(self, name: str) -> None:
        os.unlink(self.path(name))

    def commit(self, name: str, data) -> None:
        temporary = self.path(f".{name}.tmp")
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path(name))
        _fsync_folder(self.base)


class ObjectParts(Parts):
    """A prefix in an object store: upload to a temporary key, check it, copy, delete."""

    def names(self) -> list[str]:
        import pyarrow.fs as pafs

        with store_errors(f"cannot list {self.shown}"):
            infos = self.filesystem.get_file_info(pafs.FileSelector(self.base, allow_not_found=True))
        return [info.base_name for info in infos if info.type == pafs.FileType.File]

    def remove(self, name: str) -> None:
        with store_errors(f"cannot remove {name} from {self.shown}"):
            self.filesystem.delete_file(self.path(name))

    def commit(self, name: str, data) -> None:
        temporary = self.path(f".{name}.tmp")
        with store_errors(f"cannot write {name} to {self.shown}"):
            with self.filesystem.open_output_stream(temporary) as stream:
                stream.write(data)
            stored = self.filesystem.get_file_info(temporary).size
            if stored != data.size:
                raise GenderCliError(f"cannot write {name} to {self.shown}: the store holds {stored} of its "
                                     f"{data.size} bytes")
            self.filesystem.copy_file(temporary, self.path(name))
            self.filesystem.delete_file(temporary)


def open_parts(output: str) -> Parts:
    """The part folder ``output`` (a local folder, created if needed, or an object-store
    prefix), checked to be a folder whose parent exists."""
    if is_remote(output):
        return _open_remote(output)
    folder = Path(output)
    if folder.exists() and not folder.is_dir():
        raise GenderCliError(f"{folder} is a file; parquet output is a folder")
    if not folder.parent.is_dir():
        raise GenderCliError(f"output folder does not exist: {folder.parent}")
    folder.mkdir(exist_ok=True)
    import pyarrow.fs as pafs

    return LocalParts(pafs.LocalFileSystem(), str(folder.resolve()), output)


def holds_files(uri: str) -> bool:
    """Whether the object-store folder ``uri`` holds anything (an output that a run would
    replace); a missing bucket or an unreachable store is a one-line error."""
    return bool(_open_remote(uri).names())


def _open_remote(uri: str) -> ObjectParts:
    import pyarrow.fs as pafs

    filesystem, base = open_store(uri)
    with store_errors(f"cannot open {uri}"):
        info = filesystem.get_file_info(base.rstrip("/"))
        bucket = missing_bucket(filesystem, base) if info.type == pafs.FileType.NotFound else None
    if bucket:
        raise GenderCliError(f"no such bucket: {bucket} ({uri})")
    if info.type == pafs.FileType.File:
        raise GenderCliError(f"{uri} is an object; parquet output is a folder (a prefix ending in /)")
    return ObjectParts(filesystem, base, uri)


def _fsync_folder(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
