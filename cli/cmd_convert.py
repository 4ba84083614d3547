"""``gender-cli convert``: MatConvNet weights → layer table + Keras model in the workspace."""

from __future__ import annotations

from pathlib import Path

import click

from gender_cli.cli.help_format import ERRORS, OK, epilog
from gender_cli.cli.options import quiet_option
from gender_cli.cli.messages import warn_if_standin

DEFAULT_SOURCE = "vgg_face.mat"
WEIGHTS_PAGE = "https://www.robots.ox.ac.uk/~vgg/software/vgg_face/"


@click.command("convert", epilog=epilog("gender-cli convert vgg_face.mat", {**OK, **ERRORS}))
@click.argument("src", required=False, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output folder for network/ (layer table) and model.keras. "
    "Default: the workspace's converted/ folder, where export and train look.",
)
@quiet_option
def convert(src: Path | None, out_dir: Path | None, quiet: bool) -> None:
    """Convert SRC (MatConvNet vgg_face.mat, default ./vgg_face.mat) for the other verbs.

    SRC may also be a folder written by an earlier convert. The output replaces any
    earlier convert output only once it is complete.
    """
    if src is None:
        src = Path(DEFAULT_SOURCE)
        if not src.exists():
            raise click.ClickException(
                f"no {DEFAULT_SOURCE} in the current folder. Get the real VGG-Face weights "
                f"(MatConvNet vgg_face.mat) from the Oxford Visual Geometry Group's VGG-Face "
                f"page, {WEIGHTS_PAGE}, or make a stand-in with random weights with "
                "'gender-cli make-standin', then run 'gender-cli convert FILE.mat'"
            )
    elif not src.exists():
        raise click.BadParameter(f"{src} does not exist", param_hint="SRC")

    from gender_cli.convert.convert import convert as run_convert

    def progress(step: str) -> None:
        if not quiet:
            click.echo(f"{step} ...", err=True)

    summary = run_convert(src, out_dir, progress=progress)
    click.echo(
        f"converted {summary['source']}: {summary['layers']} layers, "
        f"{summary['params']:,} parameters, output {tuple(summary['output_shape'])}, "
        f"in {summary['seconds']:.1f} s"
    )
    click.echo(f"  layer table: {summary['network_dir']}")
    click.echo(f"  Keras model: {summary['keras_model']}")
    warn_if_standin(summary["standin"])
