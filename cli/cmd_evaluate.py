"""``gender-cli evaluate``: metrics and plots of an exported classifier on labelled data."""

from __future__ import annotations

import inspect
from collections import Counter
from pathlib import Path

import click

from gender_cli.cli.options import (
    batch_option, check_output_location, detect_options, device_option, labelled_data_options, model_option,
    quiet_option, workers_option,
)
from gender_cli.infer.detect import NO_FACE
from gender_cli.train.scoring import score
from gender_cli.cli.help_format import ERRORS, OK, epilog
from gender_cli.cli.messages import age_summary_line, gender_summary_line, notice, using_model, warn_if_standin

DEFAULTS = inspect.signature(score).parameters  # the library's defaults (evaluate passes them on), shown by --help


@click.command(
    "evaluate",
    epilog=epilog("gender-cli evaluate data/ --model ~/.gender-cli/models/classifier-int8.onnx", {**OK, **ERRORS}),
)
@click.argument("data", type=click.Path(path_type=Path))
@model_option
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for metrics.json, report.md, predictions.csv and plots. "
              "Default: $GENDER_CLI_HOME/evaluations/<model>-NNN.")
@labelled_data_options("Evaluate")
@detect_options(max_faces=False)
@batch_option(DEFAULTS["batch_size"].default)
@workers_option
@device_option
@quiet_option
def evaluate(data, model_path, out_dir, layout, split, splits_file, detect, batch, workers, device, quiet):
    """Accuracy, per-class metrics, ROC AUC, confusion matrix and plots of a classifier on DATA.

    Runs the exported ONNX classifier (fp32, fp16 or int8) with onnxruntime and the
    decision threshold stored in it, so variants and data sets compare on equal terms.
    A graph with the age head also gets MAE, RMSE, CS(5), MAE per age band and the age
    plots on the images of DATA that have an age.
    With --detect each image stands for its largest face, cropped as the model's
    metadata says (train --detect) unless the options say otherwise.
    """
    from gender_cli import workspace
    from gender_cli.train.evaluate import evaluate

    if out_dir is not None:
        check_output_location(out_dir, "--output")
    model_path = Path(model_path) if model_path else workspace.default_classifier()
    using_model(model_path, quiet=quiet)
    result = evaluate(
        data, model_path=model_path, out_dir=out_dir, layout=layout,
        split=split, splits_file=splits_file, batch_size=batch, workers=workers, device=device,
        progress=not quiet, faces=detect,
    )
    for message in result.notices:
        notice(message, quiet)
    warn_if_standin(result.standin)
    if result.unreadable and not quiet:
        counts = Counter(item["category"] for item in result.unreadable)
        reasons = ", ".join(f"{n} {'without a face found' if c == NO_FACE else c}" for c, n in sorted(counts.items()))
        click.echo(f"{len(result.unreadable)} image(s) left out: {reasons} (listed in metrics.json)", err=True)
    name = f"{result.model_path.name} ({result.precision})"
    if result.metrics is not None:
        click.echo(f"{name}: " + gender_summary_line(result.metrics))
    if result.age is not None:
        click.echo(f"{name} " + age_summary_line(result.age["metrics"], "evaluated"))
    click.echo(f"report: {result.files['report']}")
