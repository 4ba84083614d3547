"""95 % confidence intervals for ``audit``, in NumPy.

* A rate (accuracy, a class taken for the other) gets the Wilson score interval
  (Wilson 1927), which stays inside [0, 1] and keeps its coverage for small n and rates
  near 0 or 1, where the normal approximation fails.
* The difference of two independent rates gets Newcombe's hybrid score interval
  (Newcombe 1998, method 10), built from the two Wilson intervals.
* Balanced accuracy and ROC AUC get a stratified bootstrap: each class is resampled
  with replacement at its own size (so both classes are always present), from a
  random stream fixed by the group's name, so a rerun gives the same interval. The
  interval is the 2.5-97.5 percentile range of the replicates, widened to reach the
  estimate when every replicate falls on one side of it (a statistic at its bound,
  such as an AUC of 1, can do that).

Every function returns an interval that contains its estimate.
"""

from __future__ import annotations

import zlib

import numpy as np

Z95 = 1.959963984540054  # the standard normal's 97.5 % quantile
BOOTSTRAP_REPLICATES = 2000
BOOTSTRAP_BASE = 20261206  # with the group's name, fixes each group's random stream
_CHUNK = 250  # replicates drawn at once (memory: chunk x class size)


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of ``k`` successes in ``n`` trials (n > 0)."""
    if n <= 0:
        raise ValueError("a rate needs n > 0")
    p = k / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # rounding must not push the bound past the estimate at p = 0 or 1
    return float(min(p, max(0.0, centre - half))), float(max(p, min(1.0, centre + half)))


def newcombe_difference(k1: int, n1: int, k2: int, n2: int, z: float = Z95) -> tuple[float, float, float]:
    """(p1 - p2, low, high): Newcombe's hybrid score interval for two independent rates."""
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson(k1, n1, z)
    l2, u2 = wilson(k2, n2, z)
    d = p1 - p2
    return d, d - float(np.hypot(p1 - l1, u2 - p2)), d + float(np.hypot(u1 - p1, p2 - l2))


def percentile_interval(replicates: np.ndarray, estimate: float) -> tuple[float, float]:
    """The 95 % percentile interval of ``replicates``, widened to reach ``estimate``."""
    low, high = np.quantile(np.asarray(replicates, np.float64), [0.025, 0.975])
    return float(min(low, estimate)), float(max(high, estimate))


def stream(name: str) -> np.random.Generator:
    """The fixed random stream of the group called ``name``."""
    return np.random.default_rng([BOOTSTRAP_BASE, zlib.crc32(name.encode("utf-8"))])


def bootstrap(y_true, scores, y_pred, rng: np.random.Generator,
              replicates: int = BOOTSTRAP_REPLICATES) -> dict[str, np.ndarray]:
    """Stratified bootstrap replicates of balanced accuracy and ROC AUC (both classes
    must be present): ``{"balanced_accuracy": [B], "roc_auc": [B]}``."""
    y_true = np.asarray(y_true, int)
    scores = np.asarray(scores, np.float64)
    correct = np.asarray(y_pred, int) == y_true
    positives, negatives = scores[y_true == 1], np.sort(scores[y_true == 0])
    n_pos, n_neg = len(positives), len(negatives)
    if not n_pos or not n_neg:
        raise ValueError("the stratified bootstrap needs both classes")
    # resampling a class's correct/incorrect indicators is a binomial draw of its recall
    recalls = [rng.binomial(int((y_true == c).sum()), correct[y_true == c].mean(), replicates)
               / (y_true == c).sum() for c in (0, 1)]
    auc = np.empty(replicates)
    for start in range(0, replicates, _CHUNK):
        count = min(_CHUNK, replicates - start)
        auc[start:start + count] = resampled_auc(
            positives, negatives, rng.multinomial(n_pos, np.full(n_pos, 1 / n_pos), size=count),
            rng.multinomial(n_neg, np.full(n_neg, 1 / n_neg), size=count))
    return {"balanced_accuracy": (recalls[0] + recalls[1]) / 2, "roc_auc": auc}


def resampled_auc(positives: np.ndarray, sorted_negatives: np.ndarray, positive_counts: np.ndarray,
                  negative_counts: np.ndarray) -> np.ndarray:
    """The AUC of each resample, given how often it draws each positive score
    (``[R, n+]``) and each negative score (``[R, n-]``, in sorted order): each drawn
    positive's share of drawn negatives below it (ties count half), from cumulative
    counts over the sorted negatives, without sorting any resample."""
    below = np.searchsorted(sorted_negatives, positives, side="left")
    not_above = np.searchsorted(sorted_negatives, positives, side="right")
    rows = len(negative_counts)
    cumulative = np.concatenate([np.zeros((rows, 1)), np.cumsum(negative_counts, axis=1)], axis=1)
    beaten = cumulative[:, below] + 0.5 * (cumulative[:, not_above] - cumulative[:, below])
    return (positive_counts * beaten).sum(axis=1) / (positive_counts.sum(axis=1) * negative_counts.sum(axis=1))
