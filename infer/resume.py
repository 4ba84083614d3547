"""Which of a run's files a resumed output already holds, matched by the file, not the spelling.

A row names its file the way the run that wrote it listed it (``photos/a.jpg``,
``/data/photos/a.jpg``, ``file:///data/photos/a.jpg``); rows keep that spelling. To tell
whether a listed file is already done, both names are reduced to :func:`resume_key`:

- a local path or ``file://`` URI: the real path of its folder (links and ``..``
  resolved, relative to the current folder) joined with its own name. The name itself
  is not resolved: two links to one photo are two listed files, each with its row.
- any other URI: the URI normalised: scheme and host lower-cased, percent-escapes
  decoded, the query (connection options such as an endpoint) dropped. Object keys are
  taken literally otherwise: ``a//b`` and ``a/b`` are different objects.

A resume whose output holds rows of which none names a listed file is refused
(:func:`done_files`): continuing would classify every file again and append a second
row for each, which is what happens when the output was written from another folder
with relative paths.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from urllib.parse import unquote, urlsplit

from gender_cli.errors import GenderCliError
from gender_cli.infer.sources import FILE_SCHEME, is_uri, local_path


class _Keys:
    """resume_key with the real path of each folder computed once."""

    def __init__(self):
        self._folders: dict[str, str] = {}

    def __call__(self, name: str) -> str:
        if is_uri(name) and not name.startswith(FILE_SCHEME):
            return _uri_key(name)
        path = os.fspath(local_path(name))
        folder, base = os.path.split(path)
        real = self._folders.get(folder)
        if real is None:
            real = self._folders[folder] = os.path.realpath(folder or os.curdir)
        return os.path.join(real, base) if base else real


def resume_key(name: str) -> str:
    """What identifies the file a row or a listing ``name`` stands for (see the module docstring)."""
    return _Keys()(name)


def _uri_key(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{unquote(parts.path)}"


def done_files(names: Sequence[str], held: dict[str, str | None], output: str) -> dict[str, str | None]:
    """Listed ``names`` -> error category (None: classified) for those ``held`` (a resumed
    output's rows: path as written -> category) names too, matched by :func:`resume_key`.
    GenderCliError when the output holds rows and not one of them names a listed file."""
    if not held or not names:
        return {}
    key = _Keys()
    by_key = {key(path): category for path, category in held.items()}
    done = {name: by_key[k] for name in names if (k := key(name)) in by_key}
    if not done:
        example = next(iter(held))
        raise GenderCliError(
            f"cannot resume {output}: none of its {len(held)} rows names a file listed now (it holds "
            f"{example!r}, the listing starts with {names[0]!r}); relative paths are read from the current "
            "folder: run from the folder of the first run, or start over with --force"
        )
    return done
