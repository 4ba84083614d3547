"""Help text that never breaks a word: paths and file names stay whole when wrapped.

Click wraps help with ``textwrap``'s defaults, which split long words and break after
hyphens (``models/classifier-`` / ``fp32.onnx``), so a path copied from ``--help``
would be wrong. :class:`HelpFormatter` wraps at spaces only; a word longer than the
line simply overflows it.
"""

from __future__ import annotations

from contextlib import contextmanager

import click
from click import _textwrap


class _WholeWords(_textwrap.TextWrapper):
    def __init__(self, *args, **kwargs):
        kwargs.update(break_long_words=False, break_on_hyphens=False)
        super().__init__(*args, **kwargs)


@contextmanager
def _whole_words():
    # click.formatting.wrap_text looks the wrapper class up in click._textwrap on every call
    original = _textwrap.TextWrapper
    _textwrap.TextWrapper = _WholeWords
    try:
        yield
    finally:
        _textwrap.TextWrapper = original


class HelpFormatter(click.HelpFormatter):
    def write_text(self, text: str) -> None:
        with _whole_words():
            super().write_text(text)

    def write_dl(self, rows, col_max: int = 30, col_spacing: int = 2) -> None:
        with _whole_words():
            super().write_dl(rows, col_max, col_spacing)

    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        with _whole_words():
            super().write_usage(prog, args, prefix)


class Context(click.Context):
    formatter_class = HelpFormatter


def epilog(example: str, statuses: dict[int, str]) -> str:
    """The closing part of every verb's help: one example, then its exit statuses."""
    width = max(len(str(code)) for code in statuses)
    lines = ["\b", "Example:", f"  {example}", "", "\b", "Exit status:"]
    lines += [f"  {code:<{width}}  {meaning}" for code, meaning in statuses.items()]
    return "\n".join(lines)


# The statuses every verb shares; a verb adds its own.
OK = {0: "success"}
ERRORS = {
    1: "error: missing or invalid input, or an output that cannot be written",
    2: "usage error (unknown option, bad value)",
}
