"""``gender-cli make-standin``: write a stand-in vgg_face.mat (real structure, random weights)."""

from __future__ import annotations

from pathlib import Path

import click

from gender_cli.cli.help_format import ERRORS, OK, epilog
from gender_cli.cli.options import quiet_option

DEFAULT_OUTPUT = "vgg_face.mat"  # the name 'gender-cli convert' looks for by default


@click.command(
    "make-standin", epilog=epilog("gender-cli make-standin -o vgg_face.mat --size tiny", {**OK, **ERRORS})
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=DEFAULT_OUTPUT,
    show_default=True, help="File to write.",
)
@click.option(
    "--size", type=click.Choice(["full", "tiny"]), default="full", show_default=True,
    help="'full': the real VGG-Face shapes (145 M parameters, 580 MB); 'tiny': every layer "
    "and the 224x224 input but a few channels per layer, for quick tests.",
)
@click.option(
    "--layout", type=click.Choice(["release", "zoo"]), default="release", show_default=True,
    help="'release': one 'net' struct like the VGG-Face release vgg_face.mat; 'zoo': "
    "'layers' + 'meta' variables like MatConvNet's model-zoo vgg-face.mat.",
)
@click.option(
    "--mat-version", type=click.Choice(["5", "7.3"]), default="5", show_default=True,
    help="MAT-file format: '5' (what the real file uses) or '7.3' (HDF5).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed of the stand-in weights.")
@click.option("--force", is_flag=True, help="Overwrite FILE if it already exists.")
@quiet_option
def make_standin(output: Path, size: str, layout: str, mat_version: str, seed: int, force: bool, quiet: bool) -> None:
    """Write a STAND-IN vgg_face.mat: the exact structure of the real MatConvNet file
    (39 layers, shapes, mean, 2622 class names) with seeded random weights.

    The real weights cannot be downloaded here; everything made from this file is
    labelled as stand-in and predicts nothing about gender.
    """
    if output.exists() and not force:
        raise click.ClickException(f"{output} already exists; pass --force to overwrite it")
    if not output.parent.is_dir():
        problem = "is a file, not a folder" if output.parent.exists() else "does not exist"
        raise click.BadParameter(f"folder {output.parent} {problem}", param_hint="'--output'")
    from gender_cli.convert.standin import standin_param_count, make_standin

    if not quiet:
        click.echo(f"writing {size} stand-in ({layout} layout, MAT v{mat_version}, seed {seed}) ...", err=True)
    path = make_standin(output, size=size, layout=layout, mat_version=mat_version, seed=seed)
    megabytes = path.stat().st_size / 1e6
    click.echo(f"wrote {path} ({megabytes:.1f} MB, MAT v{mat_version}, {layout} layout)")
    click.echo(f"parameters: {standin_param_count(size):,} ({size})")
    click.echo(f"STAND-IN weights (random, seed {seed}), not VGG-Face: models made from this file predict nothing")
