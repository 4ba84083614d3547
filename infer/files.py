"""Find the files to classify under the folders the user named.

Every regular file counts (images are recognised by their content later, not by
their extension), so a file that is not an image still gets its own output row.
Paths are returned as the user spelled them (joined, never resolved), in a stable
order: the arguments in the order given, and inside each folder the files sorted by
their path components (a depth-first walk with sorted entries).

Symbolic links are followed. A directory is entered at most once, identified by its
resolved real path, so a link loop (``a/loop -> ..``) or two links to the same folder
cannot repeat files. A dangling link is still listed: its row then reports
``unreadable``. FIFOs, sockets and device files are skipped (reading a FIFO would
block forever).

A directory that cannot be listed (permissions, vanished while walking) raises
:class:`GenderCliError` by default. Pass a list as ``unlistable`` to collect
``(path, OSError)`` pairs instead and carry on; ``classify`` does this and writes an
``unreadable`` row for each such directory so nothing is lost silently.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from gender_cli.errors import GenderCliError


def list_image_files(
    folders: Iterable[str | os.PathLike],
    recursive: bool = True,
    unlistable: list[tuple[Path, OSError]] | None = None,
    skip_hidden: bool = False,
) -> list[Path]:
    """Every regular file under ``folders`` (a file given directly is listed as is).

    ``skip_hidden`` leaves out files and folders whose names start with a dot inside
    the folders (``train`` reads data sets so; ``classify`` lists everything).
    """
    seen_dirs: set[str] = set()
    listed: set[Path] = set()
    files: list[Path] = []
    for folder in folders:
        root = Path(folder)
        kind = _kind(root)
        if kind == "missing":
            raise GenderCliError(f"no such file or folder: {root}")
        if kind == "dir":
            found = _walk(root, recursive, seen_dirs, unlistable, skip_hidden)
        elif kind in ("file", "dangling"):
            found = [root]
        else:
            raise GenderCliError(f"not a regular file or folder: {root}")
        for path in found:
            if path not in listed:
                listed.add(path)
                files.append(path)
    return files


def _kind(path: Path) -> str:
    """'dir', 'file', 'dangling' (a link to nothing), 'special' or 'missing'."""
    try:
        mode = os.stat(path).st_mode  # follows links
    except FileNotFoundError:
        return "dangling" if os.path.islink(path) else "missing"
    except OSError:
        return "file"  # e.g. a link loop on a file name: let the reader report it
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISREG(mode):
        return "file"
    return "special"


def _walk(
    root: Path,
    recursive: bool,
    seen_dirs: set[str],
    unlistable: list[tuple[Path, OSError]] | None,
    skip_hidden: bool,
) -> list[Path]:
    files: list[Path] = []
    stack = [root]
    while stack:
        directory = stack.pop()
        real = os.path.realpath(directory)
        if real in seen_dirs:
            continue
        seen_dirs.add(real)
        try:
            with os.scandir(directory) as entries:
                names = sorted(entry.name for entry in entries)
        except OSError as exc:
            if unlistable is None:
                raise GenderCliError(f"cannot list folder {directory}: {exc.strerror or exc}") from exc
            unlistable.append((directory, exc))
            continue
        subdirs = []
        for name in names:
            if skip_hidden and name.startswith("."):
                continue
            path = directory / name
            kind = _kind(path)
            if kind in ("file", "dangling"):
                files.append(path)
            elif kind == "dir" and recursive:
                subdirs.append(path)
        stack.extend(reversed(subdirs))
    return sorted(files, key=lambda p: p.parts)
