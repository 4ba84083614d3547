"""``gender-cli export``: the converted network (+ trained head) -> one ONNX graph."""

from __future__ import annotations

from pathlib import Path

import click

from gender_cli import contract
from gender_cli.cli.options import quiet_option
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


def _converted_head(weights: Path | None) -> Path | None:
    """The head/ that convert wrote beside the network (a ready classifier), if any."""
    from gender_cli import workspace
    from gender_cli.convert.convert import HEAD_SUBDIR
    from gender_cli.convert.source import network_folder
    from gender_cli.head_spec import SPEC_FILE

    if weights is None:
        folder = workspace.converted_head_dir()
    elif weights.is_dir() and network_folder(weights) is not None:
        folder = network_folder(weights).parent / HEAD_SUBDIR
    else:
        return None
    return folder if (folder / SPEC_FILE).is_file() else None


def _resolve_head(head: Path | None, backbone_only: bool, weights: Path | None, network) -> tuple[Path | None, str | None]:
    """(head folder or file, or None; a note for the user or None).

    Default: the latest training run; but when convert wrote a head (a ready classifier)
    that head is used unless the latest run was trained on this same network.
    """
    from gender_cli import workspace
    from gender_cli.errors import MissingArtifactError
    from gender_cli.head_spec import HeadSpec, first_spec

    if backbone_only:
        if head is not None:
            raise click.UsageError("--head and --backbone-only exclude each other")
        return None, None
    if head is not None:
        return head, None
    converted = _converted_head(weights)
    try:
        run = workspace.latest_head_dir()
    except MissingArtifactError:
        run = None
    if run is not None and (converted is None or first_spec(run).backbone_sha256 == network.source_sha256):
        return run, None
    if converted is not None:
        spec, _, _ = HeadSpec.load(converted)
        other = f"; the latest run ({run}) was trained on other weights" if run is not None else ""
        return converted, f"using the head that convert wrote ({converted}: {spec.source}){other}"
    return None, (
        f"no trained head in {workspace.runs_dir()}: exporting the backbone only "
        "(train one with 'gender-cli train DATA/', or pass --head RUN_DIR)"
    )


def _scratch_run(weights: Path | None, head: Path | None, backbone_only: bool) -> Path | None:
    """The ``train --from-scratch`` run whose own network is to be exported: WEIGHTS when
    it is one, else (no WEIGHTS) the head given or, by default, the latest run, when it is
    one. None: the network is a converted one."""
    from gender_cli import workspace
    from gender_cli.errors import MissingArtifactError
    from gender_cli.export.scratch_export import is_scratch_run

    if weights is not None:
        return weights if is_scratch_run(weights) else None
    if backbone_only:
        return None
    if head is None:
        try:
            head = workspace.latest_head_dir()
        except MissingArtifactError:
            return None
    return head if is_scratch_run(head) else None


def _head_descriptor(head: Path) -> str | None:
    """The descriptor a head was trained on: its spec (beside a Keras file), if any."""
    from gender_cli.head_spec import HeadSpec, first_spec

    folder = head.parent if head.is_file() else head
    if head.is_file() and not HeadSpec.present(folder):
        return None  # a Keras head alone: --descriptor (default: the network's own) says what it takes
    return first_spec(folder).descriptor


@click.command(
    "export",
    epilog=epilog("gender-cli export --precision int8 --calibration faces/ --set-default", {**OK, **ERRORS}),
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
    "(the default is classifier-fp32.onnx until another is chosen so).",
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
    from gender_cli import workspace
    from gender_cli.convert.source import load_network
    from gender_cli.export.export import export
    from gender_cli.export.scratch_export import load_scratch_network

    if precision == "int8" and calibration is None:
        raise click.UsageError("--precision int8 needs --calibration FOLDER (face images to calibrate on)")
    if set_default and backbone_only:
        raise click.UsageError("--set-default needs a classifier (a head); a backbone cannot be the default")
    if head is not None and not backbone_only:
        _head_descriptor(head)  # a --head without a head fails before the network is read
    scratch = _scratch_run(weights, head, backbone_only)
    # before the default head: without a network, its note would be noise
    network = load_scratch_network(scratch) if scratch is not None else load_network(weights)
    if scratch is not None and head is None and not backbone_only:
        head = scratch  # a from-scratch network's heads are its own run's
    head_dir, note = _resolve_head(head, backbone_only, weights, network)
    if set_default and head_dir is None:
        raise click.UsageError("--set-default needs a classifier (a head); a backbone cannot be the default")
    head_descriptor = _head_descriptor(head_dir) if head_dir is not None else None
    if head_descriptor is not None:
        if descriptor is not None and descriptor != head_descriptor:
            raise click.BadParameter(
                f"the head in {head_dir} was trained on {head_descriptor!r}; "
                f"drop --descriptor or use --backbone-only",
                param_hint="--descriptor",
            )
        descriptor = head_descriptor
    descriptor = descriptor or contract.default_descriptor(layer.name for layer in network.layers)
    if output is None:
        output = workspace.classifier_path(precision) if head_dir else workspace.backbone_path(descriptor, precision)
    if set_default and Path(output).resolve().parent != workspace.models_dir().resolve():
        raise click.BadParameter(
            f"the default classifier lives in {workspace.models_dir()}; drop -o or --set-default",
            param_hint="--set-default",
        )
    if note:
        click.echo(f"Note: {note}", err=True)
    progress = StageProgress(quiet, PROGRESS_LABELS)
    try:
        result = export(
            network, output, descriptor=descriptor, head=head_dir, precision=precision,
            calibration=calibration, external_data=external_data, progress=progress,
        )
    finally:
        progress.close()
    _print_summary(result)
    if set_default:
        workspace.set_default_classifier(result.path)
        click.echo(f"  default classifier: {result.path} (classify, bench and evaluate use it without --model)")


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


