"""Exceptions raised by library code.

Library modules never import click; they raise these, and ``cli`` turns them into
one-line ``click.ClickException`` messages (exit 1, no traceback).
"""


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


def first_line(exc: BaseException, default: str | None = None) -> str:
    """The first line of an exception's message (library errors can span many lines);
    ``default`` when it has none (the exception's type name unless given)."""
    text = str(exc).strip()
    if text:
        return text.splitlines()[0]
    return type(exc).__name__ if default is None else default
