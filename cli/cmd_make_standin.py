"""``gender-cli make-standin``: write stand-in weights (a real file's structure, random values) in any format."""

from __future__ import annotations

from pathlib import Path

import click

from gender_cli.cli.help_format import ERRORS, OK, epilog
from gender_cli.cli.options import quiet_option
from gender_cli.convert.standin import STANDIN_LAYOUTS

ALL_LAYOUTS = list(dict.fromkeys(layout for layouts in STANDIN_LAYOUTS.values() for layout in layouts))


def _layout_help() -> str:
    parts = [f"{fmt}: {' or '.join(layouts)}" for fmt, layouts in STANDIN_LAYOUTS.items()]
    return (
        "File layout, per format (the first is the default): " + "; ".join(parts) + ". "
        "mat 'release' is one 'net' struct like vgg_face.mat, 'zoo' the model zoo's 'layers' + "
        "'meta'; caffe 'v1' is the 2015 release's V1 'layers' field, 'layer' the current one; "
        "Keras 'weights' is what save_weights writes, 'model' a whole-model file; dlib has one layout, "
        "its face-recognition ResNet."
    )


@click.command(
    "make-standin", epilog=epilog("gender-cli make-standin --format caffe --size tiny", {**OK, **ERRORS})
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="File to write. Default: the name the real file has (vgg_face.mat, VGG_FACE.caffemodel "
    "+ VGG_FACE_deploy.prototxt, rcmalli_vggface_tf_vgg16.h5, vgg_face_weights.h5, "
    "gender_model_weights.h5, dlib_face_recognition_resnet_model_v1.dat), which 'gender-cli convert' looks for.",
)
@click.option(
    "--format", "fmt", type=click.Choice(list(STANDIN_LAYOUTS)), default="mat", show_default=True,
    help="Which file to imitate: MatConvNet .mat, Caffe .caffemodel + deploy .prototxt, "
    "keras-vggface or deepface HDF5 weights, deepface's gender model (a ready classifier) "
    "(all VGG-Face), or dlib's face-recognition network (.dat; the real one comes with the [detect] extra).",
)
@click.option(
    "--size", type=click.Choice(["full", "tiny"]), default="full", show_default=True,
    help="'full': the real shapes (VGG-Face: 145 M parameters, 580 MB; dlib: 5.6 M, 22 MB); 'tiny': "
    "every layer and the input size but a few channels per layer, for quick tests.",
)
@click.option("--layout", type=click.Choice(ALL_LAYOUTS), default=None, help=_layout_help())
@click.option(
    "--mat-version", type=click.Choice(["5", "7.3"]), default="5", show_default=True,
    help="MAT-file format (--format mat): '5' (what the real file uses) or '7.3' (HDF5).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed of the stand-in weights.")
@click.option("--force", is_flag=True, help="Overwrite FILE if it already exists.")
@quiet_option
def make_standin(output: Path | None, fmt: str, size: str, layout: str | None, mat_version: str, seed: int,
                 force: bool, quiet: bool) -> None:
    """Write STAND-IN weights: the exact structure of the real file of the chosen
    format (layers, shapes, mean or preprocessing) with seeded random weights (the
    same VGG-Face weights in every VGG-Face format).

    The real weights cannot be downloaded here; everything made from this file is
    labelled as stand-in and predicts nothing about gender.
    """
    from gender_cli.convert.formats import FORMATS

    layout = layout or STANDIN_LAYOUTS[fmt][0]
    if layout not in STANDIN_LAYOUTS[fmt]:
        raise click.BadParameter(
            f"{layout!r} is not a {fmt} layout; choose from {', '.join(STANDIN_LAYOUTS[fmt])}",
            param_hint="'--layout'",
        )
    if fmt != "mat" and mat_version != "5":
        raise click.BadParameter("applies to --format mat only", param_hint="'--mat-version'")
    output = output or Path(FORMATS[fmt].default_file)
    written = [output]
    if fmt == "caffe":
        from gender_cli.convert.caffe_writer import prototxt_path

        written.append(prototxt_path(output))
    existing = [p for p in written if p.exists()]
    if existing and not force:
        raise click.ClickException(f"{existing[0]} already exists; pass --force to overwrite it")
    if not output.parent.is_dir():
        problem = "is a file, not a folder" if output.parent.exists() else "does not exist"
        raise click.BadParameter(f"folder {output.parent} {problem}", param_hint="'--output'")
    from gender_cli.convert.standin import make_standin as write_standin, standin_param_count

    version = f", MAT v{mat_version}" if fmt == "mat" else ""
    if not quiet:
        click.echo(f"writing {size} {fmt} stand-in ({layout} layout{version}, seed {seed}) ...", err=True)
    write_standin(output, size=size, layout=layout, mat_version=mat_version, seed=seed, format=fmt)
    for path in written:
        click.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {fmt}, {layout} layout{version})")
    click.echo(f"parameters: {standin_param_count(size, fmt):,} ({size})")
    network = "dlib's face network" if fmt == "dlib" else "VGG-Face"
    click.echo(f"STAND-IN weights (random, seed {seed}), not {network}: models made from this file predict nothing")
