"""``gender-cli export``: the converted network (+ trained head) -> one ONNX graph."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from gender_cli import contract
from gender_cli.cli.options import quiet_option, request_errors
from gender_cli.cli.progress import StageProgress
from gender_cli.cli.help_format import ERRORS, OK, epilog
from gender_cli.cli.messages import warn_if_standin


def _table_help(table: dict) -> str:
    return "; ".join(f"{name}: {entry.help}" for name, entry in table.items())


PROGRESS_LABELS = {
    "write": ("writing weights", "B", True),
    "check": ("comparing with fp32", "img", False),
    "calibrate": ("calibrating int8", "batch", False),
}


def _size(n_bytes: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.1f} {unit}"
    return f"{n_bytes} B"


EXIT_MISSES_GOAL = 4


@click.command(
    "export",
    epilog=epilog("gender-cli export --precision int8 --calibration faces/ --set-default", {
        **OK, **ERRORS,
        EXIT_MISSES_GOAL: "the fp16 or int8 graph was written but disagrees with fp32 more than its goal allows "
                          "(with --set-default it is not made the default)",
    }),
)
@click.argument("weights", metavar="[WEIGHTS]", required=False, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--head",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="Trained heads: a 'gender-cli train' run folder (its gender head, head.json + "
    "head_weights.npz, and its age head, age_head.json + age_head_weights.npz: all go into the "
    "one graph), or a Keras model file (.keras, .h5) of any architecture taking the descriptor and "
    "giving 2 gender probabilities, converted with tf2onnx (needs the [train] extra). Default: "
    "the workspace's latest run, or the head convert wrote for a ready classifier (deepface's "
    "gender model) unless that run was trained on the same network; without either, the "
    "backbone is exported alone.",
)
@click.option(
    "--backbone-only",
    is_flag=True,
    help="Export only preprocessing + backbone (output 'descriptor'), no head.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the .onnx file. Default: the workspace's "
    "models/classifier-<precision>.onnx (or models/backbone-<descriptor>[-<precision>].onnx).",
)
@click.option(
    "--precision",
    type=click.Choice(list(contract.PRECISIONS)),
    default=contract.DEFAULT_PRECISION,
    show_default=True,
    help=_table_help(contract.PRECISIONS) + ".",
)
@click.option(
    "--calibration",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Folder of face images (read like classify reads them) to calibrate int8 "
    "(required) and to check fp16/int8 agreement with fp32. Without it fp16 is "
    "checked on seeded synthetic images.",
)
@click.option(
    "--descriptor",
    type=click.Choice(list(contract.LAYER_DESCRIPTORS)),
    default=None,
    help="Backbone layer whose output is the descriptor (" + _table_help(contract.LAYER_DESCRIPTORS)
    + "). Default: the head's descriptor, else the network's own (relu7 for VGG-Face, embedding for "
    "the dlib network).",
)
@click.option(
    "--external-data",
    is_flag=True,
    help="Store the weights in a side file <output>.data next to the graph, so the "
    "small graph can travel alone.",
)
@click.option(
    "--set-default",
    is_flag=True,
    help="Make this classifier the one classify, bench and evaluate use without --model "
    "(the default is classifier-fp32.onnx until another is chosen so); an fp16 or int8 graph "
    "that misses its agreement goal is not made the default (exit status 4).",
)
@quiet_option
def export(weights, head, backbone_only, output, precision, calibration, descriptor, external_data, set_default, quiet):
    """Write WEIGHTS as one ONNX graph: uint8 images in, probabilities (+ age) + descriptor out.

    WEIGHTS is a converted folder (default: the workspace's, from 'gender-cli convert'),
    a weights file that 'gender-cli convert' reads, or the run folder of 'gender-cli
    train --from-scratch' (its own network, converted with tf2onnx; the default when
    the latest run is one). The graph holds the mean subtraction, the backbone up
    to the descriptor layer and the trained heads (gender, and age when the run has
    one), all fed by one backbone pass; its metadata carries the heads, labels,
    threshold, input size, mean and the source weights' hash, so classify needs
    nothing but the file.
    """
    from gender_cli.api import export as run_export

    progress = StageProgress(quiet, PROGRESS_LABELS)
    try:
        with request_errors():
            result = run_export(
                weights, head=head, output=output, precision=precision, calibration=calibration,
                descriptor=descriptor, backbone_only=backbone_only, external_data=external_data,
                set_default=set_default, progress=progress, on_note=lambda note: click.echo(f"Note: {note}", err=True),
            )
    finally:
        progress.close()
    _print_summary(result)
    if result.default:
        click.echo(f"  default classifier: {result.path} (classify, bench and evaluate use it without --model)")
    if not result.meets_goal:
        if set_default:
            click.echo("Not made the default classifier: it misses its agreement goal", err=True)
        sys.exit(EXIT_MISSES_GOAL)


def _print_summary(result) -> None:
    from gender_cli.contract import Meta

    meta = result.metadata
    outputs = [contract.HEADS[name].output for name in contract.graph_heads(meta)] + [contract.DESCRIPTOR]
    click.echo(f"exported {result.path} ({_size(result.size_bytes)}) in {result.seconds:.1f} s")
    if len(result.files) > 1:
        click.echo(f"  weights: {result.files[1]}")
    click.echo(
        f"  kind {meta[Meta.KIND]}, precision {meta[Meta.PRECISION]}, descriptor "
        f"{meta[Meta.DESCRIPTOR]} ({meta[Meta.DESCRIPTOR_DIM]}-d), outputs {', '.join(outputs)}"
    )
    checks = result.checks
    if checks:
        measure = checks["measure"]
        verdict = "meets" if checks["meets_goal"] else "MISSES"
        extra = f", max |dp| {checks['max_abs_dprob']:.4f}" if "max_abs_dprob" in checks else ""
        if "age_mae_years" in checks:
            extra += f", age MAE {checks['age_mae_years']:.3f} years"
        click.echo(
            f"  {checks['precision']} vs fp32 on {checks['image_source']}: {measure} "
            f"{checks[measure]:.4f} ({verdict} the goal {checks['goal']}){extra}, "
            f"descriptor cosine min {checks['descriptor_cosine_min']:.4f}"
        )
        baseline = checks.get("fp32_input_noise_baseline", {})
        if baseline.get("label_agreement") is not None:
            click.echo(
                f"  for scale: fp32 vs itself with +-1 uint8 input noise: label_agreement "
                f"{baseline['label_agreement']:.4f}"
            )
        if checks.get("fp16_overflow_risk"):
            click.echo("Warning: fp32 activations exceed the float16 range; the fp16 graph may overflow", err=True)
        if not checks["meets_goal"]:
            click.echo(
                f"Warning: the {checks['precision']} graph disagrees with fp32 more than the goal allows "
                f"(figures in its '{Meta.PRECISION_CHECK}' metadata)", err=True,
            )
    warn_if_standin(result.standin)


