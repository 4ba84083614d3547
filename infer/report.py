"""``report``: a summary of a ``classify`` output, for collections without labels.

``report(predictions, out_dir)`` reads the rows (``read_predictions``) and writes::

    summary.json     counts per label and per top-level folder, the confidence histogram,
                     the uncertain band, error categories
    uncertain.csv    path,label,p_<label>...,distance: the rows within the band, most uncertain first
    report.md, report.html   the same, readable; the HTML adds thumbnails of the most
                     uncertain and the failed files (self-contained: html_report)

The threshold is the one the labels follow: given, or read from the rows (0.5 when
every label is the class with the larger probability; otherwise the smallest
probability labelled as the second class, and a note says so). A row is uncertain
when its probability of the second label is within ``band`` of the threshold. The
top-level folder of a file is the first folder below the folder that all the rows'
files share.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gender_cli import workspace
from gender_cli.atomic import names_file, write_json_atomically
from gender_cli.errors import GenderCliError
from gender_cli.html_report import (
    Column, Tile, bullets, charts, figure, page, paragraph, table, tile_grid, write_page,
)
from gender_cli.infer.read_predictions import PredictionRow, Predictions, read_predictions
from gender_cli.svg_charts import Bar, bar_chart, histogram

DEFAULT_BAND = 0.1
HISTOGRAM_BINS = 20
AGE_BIN_YEARS = 5
TILES = 24  # thumbnails of each kind in the HTML
TOP_LEVEL = "."  # the group of files directly in the shared folder
SUMMARY_FILE = "summary.json"
UNCERTAIN_FILE = "uncertain.csv"


@dataclass
class ReportResult:
    out_dir: Path
    files: dict[str, Path]
    summary: dict


def report(predictions: str | Path, out_dir: str | Path | None = None, band: float = DEFAULT_BAND,
           threshold: float | None = None, fmt: str | None = None) -> ReportResult:
    """Summarise the classify output ``predictions`` into ``out_dir`` (default:
    ``$GENDER_CLI_HOME/reports/<name>-NNN``)."""
    if not 0 < band < 0.5:
        raise GenderCliError(f"the uncertain band is a distance in probability between 0 and 0.5, got {band}")
    data = read_predictions(predictions, fmt)
    if not data.rows:
        raise GenderCliError(f"{data.source} has no rows")
    summary = summarise(data, band, threshold)
    out_dir = Path(out_dir) if out_dir else workspace.new_output_dir("reports", data.source.stem)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"summary": write_json_atomically(out_dir / SUMMARY_FILE, summary)}
    if data.labels:
        files["uncertain"] = _write_uncertain(out_dir / UNCERTAIN_FILE, data, summary)
    files["report_html"] = write_page(out_dir / "report.html", render_html(data, summary))
    files["report"] = _write_markdown(out_dir / "report.md", summary)
    return ReportResult(out_dir, files, summary)


def _shared_folder(paths: list[str]) -> str:
    parents = [os.path.dirname(p) for p in paths]
    try:
        return os.path.commonpath(parents) if parents else ""
    except ValueError:  # absolute and relative paths mixed
        return ""


def _top_level(path: str, shared: str) -> str:
    relative = os.path.relpath(os.path.dirname(path) or ".", shared or ".")
    return TOP_LEVEL if relative == "." else relative.split(os.sep)[0]


def label_threshold(data: Predictions, given: float | None) -> tuple[float, str]:
    """The threshold the labels follow, and where it comes from."""
    if given is not None:
        return float(given), "given"
    second = data.labels[1]
    scores = [(r.probabilities[second], r.label) for r in data.rows if r.probabilities]
    below = [p for p, label in scores if label != second]
    above = [p for p, label in scores if label == second]
    if (not below or max(below) < 0.5) and (not above or min(above) >= 0.5):
        return 0.5, "the rows (every label is the larger probability)"
    found = min(above) if above else 1.0
    return found, (f"the rows: the labels follow a threshold between {max(below, default=0):.4f} and "
                   f"{found:.4f} on p_{second}, not 0.5 (a graph from before calibration); pass --threshold "
                   "to set it")


def summarise(data: Predictions, band: float = DEFAULT_BAND, threshold: float | None = None) -> dict:
    """The report's figures as JSON-ready data."""
    rows = data.rows
    shared = _shared_folder([r.path for r in rows])
    failed = [r for r in rows if r.error]
    summary: dict = {
        "source": str(data.source),
        "rows": len(rows),
        "one_row_per": "face" if data.faces else "file",
        "files": len({r.path for r in rows}),
        "classified": len(rows) - len(failed),
        "failed": len(failed),
        "labels": data.labels,
        "shared_folder": shared,
        "errors": dict(sorted(Counter(r.category for r in failed).items())),
    }
    folders: dict[str, Counter] = {}
    for r in rows:
        folders.setdefault(_top_level(r.path, shared), Counter())[r.label if not r.error else "failed"] += 1
    summary["by_folder"] = {name: {**{label: counts.get(label, 0) for label in data.labels},
                                   "failed": counts.get("failed", 0), "rows": sum(counts.values())}
                            for name, counts in sorted(folders.items())}
    if data.labels:
        value, source = label_threshold(data, threshold)
        second = data.labels[1]
        scored = [r for r in rows if r.probabilities]
        p = np.array([r.probabilities[second] for r in scored], np.float64)
        counts, edges = np.histogram(p, bins=HISTOGRAM_BINS, range=(0.0, 1.0))
        own = np.array([r.probabilities[r.label] for r in scored if r.label in r.probabilities], np.float64)
        uncertain = uncertain_rows(data, value, band)
        summary.update({
            "threshold": {"value": value, "source": source},
            "by_label": {label: sum(r.label == label for r in scored) for label in data.labels},
            "histogram": {"of": f"p_{second}", "edges": edges.tolist(), "counts": counts.tolist()},
            "confidence": {"of": "the probability of each row's own label",
                           "mean": float(own.mean()) if len(own) else None,
                           "at_least_0.9": int((own >= 0.9).sum()), "below_0.6": int((own < 0.6).sum())},
            "uncertain": {"band": band, "rows": len(uncertain),
                          "share": float(len(uncertain) / len(scored)) if scored else None,
                          "by_label": dict(Counter(r.label for r in uncertain)),
                          "paths": [r.path for r in uncertain]},
        })
    if data.ages:
        ages = np.array([r.age for r in rows if r.age is not None], np.float64)
        top = max(100.0, float(np.ceil(ages.max() / AGE_BIN_YEARS) * AGE_BIN_YEARS)) if len(ages) else 100.0
        counts, edges = np.histogram(ages, bins=int(top / AGE_BIN_YEARS), range=(0.0, top))
        summary["age"] = {"n": int(len(ages)), "mean": float(ages.mean()) if len(ages) else None,
                          "histogram": {"edges": edges.tolist(), "counts": counts.tolist()}}
    return summary


def uncertain_rows(data: Predictions, threshold: float, band: float) -> list[PredictionRow]:
    """The classified rows whose probability of the second label is within ``band`` of
    ``threshold``, the closest first."""
    second = data.labels[1]
    distance = [(abs(r.probabilities[second] - threshold), i) for i, r in enumerate(data.rows) if r.probabilities]
    return [data.rows[i] for d, i in sorted(distance) if d <= band]


def _write_uncertain(path: Path, data: Predictions, summary: dict) -> Path:
    threshold = summary["threshold"]["value"]
    second = data.labels[1]
    with names_file(path), path.open("w", newline="", encoding="utf-8", errors="surrogateescape") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "label", *(f"p_{label}" for label in data.labels), "distance"])
        for r in uncertain_rows(data, threshold, summary["uncertain"]["band"]):
            writer.writerow([r.path, r.label, *(f"{r.probabilities[label]:.6f}" for label in data.labels),
                             f"{abs(r.probabilities[second] - threshold):.6f}"])
    return path


def _facts(summary: dict) -> list[str]:
    facts = [f"source: {summary['source']} ({summary['rows']} rows, one per {summary['one_row_per']}; "
             f"{summary['files']} files)",
             f"classified: {summary['classified']}; failed: {summary['failed']}"
             + ("" if not summary["errors"] else " (" + ", ".join(f"{k} {v}" for k, v in summary["errors"].items())
                + ")")]
    if "threshold" in summary:
        t = summary["threshold"]
        second = summary["labels"][1]
        facts += [
            "labels: " + ", ".join(f"{label} {n}" for label, n in summary["by_label"].items()),
            f"threshold: {second} when p_{second} >= {t['value']:.4f} (from {t['source']})",
            f"uncertain (p_{second} within {summary['uncertain']['band']:g} of the threshold): "
            f"{summary['uncertain']['rows']} rows"
            + (f" ({summary['uncertain']['share']:.1%} of those classified)" if summary["uncertain"]["share"] is not None
               else ""),
        ]
    return facts


def render_html(data: Predictions, summary: dict) -> str:
    labels = summary["labels"]
    sections = []
    folder_columns = [Column("folder", "top-level folder", text=True), Column("rows", "rows"),
                      *(Column(label, label) for label in labels), Column("failed", "failed")]
    folder_rows = [{"folder": name, **counts} for name, counts in summary["by_folder"].items()]
    sections.append(("Per top-level folder", paragraph(f"Folders below {summary['shared_folder'] or '.'}; "
                                                       f"'{TOP_LEVEL}' holds the files directly in it.", "note")
                     + table(folder_columns, folder_rows)))
    if labels:
        second = labels[1]
        histo = summary["histogram"]
        bars = bar_chart([Bar(label, n / max(1, summary["classified"])) for label, n in summary["by_label"].items()],
                         "Share of each label", "share of classified rows")
        sections.insert(0, ("Labels", charts(
            figure(bars),
            figure(histogram(histo["edges"], histo["counts"], f"Confidence: p_{second} of every classified row",
                             f"p_{second}", marker=summary["threshold"]["value"]),
                   f"Left of the dashed threshold: {labels[0]}; right: {second}. Rows near it are uncertain."))))
        uncertain = uncertain_rows(data, summary["threshold"]["value"], summary["uncertain"]["band"])[:TILES]
        sections.append((f"The most uncertain rows ({summary['uncertain']['rows']} within "
                         f"{summary['uncertain']['band']:g} of the threshold)",
                         tile_grid([Tile(r.path, f"{r.label}, p_{second} {r.probabilities[second]:.3f}", r.box)
                                    for r in uncertain]) if uncertain else paragraph("None.")))
    if "age" in summary:
        age = summary["age"]
        sections.append(("Ages", charts(figure(histogram(age["histogram"]["edges"], age["histogram"]["counts"],
                                                         "Estimated ages", "years")))))
    error_rows = [{"category": k, "rows": v} for k, v in summary["errors"].items()]
    failed = [r for r in data.rows if r.error][:TILES]
    sections.append((f"Failed files ({summary['failed']})",
                     (table([Column("category", "error category", text=True), Column("rows", "rows")], error_rows)
                      + tile_grid([Tile(r.path, r.error or "", None) for r in failed])) if failed
                     else paragraph("Every file was classified.")))
    return page(f"Report on {Path(summary['source']).name}", sections, bullets(_facts(summary)))


def _write_markdown(path: Path, summary: dict) -> Path:
    from gender_cli.atomic import write_bytes_atomically

    labels = summary["labels"]
    lines = [f"# Report on {Path(summary['source']).name}", "", *(f"- {fact}" for fact in _facts(summary)), "",
             "## Per top-level folder", "", "| folder | rows | " + " | ".join(labels + ["failed"]) + " |",
             "|---" * (len(labels) + 3) + "|"]
    for name, counts in summary["by_folder"].items():
        lines.append(f"| {name} | {counts['rows']} | " + " | ".join(str(counts[k]) for k in labels + ["failed"]) + " |")
    if labels:
        histo = summary["histogram"]
        lines += ["", f"## Confidence ({histo['of']})", "", "| from | to | rows |", "|---|---|---|"]
        lines += [f"| {lo:.2f} | {hi:.2f} | {n} |" for lo, hi, n in zip(histo["edges"], histo["edges"][1:],
                                                                        histo["counts"])]
        lines += ["", f"Most uncertain rows: {UNCERTAIN_FILE}."]
    if summary["errors"]:
        lines += ["", "## Errors", "", "| category | rows |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in summary["errors"].items()]
    lines += ["", "report.html has the charts and the thumbnails.", ""]
    return write_bytes_atomically(path, "\n".join(lines).encode("utf-8"))
