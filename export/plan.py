"""What ``export`` writes when options are left out: the network, head, descriptor and file.

``plan_export`` turns the verb's options and the workspace into an :class:`ExportPlan`
(the CLI and ``gender_cli.export()`` both run it): the network from ``weights`` (the
workspace's converted one by default; a ``train --from-scratch`` run folder gives its
own trained network, and is the default when the latest run is one, whose heads then
come with it); the head given, else the latest training run,
else the head ``convert`` wrote for a ready classifier (unless that run was trained on
this same network), else none (a backbone); the head's descriptor; the output file in
the workspace's ``models/``. Options that contradict each other raise
:class:`~gender_cli.errors.RequestError`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from gender_cli import contract, workspace
from gender_cli.errors import MissingArtifactError, Option, RequestError


@dataclass(frozen=True)
class ExportPlan:
    network: object  # convert.network.Network
    head: Path | None  # a run folder or a Keras file; None: the backbone alone
    descriptor: str
    output: Path
    note: str | None  # what the user should know about the head chosen for them


def plan_export(
    weights: str | os.PathLike | None = None,
    head: str | os.PathLike | None = None,
    backbone_only: bool = False,
    output: str | os.PathLike | None = None,
    precision: str = contract.DEFAULT_PRECISION,
    calibration: str | os.PathLike | None = None,
    descriptor: str | None = None,
    set_default: bool = False,
) -> ExportPlan:
    """Check the options, read the network and choose what they leave open (see the module docstring)."""
    from gender_cli.convert.source import load_network
    from gender_cli.export.scratch_export import load_scratch_network

    weights = Path(weights) if weights is not None else None
    head = Path(head) if head is not None else None
    if precision == "int8" and calibration is None:
        raise RequestError(Option("precision", "int8"), " needs ", Option("calibration"),
                           " FOLDER (face images to calibrate on)")
    if set_default and backbone_only:
        raise RequestError(Option("set_default"), " needs a classifier (a head); a backbone cannot be the default")
    if backbone_only and head is not None:
        raise RequestError(Option("head"), " and ", Option("backbone_only"), " exclude each other")
    if head is not None and not backbone_only:
        head_descriptor(head)  # a head without a head fails before the network is read
    scratch = scratch_run(weights, head, backbone_only)
    # before the default head: without a network, its note would be noise
    network = load_scratch_network(scratch) if scratch is not None else load_network(weights)
    if scratch is not None and head is None and not backbone_only:
        head = scratch  # a from-scratch network's heads are its own run's
    head, note = _resolve_head(head, backbone_only, weights, network)
    if set_default and head is None:
        raise RequestError(Option("set_default"), " needs a classifier (a head); a backbone cannot be the default")
    trained_on = head_descriptor(head) if head is not None else None
    if trained_on is not None:
        if descriptor is not None and descriptor != trained_on:
            raise RequestError(f"the head in {head} was trained on {trained_on!r}; drop ", Option("descriptor"),
                               " or use ", Option("backbone_only"), option="descriptor")
        descriptor = trained_on
    descriptor = descriptor or contract.default_descriptor(layer.name for layer in network.layers)
    if output is None:
        output = workspace.classifier_path(precision) if head else workspace.backbone_path(descriptor, precision)
    output = Path(output)
    if set_default and output.resolve().parent != workspace.models_dir().resolve():
        raise RequestError(f"the default classifier lives in {workspace.models_dir()}; drop ", Option("output"),
                           " or ", Option("set_default"), option="set_default")
    return ExportPlan(network, head, descriptor, output, note)


def scratch_run(weights: Path | None, head: Path | None, backbone_only: bool) -> Path | None:
    """The ``train --from-scratch`` run whose own network is to be exported: ``weights``
    when it is one, else (no ``weights``) the head given or, by default, the latest run,
    when it is one. None: the network is a converted one."""
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


def converted_head(weights: Path | None) -> Path | None:
    """The head/ that convert wrote beside the network (a ready classifier), if any."""
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
    from gender_cli.head_spec import HeadSpec, first_spec

    if backbone_only:
        return None, None
    if head is not None:
        return head, None
    converted = converted_head(weights)
    try:
        run = workspace.latest_head_dir()
    except MissingArtifactError:
        run = None
    if run is not None and (converted is None or first_spec(run).backbone_sha256 == network.source_sha256):
        return run, f"using the heads of the latest training run, {run}"
    if converted is not None:
        spec, _, _ = HeadSpec.load(converted)
        other = f"; the latest run ({run}) was trained on other weights" if run is not None else ""
        return converted, f"using the head that convert wrote ({converted}: {spec.source}){other}"
    return None, (
        f"no trained head in {workspace.runs_dir()}: exporting the backbone only "
        "(train one with 'gender-cli train DATA/', or pass --head RUN_DIR)"
    )


def head_descriptor(head: Path) -> str | None:
    """The descriptor a head was trained on: its spec (beside a Keras file), if any."""
    from gender_cli.head_spec import HeadSpec, first_spec

    folder = head.parent if head.is_file() else head
    if head.is_file() and not HeadSpec.present(folder):
        return None  # a Keras head alone: --descriptor (default: the network's own) says what it takes
    return first_spec(folder).descriptor
