"""Write a whole file or nothing: a temporary file beside the target, fsync, rename."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def write_bytes_atomically(path: str | os.PathLike, data: bytes) -> Path:
    """Replace ``path`` with ``data``; an interruption leaves the old file (or none)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        raise with_filename(exc, path) from None
    return path


def with_filename(exc: BaseException, path: str | os.PathLike) -> BaseException:
    """An OSError that names ``path`` when it named no file (``os.write`` on a full disk
    raises ENOSPC without one), so the CLI can say which file could not be written."""
    if isinstance(exc, OSError) and exc.filename is None and exc.errno is not None:
        return type(exc)(exc.errno, exc.strerror, str(path))
    return exc


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
