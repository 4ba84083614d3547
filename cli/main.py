"""The ``gender-cli`` Click group.

Verbs are loaded lazily from ``cli/cmd_<verb>.py`` so that ``gender-cli --help``,
``classify`` and ``bench`` never import TensorFlow. Library errors
(:class:`GenderCliError`) and file-system errors on a named path (``OSError`` with a
file name: permission denied, a file where a folder should be, disk full) become
one-line Click errors with exit status 1.
"""

from __future__ import annotations

import difflib
import importlib
import os
import sys
from pathlib import Path

import click

from gender_cli import __version__
from gender_cli.atomic import FULL_DISK
from gender_cli.cli.help_format import Context
from gender_cli.errors import GenderCliError

# verb -> (module under gender_cli.cli, function name); the order is the help order.
COMMANDS = {
    "make-standin": ("cmd_make_standin", "make_standin"),
    "inspect": ("cmd_inspect", "inspect_cmd"),
    "convert": ("cmd_convert", "convert"),
    "export": ("cmd_export", "export"),
    "train": ("cmd_train", "train"),
    "evaluate": ("cmd_evaluate", "evaluate"),
    "audit": ("cmd_audit", "audit"),
    "classify": ("cmd_classify", "classify"),
    "report": ("cmd_report", "report"),
    "bench": ("cmd_bench", "bench"),
    "demo": ("cmd_demo", "demo"),
}


# Modules that only an extra installs: module -> (extra, the package that provides it). A
# verb that needs one of them on an inference-only install gets an install hint instead
# of a traceback.
EXTRAS = {"train": "training", "ray": "Ray"}
EXTRA_MODULES = {
    "tensorflow": ("train", "tensorflow"), "keras": ("train", "keras"), "tf2onnx": ("train", "tf2onnx"),
    "onnx": ("train", "onnx"), "scipy": ("train", "scipy"), "h5py": ("train", "h5py"),
    "matplotlib": ("train", "matplotlib"), "google": ("train", "protobuf"),
    "ray": ("ray", "ray"), "pyarrow": ("ray", "pyarrow"),
}


class LazyGroup(click.Group):
    context_class = Context

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module_name, attr = COMMANDS[name]
        command = getattr(importlib.import_module(f"gender_cli.cli.{module_name}"), attr)
        command.context_class = Context  # help that never breaks a path mid-word
        return command

    def resolve_command(self, ctx: click.Context, args: list[str]):
        name = args[0] if args else ""
        if name and name not in COMMANDS and not name.startswith("-"):
            close = difflib.get_close_matches(name, list(COMMANDS), n=1, cutoff=0.6)
            if close:
                ctx.fail(f"No such command {name!r}. Did you mean {close[0]!r}?")
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except GenderCliError as exc:
            raise click.ClickException(str(exc)) from exc
        except OSError as exc:
            # A file-system refusal on a path the user gave (read-only folder, a file where a
            # folder should be, disk full) is theirs to fix, not a bug: one line, no traceback.
            # OSErrors without a file name (a broken stdout pipe, ...) keep their usual path.
            if exc.filename is None:
                raise
            raise click.ClickException(_os_error_message(exc)) from exc
        except ModuleNotFoundError as exc:
            missing = (exc.name or "").split(".")[0]
            if missing not in EXTRA_MODULES:
                raise
            extra, package = EXTRA_MODULES[missing]
            raise click.ClickException(
                f"'{ctx.invoked_subcommand}' needs {package}, which the inference-only install "
                f"leaves out; install the {EXTRAS[extra]} extra: pip install 'gender-cli[{extra}]'"
            ) from exc


def _os_error_message(exc: OSError) -> str:
    if isinstance(exc, (FileExistsError, NotADirectoryError)) and isinstance(exc.filename, str):
        # what mkdir(parents=True, exist_ok=True) and open() say when a file stands where
        # the path needs a folder: name that file
        blocker = next((p for p in (Path(exc.filename), *Path(exc.filename).parents) if p.is_file()), None)
        if blocker is not None:
            return f"{blocker} is a file; a folder is needed there"
    where = f"{exc.filename} -> {exc.filename2}" if exc.filename2 else str(exc.filename)
    message = f"{where}: {exc.strerror or exc}"
    if exc.errno in FULL_DISK:
        message += " (free some space, then run the command again)"
    return message


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="gender-cli")
def cli() -> None:
    """Turn face networks (VGG-Face, dlib's) into a fast gender classifier for folders of faces.

    \b
    Each step finds the previous step's output in the workspace
    ($GENDER_CLI_HOME, default ~/.gender-cli):
      gender-cli convert dlib            weights -> layer table (or vgg_face.mat, ...)
      gender-cli train data/             descriptors + gender head + metrics
      gender-cli export                  one ONNX graph (fp32, fp16, int8)
      gender-cli classify folder/        one row per image file
      gender-cli bench --batch 64        throughput and latency
      gender-cli audit data/ --groups G  errors per group, with intervals
      gender-cli report predictions.csv  a summary of classify's rows

    Every verb explains itself under 'gender-cli VERB --help'.
    """


INTERRUPTED = 130  # a verb's exit status after Ctrl-C (everything it wrote is complete)


def main(*args, **kwargs):
    """The console script: the group, and a prompt exit after an interrupted run.

    After Ctrl-C a verb has written and closed everything and exits 130. On a heavily
    loaded machine the interpreter's own exit after that sometimes ended in C++ instead
    (SIGABRT, "terminate called without an active exception", from no Python frame), so
    the process ends at once, streams flushed. Not where Ray still runs (its shutdown
    belongs to the normal exit), and never for the group called in-process (tests, the demo)."""
    try:
        return cli(*args, **kwargs)
    except SystemExit as exc:
        if exc.code == INTERRUPTED and not _ray_running():
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(INTERRUPTED)
        raise


def _ray_running() -> bool:
    ray = sys.modules.get("ray")
    return ray is not None and ray.is_initialized()
