"""``gender-cli audit``: per-group error rates with intervals, calibration and a report."""

from __future__ import annotations

from pathlib import Path

import click

from gender_cli.cli.help_format import ERRORS, OK, epilog
from gender_cli.cli.messages import notice, using_model, warn_if_standin
from gender_cli.cli.options import (
    batch_option, check_output_location, detect_options, device_option, labelled_data_options, model_option,
    parsed_by, quiet_option, workers_option,
)


@click.command(
    "audit",
    epilog=epilog("gender-cli audit faces/ --groups race,age_band,race*age_band --splits runs/001/splits.csv",
                  {**OK, **ERRORS}),
)
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--groups", "groups", required=True, callback=parsed_by("gender_cli.train.groups", "parse_groups"), metavar="COL[,COL]",
              help="Group columns, comma-separated; 'a*b' for the pairs of two columns' values. A manifest's "
              "other columns by their names; UTKFace names give race (white, black, asian, indian, others); "
              "any usable age gives age_band (0-19, 20-39, 40-59, 60+); agegender gives pool; the folders "
              "below DATA give folder1, folder2, ... (below male/ and female/ for class folders).")
@model_option
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for groups.csv, metrics.json, threshold_sweep.csv, predictions.csv, report.md and "
              "report.html. Default: $GENDER_CLI_HOME/audits/<model>-NNN.")
@click.option("--threshold", type=click.FloatRange(0, 1), default=None,
              help="Label female when p_female >= this, to examine another operating point. Default: the "
              "model's threshold (0.5 for a head that train calibrated).")
@labelled_data_options("Audit")
@detect_options(max_faces=False)
@batch_option(32)
@workers_option
@device_option
@quiet_option
def audit(data, groups, model_path, out_dir, threshold, layout, split, splits_file, detect, batch, workers, device,
          quiet):
    """Per-group accuracy, error rates and ROC AUC of a classifier on labelled DATA, with 95 % intervals.

    For every value of each group column (and each pair with a*b): n, accuracy,
    balanced accuracy, the share of women labelled men and of men labelled women,
    ROC AUC, each with its interval (Wilson for rates, a stratified bootstrap for
    balanced accuracy and AUC; none where a group has too few images), the largest
    gap between groups with its interval, calibration (reliability and ECE) and the
    error rates at every threshold. DATA is what train and evaluate read. Writes a
    self-contained report.html (opens offline) and report.md.
    """
    from gender_cli import workspace
    from gender_cli.train.audit import audit as run_audit

    if out_dir is not None:
        check_output_location(out_dir, "--output")
    model_path = Path(model_path) if model_path else workspace.default_classifier()
    using_model(model_path, quiet=quiet)
    result = run_audit(data, groups, model_path=model_path, out_dir=out_dir, layout=layout, split=split,
                       splits_file=splits_file, threshold=threshold, batch_size=batch, workers=workers, device=device,
                       progress=not quiet, faces=detect)
    for message in result.notices:
        notice(message, quiet)
    warn_if_standin(result.standin)
    if result.unreadable and not quiet:
        click.echo(f"{len(result.unreadable)} unreadable image(s) left out (listed in metrics.json)", err=True)
    click.echo(_summary(result.summary))
    click.echo(f"report: {result.files['report_html']}")


def _summary(summary: dict) -> str:
    """``accuracy 0.9123 [0.8990, 0.9240] on 400 images``, then the largest accuracy gap per grouping."""
    from gender_cli.train.group_metrics import interval_text

    overall = summary["overall"]
    lines = [f"accuracy {interval_text(overall, 'accuracy')} on {overall['n']} images "
             f"(threshold {summary['threshold']['value']:.4f})"]
    for name, block in summary["by_group"].items():
        gap = next(g for g in block["gaps"] if g["metric"] == "accuracy")
        lines.append(f"{name}: {len(block['rows'])} groups; " + (
            f"accuracy gap: {gap['reason']}" if gap["gap"] is None else
            f"largest accuracy gap {interval_text(gap, 'gap')} ({gap['high_group']} vs {gap['low_group']})"))
    return "\n".join(lines)
