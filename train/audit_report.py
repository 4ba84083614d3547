"""An audit's ``report.html`` (self-contained: tables, charts, thumbnails) and ``report.md``
(the same tables for a terminal), rendered from the summary ``audit`` writes to
``metrics.json``."""

from __future__ import annotations

from pathlib import Path

from gender_cli.contract import LABELS, STANDIN_WARNING
from gender_cli.html_report import (
    Cell, Column, Tile, bullets, charts, estimate_cell, figure, page, paragraph, table, tile_grid, write_page,
)
from gender_cli.svg_charts import PALETTE, Bar, Series, bar_chart, line_chart
from gender_cli.train.group_metrics import ALL, CLASS_ERRORS, METRICS, interval_text
from gender_cli.train.report import write_report

WRONG_SHOWN = 24
RACE_NOTE = ("The race groups are UTKFace's own coarse labels, five codes (white, black, asian, indian, others) "
             "given by the data set's annotators from the picture, not people's own description of themselves; "
             "read them as a rough check for unequal errors, nothing finer.")
SWEPT = tuple(m.name for m in CLASS_ERRORS)
CHARTED = ("accuracy", *SWEPT)
HEADINGS = {m.name: m.heading for m in METRICS}
MOST_LINES = len(PALETTE)  # a grouping with more groups gets no per-group line chart (colours would repeat)


def write_reports(out_dir: Path, summary: dict, wrong: list[tuple[str, str, float]]) -> dict[str, Path]:
    """``report.html`` and ``report.md``; ``wrong``: (path, true label, p_female) of the
    wrongly labelled images, most confident first."""
    standin = summary["standin"]
    html_path = write_page(Path(out_dir) / "report.html", render_html(summary, wrong))
    md_path = write_report(Path(out_dir) / "report.md", f"Audit of {Path(summary['model']).name}",
                           markdown_sections(summary), standin)
    return {"report_html": html_path, "report": md_path}


def _facts(summary: dict) -> list[str]:
    threshold = summary["threshold"]
    data = summary["data"]
    facts = [
        f"model: {summary['model']} ({summary['precision']}"
        + (", calibrated by train" if summary["calibrated"] else ", made before calibration") + ")",
        f"data: {data['root']} (layout {data['layout']}); audited: {summary['selection']}; images: "
        f"{summary['images']}; unreadable: {len(summary['unreadable'])}",
        f"label: {LABELS[1]} when p_{LABELS[1]} >= {threshold['value']:.4f} ({threshold['source']})",
        f"groups: {', '.join(summary['groups'])}",
        "intervals: 95 %; Wilson for rates, Newcombe for differences of rates, a stratified bootstrap "
        f"for balanced accuracy and ROC AUC; no interval under {summary['intervals']['min_images_for_a_rate_interval']} "
        "images for a rate, or under "
        f"{summary['intervals']['min_images_per_class_for_a_bootstrap_interval']} images of a class for the others",
    ]
    return facts


def _uses_race(summary: dict) -> bool:
    return any("race" in table["columns"] for table in summary["by_group"].values())


def _metric_cells(row: dict) -> dict:
    cells = {name: estimate_cell(row[name], row[f"{name}_low"], row[f"{name}_high"]) for name in HEADINGS}
    cells["ece"] = Cell("" if row.get("ece") is None else f"{row['ece']:.4f}",
                        "" if row.get("ece") is None else f"{row['ece']:.6f}")
    return cells


def _group_columns(first: str) -> list[Column]:
    return [Column("group", first, text=True), Column("n", "n"),
            *(Column(f"n_{label}", f"n {label}") for label in LABELS),
            *(Column(name, heading) for name, heading in HEADINGS.items()), Column("ece", "ECE")]


def _notes(rows: list[dict]) -> str:
    notes = [f"{row['group']}: {row['note']}" for row in rows if row["note"]]
    return ('<div class="note">' + bullets(notes) + "</div>") if notes else ""


def _gap_rows(gaps: list[dict]) -> list[dict]:
    rows = []
    for gap in gaps:
        rows.append({
            "metric": HEADINGS[gap["metric"]],
            "gap": estimate_cell(gap["gap"], gap["gap_low"], gap["gap_high"], missing=gap["reason"] or "n/a"),
            "high_group": gap["high_group"] or "", "low_group": gap["low_group"] or "",
            "compared": gap["compared"], "left_out": ", ".join(gap["left_out"]),
        })
    return rows


GAP_COLUMNS = [Column("metric", "metric", text=True), Column("gap", "largest gap (highest - lowest)"),
               Column("high_group", "highest", text=True), Column("low_group", "lowest", text=True),
               Column("compared", "groups compared"), Column("left_out", "left out (too few images)", text=True)]


def render_html(summary: dict, wrong: list[tuple[str, str, float]]) -> str:
    threshold = summary["threshold"]["value"]
    intro = bullets(_facts(summary))
    if _uses_race(summary):
        intro += paragraph(RACE_NOTE, "note")
    overall = {"group": ALL, **summary["overall"], **_metric_cells(summary["overall"])}
    sections = [("All images", table(_group_columns(""), [overall]) + _notes([summary["overall"]]))]
    for name, block in summary["by_group"].items():
        rows = [{**row, **_metric_cells(row)} for row in block["rows"]]
        bars = [charts(*(figure(bar_chart(
            [Bar(row["group"], row[metric], row[f"{metric}_low"], row[f"{metric}_high"],
                 faint=row[f"{metric}_low"] is None) for row in block["rows"]],
            f"{HEADINGS[metric]} by {name}", HEADINGS[metric])) for metric in CHARTED))
            + paragraph("Whiskers: 95 % intervals; a pale bar has too few images for one.", "note")]
        sections.append((f"By {name}", table(_group_columns(name), rows) + _notes(block["rows"]) + "".join(bars)
                         + "<h3>Largest gap between groups</h3>" + table(GAP_COLUMNS, _gap_rows(block["gaps"]))))
    sections.append(("Calibration", _calibration_html(summary)))
    sections.append(("Choosing a threshold", _sweep_html(summary, threshold)))
    tiles = [Tile(path, f"true {true}, p_{LABELS[1]} {p:.3f}") for path, true, p in wrong[:WRONG_SHOWN]]
    sections.append((f"Wrong labels, most confident first ({len(wrong)} in all)",
                     tile_grid(tiles) if tiles else paragraph("No image is labelled wrongly.")))
    warning = STANDIN_WARNING if summary["standin"] else None
    return page(f"Audit of {Path(summary['model']).name}", sections, intro, warning)


def _calibration_html(summary: dict) -> str:
    calibration = summary["calibration"]
    overall = calibration["overall"]
    of = calibration["of"]
    parts = [paragraph(f"How often the images given a probability p of being {LABELS[1]} are {LABELS[1]}: on the "
                       f"diagonal, {of} means what it says. ECE (expected calibration error) is the image-weighted "
                       f"mean distance from the diagonal over {calibration['bins']} bins of {of}; all images: "
                       + ("n/a" if overall["ece"] is None else f"{overall['ece']:.4f}") + ".")]
    figures = [figure(_reliability_chart({ALL: overall["reliability"]}, "Reliability, all images", of),
                      "Each point is a bin, its area the number of images in it.")]
    for name, groups in _drawn(calibration["by_group"]).items():
        figures.append(figure(_reliability_chart({g: v["reliability"] for g, v in groups.items()},
                                                 f"Reliability by {name}", of)))
    return "".join(parts) + charts(*figures) + _too_many(calibration["by_group"], "metrics.json")


def _drawn(by_group: dict) -> dict:
    """The groupings with few enough groups for one line or colour each."""
    return {name: groups for name, groups in by_group.items() if len(groups) <= MOST_LINES}


def _too_many(by_group: dict, where: str) -> str:
    skipped = [f"{name} ({len(groups)} groups)" for name, groups in by_group.items() if len(groups) > MOST_LINES]
    return paragraph(f"Not drawn, too many groups for one chart: {', '.join(skipped)}; the figures are in {where}.",
                     "note") if skipped else ""


def _reliability_chart(tables: dict[str, list[dict]], title: str, of: str) -> str:
    series = [Series(name, [b["mean_p"] for b in bins if b["n"]], [b["frequency"] for b in bins if b["n"]],
                     points=True, sizes=[b["n"] for b in bins if b["n"]]) for name, bins in tables.items()]
    return line_chart(series, title, f"mean {of} in the bin", f"share of {LABELS[1]} images", diagonal=True)


def _sweep_html(summary: dict, threshold: float) -> str:
    sweep = summary["sweep"]
    xs = sweep["thresholds"]
    overall = sweep["overall"]
    figures = [figure(line_chart([Series(HEADINGS[m], xs, overall[m] or []) for m in ("accuracy", "balanced_accuracy")],
                                 "All images against the threshold", f"threshold on p_{LABELS[1]}", "share",
                                 marker=threshold),
                      f"The dashed line is the threshold of this audit ({threshold:.4f}).")]
    for name, groups in _drawn(sweep["by_group"]).items():
        for metric in SWEPT:
            series = [Series(group, xs, table[metric]) for group, table in groups.items() if table[metric]]
            figures.append(figure(line_chart(series, f"{HEADINGS[metric]} by {name}", f"threshold on p_{LABELS[1]}",
                                             "share", marker=threshold)))
    return (paragraph("Each group's error rates at every threshold from 0 to 1 (threshold_sweep.csv has the "
                      "numbers): a lower threshold labels more images female, trading one error for the other. "
                      "'gender-cli audit --threshold T' reports every table at one threshold.")
            + charts(*figures) + _too_many(sweep["by_group"], "threshold_sweep.csv"))


def markdown_sections(summary: dict) -> list[tuple[str, list[str]]]:
    facts = [f"- {fact}" for fact in _facts(summary)]
    if _uses_race(summary):
        facts += ["", RACE_NOTE]
    heads = ["n", *(f"n {label}" for label in LABELS), *HEADINGS.values(), "ECE", "note"]

    def rows(first: str, records: list[dict]) -> list[str]:
        lines = [f"| {first} | " + " | ".join(heads) + " |", "|---" * (len(heads) + 1) + "|"]
        for r in records:
            cells = [str(r["n"]), *(str(r[f"n_{label}"]) for label in LABELS),
                     *(interval_text(r, m) for m in HEADINGS),
                     "n/a" if r.get("ece") is None else f"{r['ece']:.4f}", r["note"]]
            lines.append(f"| {r['group']} | " + " | ".join(cells) + " |")
        return lines

    sections = [("Audit", facts), ("All images", rows("", [summary["overall"]]))]
    for name, block in summary["by_group"].items():
        gap_lines = ["", "Largest gap between groups (highest - lowest, with its interval):", ""]
        for gap in block["gaps"]:
            gap_lines.append(f"- {HEADINGS[gap['metric']]}: " + (
                f"{interval_text(gap, 'gap')} ({gap['high_group']} - "
                f"{gap['low_group']}, {gap['compared']} groups compared)" if gap["gap"] is not None else gap["reason"]))
        sections.append((f"By {name}", rows(name, block["rows"]) + gap_lines))
    sections.append(("Files", ["- report.html: this report with charts and thumbnails",
                               "- groups.csv, metrics.json, threshold_sweep.csv, predictions.csv"]))
    return sections

