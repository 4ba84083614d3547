"""``gender-cli inspect FILE``: what a weights file holds, layer by layer."""

from __future__ import annotations

import json
from pathlib import Path

import click

from gender_cli.cli.help_format import ERRORS, OK, epilog


@click.command("inspect", epilog=epilog("gender-cli inspect VGG_FACE.caffemodel --json", {**OK, **ERRORS}))
@click.argument("weights_file", metavar="FILE", type=click.Path(dir_okay=False, path_type=str))
@click.option(
    "--prototxt",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Caffe deploy file (text) with the layer parameters, for a .caffemodel that lacks them.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object instead of a table.")
def inspect_cmd(weights_file: str, prototxt, as_json: bool) -> None:
    """Show a weights file (MatConvNet .mat, Caffe .caffemodel, Keras HDF5, dlib .dat):
    format, stand-in or real weights, every layer (kernel, stride, pad, pooling,
    parameters, the layers a residual join takes), input size, mean, classes and sha256.

    Layers that 'gender-cli convert' cannot handle are listed too, with the reason.
    """
    from gender_cli.convert.inspect import inspect

    report = inspect(weights_file, prototxt)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(format_report(report))


def _dims(values, sep: str = "x") -> str:
    return "" if values is None else sep.join(str(v) for v in values)


def format_report(report: dict) -> str:
    weights = (
        f"STAND-IN ({report['standin_note']})" if report["standin"] else "not marked as stand-in"
    )
    mean = "none" if report["mean"] is None else " ".join(f"{m:.4f}" for m in report["mean"])
    lines = [
        f"file:        {report['path']}",
        f"sha256:      {report['sha256']}",
        f"format:      {report['format']} ({report['detail']})",
        f"weights:     {weights}",
        f"input size:  {_dims(report['input_size'])}",
        f"mean (RGB):  {mean}",
        f"classes:     {report['num_classes']}",
        f"parameters:  {report['num_params']:,}",
        f"layers:      {report['num_layers']}",
    ]
    head = report["head"]
    if head:
        lines.append(
            f"head:        on {head['descriptor']}, {' -> '.join(_dims(s) for s in head['shape'])}, "
            f"outputs {', '.join(head['source_labels'])} -> labels {', '.join(head['labels'])}"
        )
    lines += [f"note:        {note}" for note in report["notes"]]
    graph = any(layer.get("inputs") for layer in report["layers"])  # a residual network: say what joins
    rows = [("#", "name", "type", "kernel", "stride", "pad", "pool", "params") + (("takes",) if graph else ())]
    for layer in report["layers"]:
        pool = f"{_dims(layer['pool'])} {layer['method']}" if layer["pool"] else ""
        rows.append(
            (
                str(layer["index"]),
                layer["name"],
                layer["type"] or "?",
                _dims(layer["kernel"]),
                _dims(layer["stride"]),
                _dims(layer["pad"], ","),
                pool,
                f"{layer['params']:,}",
            )
            + ((", ".join(layer.get("inputs") or ()),) if graph else ())
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines.append("")
    for row in rows:
        cells = [cell.rjust(w) if i in (0, 7) else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    if report["problems"]:
        lines.append("")
        lines.append(f"'gender-cli convert' cannot handle this file ({len(report['problems'])} problem(s)):")
        lines += [f"  {problem}" for problem in report["problems"]]
        lines.append(f"  supported layer types: {', '.join(report['supported_types'])}")
    return "\n".join(lines)
