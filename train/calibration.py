"""Calibration of the gender head: Platt scaling with the operating point folded in, and
how well probabilities match frequencies (reliability, ECE).

``train`` calls :func:`calibrate_head` on the validation split:

1. Platt scaling (Platt 1999; the Newton method of Lin, Lin and Weng 2007): on the
   head's logit ``z = l_female - l_male``, fit ``p = sigmoid(a z + b)`` by maximum
   likelihood with Platt's smoothed targets ``(n+ + 1) / (n+ + 2)`` and ``1 / (n- + 2)``
   (a separable validation split keeps a finite slope);
2. the operating point: Youden's J on the calibrated validation probabilities
   (``metrics.choose_threshold``), ``t``;
3. the fold: the last dense layer becomes ``a * (K, B)`` plus ``-/+ c / 2`` on the two
   biases, ``c = b - logit(t)``, so the graph's softmax gives
   ``p_female = sigmoid(a z + b - logit(t))``: calibrated, and >= 0.5 exactly where
   the calibrated probability reaches the operating point. The graph's threshold is
   then 0.5 and a label never contradicts its probabilities.

:func:`reliability` and :func:`expected_calibration_error` measure calibration on
``p_female`` in :data:`BINS` equal-width bins (ECE: the image-weighted mean gap
between a bin's mean probability and its share of women).
"""

from __future__ import annotations

import numpy as np

from gender_cli.train.metrics import choose_threshold

BINS = 10
METHOD = "platt"
_EDGE = 1e-6  # the operating point stays inside (0, 1) so its logit is finite


def logit(p) -> np.ndarray:
    p = np.clip(np.asarray(p, np.float64), _EDGE, 1 - _EDGE)
    return np.log(p) - np.log1p(-p)


def sigmoid(x) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * np.asarray(x, np.float64)))


def platt_fit(z, y, iterations: int = 100) -> tuple[float, float]:
    """(a, b) maximising the likelihood of ``sigmoid(a z + b)`` for labels ``y`` (1 = the
    positive class) with Platt's smoothed targets; Newton steps with backtracking."""
    z = np.asarray(z, np.float64)
    y = np.asarray(y, int)
    n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
    target = np.where(y == 1, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))

    def loss(a: float, b: float) -> float:
        f = a * z + b
        return float(np.sum(target * np.logaddexp(0, -f) + (1 - target) * np.logaddexp(0, f)))

    a, b = 1.0, 0.0
    current = loss(a, b)
    for _ in range(iterations):
        p = sigmoid(a * z + b)
        residual, weight = p - target, p * (1 - p) + 1e-12
        gradient = np.array([residual @ z, residual.sum()])
        hessian = np.array([[weight @ (z * z), weight @ z], [weight @ z, weight.sum()]]) + 1e-12 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        scale = 1.0
        while scale > 1e-10:
            trial = (a - scale * step[0], b - scale * step[1])
            if loss(*trial) <= current:
                break
            scale /= 2
        else:
            break
        if abs(current - loss(*trial)) < 1e-12 * max(1.0, current):
            a, b = trial
            break
        (a, b), current = trial, loss(*trial)
    return float(a), float(b)


def head_logit(logits: np.ndarray) -> np.ndarray:
    """``z = l_1 - l_0``: the log-odds of the second label under the head's softmax."""
    logits = np.asarray(logits, np.float64)
    return logits[:, 1] - logits[:, 0]


def fold(kernel: np.ndarray, bias: np.ndarray, slope: float, shift: float) -> tuple[np.ndarray, np.ndarray]:
    """The last dense layer whose logit difference is ``slope * z + shift``."""
    kernel = np.asarray(kernel, np.float64) * slope
    bias = np.asarray(bias, np.float64) * slope + np.array([-shift / 2, shift / 2])
    return kernel.astype(np.float32), bias.astype(np.float32)


def calibrate_head(kernels: list[np.ndarray], biases: list[np.ndarray], val_logits: np.ndarray,
                   val_labels: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray], dict]:
    """The head with calibration and operating point folded into its last layer, and the
    record of what was done (what ``head.json`` and the graph's metadata keep)."""
    z = head_logit(val_logits)
    y = np.asarray(val_labels, int)
    a, b = platt_fit(z, y)
    calibrated = sigmoid(a * z + b)
    operating_point = min(max(choose_threshold(y, calibrated), _EDGE), 1 - _EDGE)
    shift = b - float(logit(operating_point))
    kernels, biases = list(kernels), list(biases)
    kernels[-1], biases[-1] = fold(kernels[-1], biases[-1], a, shift)
    final = sigmoid(a * z + shift)
    record = {
        "method": METHOD,
        "fitted_on": "val",
        "images": int(len(y)),
        "slope": a,
        "intercept": b,
        "operating_point": float(operating_point),
        "uncalibrated_threshold": choose_threshold(y, sigmoid(z)),
        "val_ece_before": expected_calibration_error(y, sigmoid(z)),
        "val_ece_platt": expected_calibration_error(y, calibrated),
        "val_ece_after": expected_calibration_error(y, final),
    }
    return kernels, biases, record


def reliability(y_true, p, bins: int = BINS) -> list[dict]:
    """Per equal-width bin of ``p``: its range, image count, mean probability and the
    share of the positive class (None for an empty bin)."""
    y = np.asarray(y_true, int)
    p = np.asarray(p, np.float64)
    index = np.clip((p * bins).astype(int), 0, bins - 1)
    table = []
    for i in range(bins):
        inside = index == i
        n = int(inside.sum())
        table.append({"low": i / bins, "high": (i + 1) / bins, "n": n,
                      "mean_p": float(p[inside].mean()) if n else None,
                      "frequency": float(y[inside].mean()) if n else None})
    return table


def expected_calibration_error(y_true, p, bins: int = BINS) -> float | None:
    """ECE of ``p`` for labels ``y_true``; None without images."""
    table = reliability(y_true, p, bins)
    total = sum(row["n"] for row in table)
    if not total:
        return None
    return float(sum(row["n"] * abs(row["mean_p"] - row["frequency"]) for row in table if row["n"]) / total)
