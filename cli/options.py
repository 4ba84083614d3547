"""Option bundles shared by several verbs, so one flag means one thing everywhere."""

from __future__ import annotations

import os
from pathlib import Path

import click

from gender_cli.devices import DEFAULT_DEVICE, DEVICE_HELP, DEVICES


def device_option(fn):
    return click.option(
        "--device",
        type=click.Choice(DEVICES),
        default=DEFAULT_DEVICE,
        show_default=True,
        help=DEVICE_HELP,
    )(fn)


def batch_option(default: int = 64):
    def decorator(fn):
        return click.option(
            "--batch",
            type=click.IntRange(1, 4096),
            default=default,
            show_default=True,
            help="Images per inference batch (the batch shape is kept fixed; the last "
            "batch is padded).",
        )(fn)

    return decorator


def model_option(fn):
    return click.option(
        "--model",
        "model_path",
        type=click.Path(dir_okay=False, path_type=str),
        default=None,
        help="Exported classifier (.onnx). Default: the workspace's latest "
        "'gender-cli export' output.",
    )(fn)


def quiet_option(fn):
    return click.option(
        "--quiet", "-q", is_flag=True, help="No progress bar or summary on stderr."
    )(fn)


def workers_option(fn):
    return click.option(
        "--workers",
        type=click.IntRange(1, 256),
        default=None,
        help="Image decoding threads running beside inference. Default: number of CPU cores.",
    )(fn)


def check_output_location(path: str | Path, param_hint: str) -> None:
    """Refuse an output path that cannot be written, before the work rather than after it.

    The nearest existing folder at or above the output must be a folder we may write in
    (the rest of the path is created later).
    """
    path = Path(path)
    start = path if path.is_dir() else path.parent
    existing = next(p for p in (start, *start.parents) if p.exists())
    if not existing.is_dir():
        raise click.BadParameter(f"{existing} is a file; a folder is needed there", param_hint=param_hint)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise click.BadParameter(f"cannot write in {existing} (permission denied)", param_hint=param_hint)
