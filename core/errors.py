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


class MissingArtifactError(GenderCliError):
    """A verb's default input (a predecessor's output in the workspace) is absent."""
