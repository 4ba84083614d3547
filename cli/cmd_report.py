"""``gender-cli report``: summarise a classify output (no labels needed) as HTML and Markdown."""

from __future__ import annotations

from pathlib import Path

import click

from gender_cli.cli.help_format import ERRORS, OK, epilog
from gender_cli.cli.options import check_output_location
from gender_cli.infer.writer import FORMATS
from gender_cli.infer.report import DEFAULT_BAND


@click.command("report", epilog=epilog("gender-cli report predictions.csv -o report/", {**OK, **ERRORS}))
@click.argument("predictions", type=click.Path(path_type=Path))
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for report.html, report.md, summary.json and uncertain.csv. Default: "
              "$GENDER_CLI_HOME/reports/<name>-NNN.")
@click.option("--uncertain", "band", type=click.FloatRange(0, 0.5, min_open=True, max_open=True),
              default=DEFAULT_BAND, show_default=True,
              help="Rows whose probability is within this distance of the threshold count as uncertain.")
@click.option("--threshold", type=click.FloatRange(0, 1), default=None,
              help="The threshold the labels follow. Default: read from the rows (0.5 for a calibrated graph).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="Format of PREDICTIONS. Default: from its extension (a folder is parquet), else csv.")
def report(predictions, out_dir, band, threshold, fmt):
    """Summarise PREDICTIONS, the output of 'gender-cli classify', for a collection without labels.

    Counts per label and per top-level folder, the confidence histogram, the rows
    near the threshold (uncertain), the error categories, and thumbnails of the
    most uncertain and the failed files, in one self-contained report.html (opens
    offline) and report.md. The images are read from the paths in the rows.
    """
    from gender_cli.infer.report import report as run_report

    if out_dir is not None:
        check_output_location(out_dir, "--output")
    result = run_report(predictions, out_dir, band=band, threshold=threshold, fmt=fmt)
    summary = result.summary
    line = f"{summary['rows']} rows: {summary['classified']} classified, {summary['failed']} failed"
    if "by_label" in summary:
        line += " (" + ", ".join(f"{label} {n}" for label, n in summary["by_label"].items()) + f"); uncertain: " \
                f"{summary['uncertain']['rows']}"
    click.echo(line)
    click.echo(f"report: {result.files['report_html']}")
