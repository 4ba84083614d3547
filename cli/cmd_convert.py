"""``gender-cli convert``: weights in any supported format → layer table in the workspace."""

from __future__ import annotations

from pathlib import Path

import click

from gender_cli.cli.help_format import ERRORS, OK, epilog
from gender_cli.cli.messages import warn_if_standin
from gender_cli.cli.options import quiet_option, request_errors


def _mean(ctx, param, value):
    if value is None:
        return None
    from gender_cli.convert.source_file import parse_mean

    try:
        return parse_mean(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command(
    "convert",
    epilog=epilog("gender-cli convert dlib", {**OK, **ERRORS}),
)
@click.argument("src", required=False, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output folder for network/ (layer table), head/ (ready classifiers) and model.keras "
    "(--keras). Default: the workspace's converted/ folder, where export and train look.",
)
@click.option(
    "--prototxt",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Caffe deploy file (text) with the layer parameters; needed when the .caffemodel "
    "lacks them, cross-checked against it otherwise.",
)
@click.option(
    "--mean",
    callback=_mean,
    default=None,
    metavar="R,G,B",
    help="Per-channel mean (RGB order, 0..255 scale) subtracted from images; needed when "
    "the file has none, replaces the file's otherwise.",
)
@click.option(
    "--keras",
    is_flag=True,
    help="Also write model.keras (TensorFlow, as much disk again as the layer table); "
    "no other verb needs it.",
)
@quiet_option
def convert(src: Path | None, out_dir: Path | None, prototxt, mean, keras: bool, quiet: bool) -> None:
    """Convert SRC, face-network weights in any supported form, for the other verbs.

    SRC is recognised by content: MatConvNet vgg_face.mat (MAT v5 or v7.3), Caffe
    VGG_FACE.caffemodel, keras-vggface or deepface HDF5 weights, deepface's
    gender_model_weights.h5 (a ready classifier: 'gender-cli export' then works
    without training), or dlib's dlib_face_recognition_resnet_model_v1.dat. Default:
    the one such file in the current folder. 'dlib' names dlib's face network as the
    [detect] extra installs it: real weights, nothing to download. SRC may also be a
    folder written by an earlier convert. The output replaces any earlier convert
    output only once it is complete.
    """
    from gender_cli.api import convert as run_convert

    def progress(step: str) -> None:
        if not quiet:
            click.echo(f"{step} ...", err=True)

    with request_errors(arguments={"src": "SRC"}):
        summary = run_convert(src, out_dir, prototxt=prototxt, mean=mean, keras=keras, progress=progress).summary
    click.echo(
        f"converted {summary['source']} ({summary['format']}): {summary['layers']} layers, "
        f"{summary['params']:,} parameters, output {tuple(summary['output_shape'])}, "
        f"in {summary['seconds']:.1f} s"
    )
    preprocessing = summary["preprocessing"]
    click.echo(
        f"  input: {preprocessing['library']}: {preprocessing['channel_order']} minus "
        f"{', '.join(f'{m:g}' for m in preprocessing['mean'])}, scale {preprocessing['scale']:.6g} "
        f"({preprocessing['folded']})"
    )
    click.echo(f"  layer table: {summary['network_dir']} ({summary['disk_bytes'] / 1e6:.0f} MB written in all)")
    if summary["head_dir"]:
        click.echo(
            f"  head: {summary['head_dir']} (a ready classifier, labels {', '.join(summary['head_labels'])}; "
            "next: 'gender-cli export' then 'gender-cli classify FOLDER')"
        )
    if summary["keras_model"]:
        click.echo(f"  Keras model: {summary['keras_model']}")
    warn_if_standin(summary["standin"])
