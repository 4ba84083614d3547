"""What ``classify`` reads: local folders, and URIs that pyarrow file systems open.

A source is a local path, a ``file://`` URI, or any other URI pyarrow understands
(``s3://bucket/faces``, ``gs://...``, ``abfs://...``, ``hdfs://...``). Rows name files
the way the source was spelled: ``folder/a.jpg``, ``file:///data/a.jpg``,
``s3://bucket/faces/a.jpg``.

- Local paths and ``file://`` URIs are listed by ``files.list_image_files`` and read
  from the local disk: the same rules as the local engine (links followed, each folder
  once, a dangling link is an ``unreadable`` row, an unlistable folder is a row).
  pyarrow's own local listing is not used: it follows a link loop about forty levels
  deep and silently drops dangling links.
- Other URIs are listed by pyarrow (``FileSelector``, sorted by path) and read through
  the same file system object, which travels to the decode tasks (pyarrow file systems
  pickle). Object stores have no links, so nothing else is needed; ``object_store``
  says which of their errors are a file's row and which stop the run.

Both engines list and read through this module. On a Ray cluster, local paths must
name the same files on every node (a shared disk); an object-store URI needs nothing
shared.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from gender_cli.errors import GenderCliError
from gender_cli.infer.files import list_image_files
from gender_cli.infer.object_store import missing_bucket, open_store, read_object, store_errors

FILE_SCHEME = "file://"
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_uri(source: str | os.PathLike) -> bool:
    return isinstance(source, str) and bool(_URI.match(source))


def is_remote(source: str | os.PathLike) -> bool:
    """A URI that pyarrow opens (an object store, HDFS, ...): anything but a local path or ``file://``."""
    return is_uri(source) and not str(source).startswith(FILE_SCHEME)


@dataclass(frozen=True)
class RemoteRoot:
    """A listed URI: rows under ``prefix`` are read from ``filesystem`` at ``base`` + the rest."""

    prefix: str
    filesystem: object  # pyarrow.fs.FileSystem
    base: str


@dataclass
class Listing:
    files: list[str] = field(default_factory=list)  # as rows will name them, in listing order
    unlistable: list[tuple[str, OSError]] = field(default_factory=list)
    roots: list[RemoteRoot] = field(default_factory=list)


def list_sources(sources: Sequence[str | os.PathLike], recursive: bool = True) -> Listing:
    """Every file under ``sources``, each once, in the order of the arguments."""
    listing = Listing()
    seen: set[str] = set()

    def add(name: str) -> None:
        if name not in seen:
            seen.add(name)
            listing.files.append(name)

    for source in sources:
        if is_remote(source):
            root, names = _list_remote(str(source), recursive)
            listing.roots.append(root)
        else:
            prefix = FILE_SCHEME if is_uri(source) else ""
            unlistable: list[tuple[Path, OSError]] = []
            names = [prefix + str(p) for p in list_image_files([local_path(source)], recursive, unlistable)]
            listing.unlistable += [(prefix + str(p), exc) for p, exc in unlistable]
        for name in names:
            add(name)
    return listing


def without(files: list[str], targets: Sequence[str | os.PathLike | None]) -> list[str]:
    """``files`` less those that are, or lie inside, one of ``targets`` (the run's own
    output, a Parquet folder, the crops and drawings it writes): what a run writes into a
    folder it classifies must not become its input."""
    roots = [str(t).rstrip("/") if is_remote(t) else os.path.realpath(t) for t in targets if t and str(t) != "-"]
    return [name for name in files if not any(_inside(name, root) for root in roots)] if roots else files


def _inside(name: str, root: str) -> bool:
    if is_remote(name) or is_remote(root):
        return name == root or name.startswith(root + "/")
    real = os.path.realpath(local_path(name))
    return real == root or real.startswith(root + os.sep)


def local_path(source: str | os.PathLike) -> str | os.PathLike:
    """A ``file://`` URI as a local path; anything else unchanged."""
    if not (isinstance(source, str) and source.startswith(FILE_SCHEME)):
        return source
    parsed = urlparse(source)
    if parsed.netloc not in ("", "localhost"):
        raise GenderCliError(f"{source}: a file:// URI names a file on this machine (file:///path), not on {parsed.netloc}")
    return unquote(parsed.path)


def _list_remote(uri: str, recursive: bool) -> tuple[RemoteRoot, list[str]]:
    import pyarrow.fs as pafs

    filesystem, base = open_store(uri)
    with store_errors(f"cannot open {uri}"):
        info = filesystem.get_file_info(base)
        if info.type == pafs.FileType.NotFound:
            bucket = missing_bucket(filesystem, base)
            raise GenderCliError(f"no such bucket: {bucket} ({uri})" if bucket else f"no such file or folder: {uri}")
    if info.type == pafs.FileType.File:
        return RemoteRoot(uri, filesystem, base), [uri]
    prefix, base = uri.rstrip("/") + "/", base.rstrip("/") + "/"
    with store_errors(f"cannot list {uri}"):
        infos = filesystem.get_file_info(pafs.FileSelector(base, recursive=recursive))
    paths = sorted(i.path for i in infos if i.type == pafs.FileType.File)
    return RemoteRoot(prefix, filesystem, base), [prefix + p[len(base):] for p in paths]


class Reader:
    """Reads a listed file by the name its row carries (picklable: it travels to decode tasks)."""

    def __init__(self, roots: Sequence[RemoteRoot] = ()):
        self.roots = sorted(roots, key=lambda r: len(r.prefix), reverse=True)  # the most specific first

    @property
    def remote(self) -> bool:
        """Whether some files come from an object store (reads that wait on the network)."""
        return bool(self.roots)

    def __call__(self, name: str | os.PathLike) -> bytes:
        name = str(name)
        for root in self.roots:
            if name == root.prefix:
                location = root.base
            elif root.prefix.endswith("/") and name.startswith(root.prefix):
                location = root.base + name[len(root.prefix):]
            else:
                continue
            return read_object(root.filesystem, location, root.base, name)
        return Path(local_path(name)).read_bytes()
