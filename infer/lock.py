"""One writer per output: the advisory lock a ``classify`` run holds on its output.

What is locked: a CSV or JSONL output file itself; for a Parquet output, the file
:data:`LOCK_NAME` inside its folder (Parquet readers skip names that start with a dot).
A second writer (another run, a ``Classifier.classify`` call in the same process, a
``--resume`` or ``--force`` started beside a running one) is refused with
:class:`OutputBusyError`: one line naming the output and the holder's process id. The
run that holds the lock is the process that writes the rows: on a Ray cluster, the
driver.

The lock is an open-file-description lock (Linux ``F_OFD_SETLK``): it belongs to the
open file, so two opens in one process conflict as two processes do, and closing some
other descriptor of the file does not drop it. The kernel releases it when its holder
dies, ``kill -9`` included, so a dead run's lock is simply taken over: nothing is left
to clean up by hand. Such a lock reports no owner (``l_pid`` is -1), so the holder
states its process id in the lock's range: it locks bytes ``[0, pid)``. Any two such
ranges overlap at byte 0, and ``F_OFD_GETLK`` returns the conflicting range, whose
length is the holder's pid. Elsewhere ``flock`` gives the same exclusion without the
pid; where neither exists (Windows), for object-store outputs (``s3://...``, which
have no locks) and for what is not a regular file (``/dev/null``) nothing is locked.

A lock file or an output file that the lock created and that is still empty when the
lock is released is removed, so a run that stopped before writing a row (a Ray that did
not start, Ctrl-C) leaves nothing behind. Whoever takes a lock checks afterwards that
the name still leads to the file it locked, and starts again if it was removed meanwhile.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
import sys
from pathlib import Path

from gender_cli.errors import GenderCliError

LOCK_NAME = ".gender-cli.lock"
_FLOCK = "hhqqi4x"  # struct flock on 64-bit Linux: type, whence, start, len, pid


class OutputBusyError(GenderCliError):
    """Another run holds the output's lock."""


class OutputLock:
    """A held lock on one output; :meth:`release` (or leaving the ``with`` block) frees it."""

    def __init__(self, output: str, path: Path | None = None, fd: int | None = None, created: bool = False):
        self.output = output
        self.path = path  # the file locked; None: nothing is locked (stdout, an object store)
        self._fd = fd
        self._created = created

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            if (self._created or self.path.name == LOCK_NAME) and os.fstat(self._fd).st_size == 0 \
                    and _same_file(self._fd, self.path):
                self.path.unlink()  # still locked: whoever opened it meanwhile sees it gone and starts again
        except OSError:
            pass  # tidying only
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> OutputLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def hold_output(output: str, folder: bool) -> OutputLock:
    """Lock ``output`` (a file, or with ``folder`` a Parquet folder, created here if its
    parent exists) for this run; OutputBusyError when another run holds it."""
    from gender_cli.infer.sources import is_uri
    from gender_cli.infer.writer import STDOUT

    if output == STDOUT or is_uri(output) or not _supported():
        return OutputLock(output)
    target = Path(output)
    parent = target.parent
    if not parent.is_dir():
        return OutputLock(output)  # the writer says why it cannot write there
    if folder:
        if target.exists() and not target.is_dir():
            return OutputLock(output)
        target.mkdir(exist_ok=True)
        target = target / LOCK_NAME
    elif target.is_dir():
        return OutputLock(output)
    while True:
        fd, created = _open(target)
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # /dev/null, a pipe: nothing to keep whole
            os.close(fd)
            return OutputLock(output)
        try:
            holder = _lock(fd)
            if holder is not False:
                pid = f" (process {holder})" if holder else ""
                raise OutputBusyError(f"{output} is being written by another gender-cli run{pid}; "
                                      "wait for it to finish, or choose another output")
            if _same_file(fd, target):
                return OutputLock(output, target, fd, created)
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # removed by its last holder while we waited for it: lock the new one


def _supported() -> bool:
    try:
        import fcntl  # noqa: F401
    except ImportError:
        return False
    return True


def _open(path: Path) -> tuple[int, bool]:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644), True
    except FileExistsError:
        return os.open(path, os.O_RDWR), False


def _lock(fd: int) -> int | None | bool:
    """Take the lock: False when taken, else the holder's pid (None when unknown)."""
    import fcntl

    if sys.platform.startswith("linux") and hasattr(fcntl, "F_OFD_SETLK"):
        try:
            fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, os.getpid(), 0))
            return False
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
        found = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0))
        kind, _, start, length, _ = struct.unpack(_FLOCK, found)
        return length if kind != fcntl.F_UNLCK and start == 0 and length > 0 else None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except OSError as exc:
        if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            raise
        return None


def _same_file(fd: int, path: Path) -> bool:
    try:
        here, there = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)
