"""``audit``: how a classifier's errors differ between groups of people, with intervals.

``audit(data, groups, ...)`` runs the classifier over the selected images of a
labelled data set (``scoring``: a run's test split, the manifest's test rows, or all
images) and writes into the output folder::

    groups.csv            group_by,group,n,<metric>,<metric>_low,<metric>_high,...,n_male,n_female,ece,note:
                          one row for all images, then one per group (group_metrics)
    metrics.json          the same rows, the largest gap per metric and grouping, calibration
                          (ECE and reliability, overall and per group), the threshold sweep
    threshold_sweep.csv   threshold,group_by,group,n,accuracy,... for thresholds 0.00-1.00
    predictions.csv       path,true,predicted,p_male,p_female,<group columns>,split
    report.md, report.html   the above, readable (audit_report)

A label is ``p_female >= threshold``: the model's threshold (0.5 for a calibrated
head), or the one given, so that any operating point can be examined.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gender_cli import workspace
from gender_cli.atomic import names_file, write_json_atomically
from gender_cli.contract import GENDER_HEAD, LABELS, PROBABILITIES, STANDIN_WARNING, Meta
from gender_cli.errors import GenderCliError
from gender_cli.train import calibration, intervals
from gender_cli.train.group_metrics import (
    ALL, CLASS_ERRORS, MIN_CLASS_N, MIN_RATE_N, GroupResult, largest_gaps, measure, measure_groups,
)
from gender_cli.train.groups import GroupBy, check_groups, group_values, parse_groups
from gender_cli.train.scoring import score

GROUPS_FILE = "groups.csv"
METRICS_FILE = "metrics.json"
SWEEP_FILE = "threshold_sweep.csv"
PREDICTIONS_FILE = "predictions.csv"
SWEEP_THRESHOLDS = np.round(np.linspace(0.0, 1.0, 101), 2)
SWEEP_METRICS = ("accuracy", "balanced_accuracy", *(m.name for m in CLASS_ERRORS))


@dataclass
class AuditResult:
    out_dir: Path
    model_path: Path
    files: dict[str, Path]
    summary: dict  # what metrics.json holds
    standin: bool
    unreadable: list[dict]
    notices: list[str]

    @property
    def overall(self) -> dict:
        return self.summary["overall"]


def audit(data: Path, groups: str | list[GroupBy], out_dir: Path | None = None, threshold: float | None = None,
          **scoring) -> AuditResult:
    """Audit the classifier on ``data`` per group of ``groups`` (``"race,race*age_band"``);
    ``scoring``: which model and images, and how to run it (``scoring.score``'s options:
    model_path, layout, split, splits_file, batch_size, workers, device, progress, faces)."""
    from gender_cli.train.audit_report import write_reports

    group_bys = parse_groups(groups) if isinstance(groups, str) else list(groups)
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise GenderCliError(f"the threshold is a probability between 0 and 1, got {threshold}")
    scored = score(data, **scoring, verb="audit", check=lambda samples: check_groups(group_bys, samples))
    info = scored.info
    if GENDER_HEAD not in info.heads:
        raise GenderCliError(f"{scored.model_path} has no gender head (heads: {', '.join(info.heads)}); "
                             "audit measures gender errors")
    kept = scored.kept
    samples = [scored.samples[i] for i in kept]
    y = np.array([s.label for s in samples], int)
    p_female = scored.outputs[PROBABILITIES][kept, 1].astype(np.float64)
    chosen = float(info.threshold) if threshold is None else float(threshold)
    predicted = (p_female >= chosen).astype(int)
    values = {by.name: group_values(samples, by) for by in group_bys}

    overall = _with_calibration(measure(ALL, ALL, y, p_female, predicted), y, p_female)
    tables = {}
    for by in group_bys:
        results = measure_groups(by.name, values[by.name], y, p_female, predicted)
        rows = np.array(values[by.name], dtype=object)
        for result in results:
            inside = rows == result.group
            _with_calibration(result, y[inside], p_female[inside])
        tables[by.name] = {"columns": list(by.columns), "rows": [r.row() for r in results],
                           "gaps": largest_gaps(results)}

    out_dir = Path(out_dir) if out_dir else workspace.new_output_dir("audits", scored.model_path.stem)
    out_dir.mkdir(parents=True, exist_ok=True)
    standin = bool(info.standin)
    summary = {
        "model": str(scored.model_path),
        "precision": info.precision,
        "standin": standin,
        **({"warning": STANDIN_WARNING} if standin else {}),
        "calibrated": Meta.CALIBRATION in info.raw,
        "data": scored.dataset.summary(),
        "selection": scored.selection,
        "threshold": {"value": chosen, "source": "model metadata" if threshold is None else "--threshold",
                      "model": float(info.threshold)},
        "images": int(len(kept)),
        "groups": [by.name for by in group_bys],
        "intervals": {
            "level": 0.95,
            "rates": "Wilson score interval",
            "rate_differences": "Newcombe hybrid score interval (method 10)",
            "balanced_accuracy_and_roc_auc": f"stratified bootstrap, {intervals.BOOTSTRAP_REPLICATES} replicates, "
                                             "percentile interval, a fixed random stream per group",
            "min_images_for_a_rate_interval": MIN_RATE_N,
            "min_images_per_class_for_a_bootstrap_interval": MIN_CLASS_N,
        },
        "overall": overall.row(),
        "by_group": tables,
        "calibration": _calibration_summary(y, p_female, values),
        "sweep": _sweep(y, p_female, values),
        "unreadable": scored.unreadable,
    }
    files = {
        "groups": _write_groups_csv(out_dir / GROUPS_FILE, [summary["overall"]] + [
            row for table in tables.values() for row in table["rows"]]),
        "threshold_sweep": _write_sweep_csv(out_dir / SWEEP_FILE, summary["sweep"]),
        "predictions": _write_predictions(out_dir / PREDICTIONS_FILE, samples, y,
                                          scored.outputs[PROBABILITIES][kept], predicted,
                                          [scored.split_names[i] for i in kept], values),
        "metrics": write_json_atomically(out_dir / METRICS_FILE, summary),
    }
    wrong = np.flatnonzero(predicted != y)
    wrong = wrong[np.argsort(-np.abs(p_female[wrong] - chosen), kind="mergesort")]
    files.update(write_reports(out_dir, summary, [(str(samples[i].path), LABELS[y[i]], float(p_female[i]))
                                                  for i in wrong]))
    notices = [m for m in (scored.loaded.notice,) if m]
    return AuditResult(out_dir, scored.model_path, files, summary, standin, scored.unreadable, notices)


def _with_calibration(result: GroupResult, y: np.ndarray, p_female: np.ndarray) -> GroupResult:
    result.extra["ece"] = calibration.expected_calibration_error(y, p_female)
    return result


def _calibration_summary(y: np.ndarray, p_female: np.ndarray, values: dict[str, list[str]]) -> dict:
    by_group = {}
    for name, groups in values.items():
        groups = np.array(groups, dtype=object)
        by_group[name] = {
            str(group): {"n": int((groups == group).sum()),
                         "ece": calibration.expected_calibration_error(y[groups == group], p_female[groups == group]),
                         "reliability": calibration.reliability(y[groups == group], p_female[groups == group])}
            for group in sorted(set(groups.tolist()))
        }
    return {"bins": calibration.BINS, "of": f"p_{LABELS[1]}",
            "overall": {"ece": calibration.expected_calibration_error(y, p_female),
                        "reliability": calibration.reliability(y, p_female)},
            "by_group": by_group}


def sweep_rates(y: np.ndarray, p_female: np.ndarray, thresholds=SWEEP_THRESHOLDS) -> dict[str, list]:
    """Accuracy, balanced accuracy and each class's rate of being taken for the other at
    every threshold (None where a class is absent)."""
    called = p_female[None, :] >= np.asarray(thresholds)[:, None]
    predicted = called.astype(int)
    result = {"n": int(len(y)), "accuracy": (predicted == y).mean(axis=1).tolist() if len(y) else None}
    rates = {}
    for metric in CLASS_ERRORS:
        members = y == metric.taken_for_other
        rates[metric.name] = ((predicted[:, members] != metric.taken_for_other).mean(axis=1).tolist()
                              if members.any() else None)
    result.update(rates)
    both = all(rates[m] is not None for m in rates)
    result["balanced_accuracy"] = ((1 - (np.array(list(rates.values())).mean(axis=0))).tolist() if both else None)
    return result


def _sweep(y: np.ndarray, p_female: np.ndarray, values: dict[str, list[str]]) -> dict:
    sweep = {"thresholds": SWEEP_THRESHOLDS.tolist(), "overall": sweep_rates(y, p_female), "by_group": {}}
    for name, groups in values.items():
        groups = np.array(groups, dtype=object)
        sweep["by_group"][name] = {str(g): sweep_rates(y[groups == g], p_female[groups == g])
                                   for g in sorted(set(groups.tolist()))}
    return sweep


def _cell(value) -> str:
    if value is None:
        return ""
    return f"{value:.6f}" if isinstance(value, float) else str(value)


def _write_rows(path: Path, header: list[str], rows) -> Path:
    with names_file(path), Path(path).open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows([_cell(v) for v in row] for row in rows)
    return Path(path)


def _write_groups_csv(path: Path, rows: list[dict]) -> Path:
    header = list(rows[0])
    return _write_rows(path, header, ([row.get(k) for k in header] for row in rows))


def _write_sweep_csv(path: Path, sweep: dict) -> Path:
    header = ["threshold", "group_by", "group", "n", *SWEEP_METRICS]
    tables = [(ALL, ALL, sweep["overall"])] + [(name, group, table) for name, groups in sweep["by_group"].items()
                                             for group, table in groups.items()]

    def rows():
        for name, group, table in tables:
            for i, t in enumerate(sweep["thresholds"]):
                yield [f"{t:.2f}", name, group, table["n"],
                       *(None if table[m] is None else table[m][i] for m in SWEEP_METRICS)]

    return _write_rows(path, header, rows())


def _write_predictions(path: Path, samples, y, probabilities, predicted, splits, values: dict[str, list[str]]) -> Path:
    header = ["path", "true", "predicted", *(f"p_{label}" for label in LABELS), *values, "split"]
    rows = ([str(s.path), LABELS[y[i]], LABELS[predicted[i]], *(float(p) for p in probabilities[i]),
             *(values[name][i] for name in values), splits[i]] for i, s in enumerate(samples))
    return _write_rows(path, header, rows)

