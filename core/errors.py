"""Exceptions raised by library code.

Library modules never import click; they raise these, and ``cli`` turns them into
one-line ``click.ClickException`` messages (exit 1, no traceback); a
:class:`RequestError` becomes a usage error (exit 2).
"""

from __future__ import annotations

from dataclasses import dataclass


class GenderCliError(Exception):
    """A problem the user can fix: bad file, missing model, wrong option value."""


class ModelFileError(GenderCliError):
    """A weights or model file that cannot be read or has the wrong structure."""


class UnsupportedLayerError(ModelFileError):
    """A MatConvNet layer type that the converter registry does not know."""


class UnknownDescriptorError(GenderCliError, ValueError):
    """A descriptor name that is not one of ``contract.DESCRIPTORS``."""


class MissingArtifactError(GenderCliError):
    """A verb's default input (a predecessor's output in the workspace) is absent."""


class StoreLost(GenderCliError):
    """The object store a run reads stopped answering: the run stops (a resumed run
    finishes it) instead of writing an error row for each file it could not reach."""


@dataclass(frozen=True)
class Option:
    """An option named in a :class:`RequestError`, spelled for whoever reads it:
    ``resume=True`` / ``engine='ray'`` for Python, ``--resume`` / ``--engine ray`` for the CLI."""

    name: str  # the Python argument name (``save_crops``); the CLI flag is derived from it
    value: object = None  # shown beside the name when given

    def spelled(self, cli: bool) -> str:
        if not cli:
            return self.name if self.value is None else f"{self.name}={self.value!r}"
        flag = "--" + self.name.replace("_", "-")
        return flag if self.value is None or self.value is True else f"{flag} {self.value}"


class RequestError(GenderCliError):
    """A request whose options contradict each other or the file system (an output that
    exists, a folder where a file is needed). The message is made of text and
    :class:`Option` parts, so the API and the CLI each name the options their way;
    ``option`` is the one option at fault, when there is one."""

    def __init__(self, *parts: str | Option, option: str | None = None):
        self.parts = parts
        self.option = option
        super().__init__((f"{option}: " if option else "") + self.spelled(cli=False))

    def spelled(self, cli: bool) -> str:
        """The message parts (without the option at fault), options spelled for the CLI or Python."""
        return "".join(part.spelled(cli) if isinstance(part, Option) else part for part in self.parts)


def first_line(exc: BaseException, default: str | None = None) -> str:
    """The first line of an exception's message (library errors can span many lines);
    ``default`` when it has none (the exception's type name unless given)."""
    text = str(exc).strip()
    if text:
        return text.splitlines()[0]
    return type(exc).__name__ if default is None else default
