"""Write a whole file or nothing, and say which file when writing fails.

``write_bytes_atomically`` writes a temporary file beside the target, fsyncs and
renames it; ``write_inside`` does it under a folder without following any link there; ``atomic_path`` does the same for writers that need a file name (h5py,
SciPy, a streamed write). ``names_file`` makes any write's OSError name its file: ``os.write`` and
file objects raise ENOSPC (disk full) without a file name, which the CLI could not
turn into a one-line message.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence


FULL_DISK = (errno.ENOSPC, errno.EDQUOT)  # the errors that mean "no room left"


def _temporary(path: Path) -> tuple[Path, int]:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for open()


def write_bytes_atomically(path: str | os.PathLike, data: bytes) -> Path:
    """Replace ``path`` with ``data``; an interruption leaves the old file (or none)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp, fd = _temporary(path)
    try:
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        raise with_filename(exc, path) from None
    return path


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` for a writer that needs a file name; once the
    block ends without error it becomes ``path`` (an error removes it, naming ``path``)."""
    path = Path(path)
    tmp, fd = _temporary(path)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        raise with_filename(exc, path) from None


@contextmanager
def names_file(path: str | os.PathLike):
    """Run a block that writes ``path``; an OSError that names no file (a full disk:
    ``write`` raises ENOSPC without one) is raised again naming ``path``."""
    try:
        yield
    except OSError as exc:
        raise with_filename(exc, path) from None


def with_filename(exc: BaseException, path: str | os.PathLike) -> BaseException:
    """An OSError that names ``path`` when it named no file (``os.write`` on a full disk
    raises ENOSPC without one), so the CLI can say which file could not be written."""
    if isinstance(exc, OSError) and exc.filename is None and exc.errno is not None:
        return type(exc)(exc.errno, exc.strerror, str(path))
    return exc


def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until every byte is written (it may write fewer than asked)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def write_json_atomically(path: str | os.PathLike, data) -> Path:
    """``data`` as indented JSON (NumPy scalars and arrays, paths and the rest as text)."""
    text = json.dumps(data, indent=2, default=_json_default) + "\n"
    return write_bytes_atomically(path, text.encode("utf-8"))


def _json_default(value):
    import numpy as np

    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def write_inside(folder: str | os.PathLike, parts: Sequence[str], data: bytes) -> Path:
    """Write ``data`` as ``folder/parts[0]/.../parts[-1]``, creating the folders between,
    without following a link anywhere below ``folder``: a link planted there (to a folder
    or a file elsewhere) makes this raise OSError (ELOOP) instead of writing through it.
    The file appears whole: a temporary file in its folder, renamed over it (a link in
    its place is replaced, never followed). ``folder`` itself is the caller's. Where the
    system cannot open relative to a folder (Windows), a plain atomic write."""
    target = Path(folder).joinpath(*parts)
    if os.open not in os.supports_dir_fd or not hasattr(os, "O_NOFOLLOW"):
        return write_bytes_atomically(target, data)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            try:
                os.mkdir(part, dir_fd=fd)
            except FileExistsError:
                pass
            try:
                inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise OSError(errno.ELOOP, "a link or a file stands where a folder is written",
                                  str(target)) from None
                raise with_filename(exc, target) from None
            os.close(fd)
            fd = inner
        name = parts[-1]
        temporary = f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        out = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666, dir_fd=fd)
        try:
            try:
                write_all(out, data)
            finally:
                os.close(out)
            os.replace(temporary, name, src_dir_fd=fd, dst_dir_fd=fd)
        except BaseException as exc:
            try:
                os.unlink(temporary, dir_fd=fd)
            except OSError:
                pass
            raise with_filename(exc, target) from None
    finally:
        os.close(fd)
    return target


def location_problem(path: str | os.PathLike) -> str | None:
    """Why an output that will be created at ``path`` cannot be (None when it can): the
    nearest existing folder at or above it must be a folder we may write in (the rest
    of the path is created later)."""
    path = Path(path)
    start = path if path.is_dir() else path.parent
    existing = next(p for p in (start, *start.parents) if p.exists())
    if not existing.is_dir():
        return f"{existing} is a file; a folder is needed there"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"cannot write in {existing} (permission denied)"
    return None
