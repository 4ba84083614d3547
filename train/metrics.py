"""Binary classification metrics in NumPy (no scikit-learn).

Labels follow ``contract.LABELS`` (0 male, 1 female); the score is ``p_female =
probabilities[:, 1]`` and a sample is called female when ``p_female >= threshold``.

* ROC AUC is the Mann-Whitney statistic: the probability that a random female
  sample scores higher than a random male one, ties counting one half (average ranks).
* The decision threshold is chosen on the validation split by maximising Youden's
  J = TPR + TNR - 1 (equivalently balanced accuracy, so class imbalance does not
  pull it), over the midpoints between consecutive distinct scores; among equally
  good thresholds the one closest to 0.5 wins. It is then applied unchanged to test.
"""

from __future__ import annotations

import numpy as np

from gender_cli.contract import LABELS


def confusion_matrix(y_true, y_pred, n_classes: int = 2) -> np.ndarray:
    """Rows = true class, columns = predicted class."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, int), np.asarray(y_pred, int)), 1)
    return cm


def _ratio(num: float, den: float) -> float | None:
    return float(num / den) if den else None


def per_class(cm: np.ndarray, labels=LABELS) -> dict[str, dict]:
    total = cm.sum()
    result = {}
    for i, name in enumerate(labels):
        tp = cm[i, i]
        fp = cm[:, i].sum() - tp
        fn = cm[i, :].sum() - tp
        tn = total - tp - fp - fn
        precision = _ratio(tp, tp + fp)
        recall = _ratio(tp, tp + fn)
        f1 = (
            2 * precision * recall / (precision + recall)
            if precision is not None and recall is not None and precision + recall > 0
            else (0.0 if precision is not None and recall is not None else None)
        )
        result[name] = {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "specificity": _ratio(tn, tn + fp),
            "support": int(cm[i, :].sum()),
        }
    return result


def average_ranks(values) -> np.ndarray:
    """1-based ranks, tied values sharing the mean of their ranks."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    ranks = np.empty(len(values), dtype=np.float64)
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    for start, end in zip(starts, ends):
        ranks[order[start:end]] = (start + 1 + end) / 2.0
    return ranks


def roc_auc(y_true, scores) -> float | None:
    """Mann-Whitney AUC with ties handled; None when one class is absent."""
    y_true = np.asarray(y_true, int)
    n_pos = int((y_true == 1).sum())
    n_neg = len(y_true) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = average_ranks(scores)
    return float((ranks[y_true == 1].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def roc_curve(y_true, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) for 'positive when score >= threshold', from (0,0) to (1,1)."""
    y_true = np.asarray(y_true, int)
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], y_true[order]
    last_of_group = np.r_[s[1:] != s[:-1], True]
    tps = np.cumsum(y)[last_of_group]
    fps = np.cumsum(1 - y)[last_of_group]
    n_pos, n_neg = max(int(y.sum()), 1), max(int((1 - y).sum()), 1)
    tpr = np.r_[0.0, tps / n_pos]
    fpr = np.r_[0.0, fps / n_neg]
    thresholds = np.r_[np.inf, s[last_of_group]]
    return fpr, tpr, thresholds


def choose_threshold(y_true, scores) -> float:
    """The threshold maximising Youden's J on (y_true, scores); 0.5 if undefined."""
    y_true = np.asarray(y_true, int)
    scores = np.asarray(scores, dtype=np.float64)
    if len(set(y_true.tolist())) < 2:
        return 0.5
    distinct = np.unique(scores)
    candidates = np.r_[distinct[0] - 1e-6, (distinct[1:] + distinct[:-1]) / 2.0, distinct[-1] + 1e-6]
    candidates = np.clip(candidates, 0.0, 1.0)
    positives = y_true == 1
    predicted = scores[None, :] >= candidates[:, None]
    tpr = (predicted & positives).sum(1) / positives.sum()
    tnr = (~predicted & ~positives).sum(1) / (~positives).sum()
    youden = tpr + tnr - 1
    best = np.flatnonzero(np.isclose(youden, youden.max()))
    return float(candidates[best[np.argmin(np.abs(candidates[best] - 0.5))]])


def classification_metrics(y_true, p_female, threshold: float = 0.5, labels=LABELS) -> dict:
    """Accuracy, balanced accuracy, per-class table, AUC and confusion matrix, JSON-ready."""
    y_true = np.asarray(y_true, int)
    p_female = np.asarray(p_female, dtype=np.float64)
    y_pred = (p_female >= threshold).astype(int)
    cm = confusion_matrix(y_true, y_pred, len(labels))
    classes = per_class(cm, labels)
    recalls = [c["recall"] for c in classes.values() if c["recall"] is not None]
    return {
        "n": int(len(y_true)),
        "threshold": float(threshold),
        "accuracy": _ratio(np.trace(cm), cm.sum()),
        "balanced_accuracy": float(np.mean(recalls)) if recalls else None,
        "accuracy_at_0.5": _ratio(int(((p_female >= 0.5).astype(int) == y_true).sum()), len(y_true)),
        "roc_auc": roc_auc(y_true, p_female),
        "per_class": classes,
        "confusion_matrix": {"labels": list(labels), "rows_true_cols_predicted": cm.tolist()},
    }
