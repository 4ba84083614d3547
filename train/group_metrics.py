"""Per-group error rates with 95 % intervals, and the largest gap between groups.

For one group (images with their true label, ``p_female`` and predicted label):
``n``, accuracy, balanced accuracy, the rate at which each class is taken for the
other (``female_as_male``: the share of women labelled men; ``male_as_female``),
ROC AUC, each with its interval (``intervals``: Wilson for rates, the stratified
bootstrap for balanced accuracy and AUC). The metrics are the table :data:`METRICS`.

An interval needs enough images to mean anything: a rate at least
:data:`MIN_RATE_N` images in its denominator, balanced accuracy and AUC at least
:data:`MIN_CLASS_N` of each class. Below that the estimate is kept, the interval is
left empty and the group's ``note`` says why; such a group takes no part in the gaps.
A metric that cannot be computed (AUC with one class) is empty, with a note.

The largest gap of a metric under one grouping is the best group's estimate minus the
worst's, among the groups with an interval, with the interval of that difference:
Newcombe's for rates, the bootstrap replicates' difference for the others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from gender_cli.contract import LABELS
from gender_cli.train import intervals
from gender_cli.train.groups import MISSING
from gender_cli.train.metrics import roc_auc

MIN_RATE_N = 20
MIN_CLASS_N = 10
ALL = "all"  # group_by and group of the row that holds every image


@dataclass(frozen=True)
class Metric:
    name: str
    heading: str  # in tables and charts
    interval: str  # "wilson" (a rate k/n) or "bootstrap"
    help: str
    counts: Callable | None = None  # rates: (y_true, y_pred) -> (k, n)
    taken_for_other: int | None = None  # the class whose images this rate labels as the other class


def _taken_for_other(label: int):
    return lambda y, pred: (int(((y == label) & (pred != label)).sum()), int((y == label).sum()))


METRICS = (
    Metric("accuracy", "accuracy", "wilson", "share of images labelled correctly",
           lambda y, pred: (int((y == pred).sum()), len(y))),
    Metric("balanced_accuracy", "balanced accuracy", "bootstrap", "mean of the two classes' recalls"),
    *(Metric(f"{LABELS[c]}_as_{LABELS[1 - c]}", f"{LABELS[c]} labelled {LABELS[1 - c]}", "wilson",
             f"share of {LABELS[c]} images labelled {LABELS[1 - c]}", _taken_for_other(c), c) for c in (1, 0)),
    Metric("roc_auc", "ROC AUC", "bootstrap", f"ROC AUC of p_{LABELS[1]}: how often a {LABELS[1]} image scores "
           f"above a {LABELS[0]} one"),
)
METRIC_NAMES = tuple(m.name for m in METRICS)
CLASS_ERRORS = tuple(m for m in METRICS if m.taken_for_other is not None)  # one per class


@dataclass
class GroupResult:
    group_by: str
    group: str
    n: int
    class_counts: dict[str, int]
    estimates: dict[str, float | None]
    bounds: dict[str, tuple[float, float] | None]  # None: no interval (see notes)
    counts: dict[str, tuple[int, int]]  # rates: (k, n)
    replicates: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, float | None] = field(default_factory=dict)  # further columns (ece)

    def row(self) -> dict:
        """The flat record of groups.csv and metrics.json."""
        record: dict = {"group_by": self.group_by, "group": self.group, "n": self.n}
        for name in METRIC_NAMES:
            bounds = self.bounds.get(name)
            record[name] = self.estimates.get(name)
            record[f"{name}_low"] = bounds[0] if bounds else None
            record[f"{name}_high"] = bounds[1] if bounds else None
        record.update({f"n_{label}": count for label, count in self.class_counts.items()})
        record.update(self.extra)
        record["note"] = "; ".join(self.notes)
        return record


def measure(group_by: str, group: str, y_true, p_female, y_pred) -> GroupResult:
    """Every metric of one group, with intervals where it has enough images."""
    y = np.asarray(y_true, int)
    pred = np.asarray(y_pred, int)
    scores = np.asarray(p_female, np.float64)
    per_class = {label: int((y == c).sum()) for c, label in enumerate(LABELS)}
    result = GroupResult(group_by, group, len(y), per_class, {}, {}, {})
    both = min(per_class.values()) > 0
    few = []
    for metric in METRICS:
        if metric.counts is not None:
            k, n = metric.counts(y, pred)
            result.counts[metric.name] = (k, n)
            result.estimates[metric.name] = k / n if n else None
            result.bounds[metric.name] = intervals.wilson(k, n) if n >= MIN_RATE_N else None
            if 0 < n < MIN_RATE_N:
                few.append(f"{metric.heading} ({n})")
    if few:
        result.notes.append(f"no interval under {MIN_RATE_N} images: {', '.join(few)}")
    if both:
        recalls = [1 - result.estimates[m.name] for m in CLASS_ERRORS]
        result.estimates["balanced_accuracy"] = float(np.mean(recalls))
        result.estimates["roc_auc"] = roc_auc(y, scores)
        if min(per_class.values()) >= MIN_CLASS_N:
            result.replicates = intervals.bootstrap(y, scores, pred, intervals.stream(f"{group_by}={group}"))
            for name, replicates in result.replicates.items():
                result.bounds[name] = intervals.percentile_interval(replicates, result.estimates[name])
        else:
            result.notes.append(f"no interval under {MIN_CLASS_N} images of a class: balanced accuracy, ROC AUC")
    else:
        result.notes.append("one class only: no balanced accuracy or ROC AUC")
    return result


def measure_groups(group_by: str, groups: list[str], y_true, p_female, y_pred) -> list[GroupResult]:
    """One :class:`GroupResult` per distinct value of ``groups`` (sorted)."""
    groups_array = np.array(groups, dtype=object)
    y_true, p_female, y_pred = (np.asarray(a) for a in (y_true, p_female, y_pred))
    return [measure(group_by, value, y_true[groups_array == value], p_female[groups_array == value],
                    y_pred[groups_array == value])
            for value in sorted(set(groups), key=_group_order)]


def _group_order(value: str):
    # the missing group last; numbers in a value (age bands) in numeric order
    leading = value.split("-")[0].rstrip("+")
    return (MISSING in value, int(leading) if leading.isdigit() else float("inf"), value)


def largest_gaps(results: list[GroupResult]) -> list[dict]:
    """Per metric: the best and the worst group with an interval, their difference and
    its interval (None with a reason when fewer than two groups qualify)."""
    gaps = []
    for metric in METRICS:
        ready = [r for r in results if r.bounds.get(metric.name) is not None]
        record = {"metric": metric.name, "compared": len(ready),
                  "left_out": [r.group for r in results if r.bounds.get(metric.name) is None]}
        if len(ready) < 2:
            gaps.append({**record, "gap": None, "gap_low": None, "gap_high": None, "high_group": None,
                         "low_group": None, "reason": "fewer than two groups have enough images"})
            continue
        ranked = sorted(ready, key=lambda r: r.estimates[metric.name])
        low, high = ranked[0], ranked[-1]
        if metric.counts is not None:
            gap, gap_low, gap_high = intervals.newcombe_difference(*high.counts[metric.name], *low.counts[metric.name])
        else:
            gap = high.estimates[metric.name] - low.estimates[metric.name]
            gap_low, gap_high = intervals.percentile_interval(
                high.replicates[metric.name] - low.replicates[metric.name], gap)
        gaps.append({**record, "gap": gap, "gap_low": gap_low, "gap_high": gap_high,
                     "high_group": high.group, "low_group": low.group, "reason": None})
    return gaps


def interval_text(record: dict, name: str, digits: int = 4) -> str:
    """``0.9123 [0.8990, 0.9240]`` from a record's ``name``, ``name_low`` and ``name_high``
    (a group row, or a gap with ``name="gap"``); ``0.9123 (no interval)`` where there
    were too few images; ``n/a`` without an estimate."""
    value, low, high = record[name], record[f"{name}_low"], record[f"{name}_high"]
    if value is None:
        return "n/a"
    if low is None:
        return f"{value:.{digits}f} (no interval)"
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"
