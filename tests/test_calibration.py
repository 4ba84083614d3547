"""Platt scaling, the fold into the head's last layer, and ECE, against independent references."""

from __future__ import annotations

import numpy as np
import pytest

from gender_cli.train import calibration
from gender_cli.train.head_model import head_logits, head_probabilities


def _platt_loss(params, z, y):
    a, b = params
    n_pos, n_neg = y.sum(), len(y) - y.sum()
    target = np.where(y == 1, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    f = a * z + b
    return np.sum(target * np.logaddexp(0, -f) + (1 - target) * np.logaddexp(0, f))


def test_platt_fit_is_the_minimum_scipy_finds():
    from scipy.optimize import minimize

    rng = np.random.default_rng(0)
    z = rng.normal(0, 3, 400)
    y = (rng.random(400) < 1 / (1 + np.exp(-(0.4 * z - 0.8)))).astype(int)
    a, b = calibration.platt_fit(z, y)
    reference = minimize(_platt_loss, x0=[1.0, 0.0], args=(z, y), method="Nelder-Mead",
                         options={"xatol": 1e-9, "fatol": 1e-12, "maxiter": 5000}).x
    assert (a, b) == pytest.approx(tuple(reference), abs=1e-4)
    assert a == pytest.approx(0.4, abs=0.15) and b == pytest.approx(-0.8, abs=0.35)


def test_separable_validation_keeps_a_finite_slope():
    z = np.r_[np.linspace(-5, -1, 20), np.linspace(1, 5, 20)]
    y = np.r_[np.zeros(20, int), np.ones(20, int)]
    a, b = calibration.platt_fit(z, y)
    assert 0 < a < 50 and np.isfinite(b)


def _overconfident_head(rng):
    """A one-layer head whose logits are 6x too large: right ranking, poor calibration."""
    kernel = np.array([[1.5, -1.5], [-0.5, 0.5]], np.float32) * 6
    bias = np.array([0.3, -0.3], np.float32) * 6
    x = rng.normal(0, 1, (600, 2)).astype(np.float32)
    z_true = -3 * x[:, 0] + x[:, 1] - 0.6  # the head's logit difference over 6
    y = (rng.random(600) < 1 / (1 + np.exp(-z_true))).astype(int)
    return [kernel], [bias], x, y


def test_calibrate_head_folds_platt_and_the_operating_point_into_the_last_layer():
    rng = np.random.default_rng(3)
    kernels, biases, x, y = _overconfident_head(rng)
    folded_k, folded_b, record = calibration.calibrate_head(kernels, biases, head_logits(kernels, biases, x), y)
    z = (x @ kernels[0] + biases[0]).astype(np.float64)
    z = z[:, 1] - z[:, 0]
    a, b, t = record["slope"], record["intercept"], record["operating_point"]
    expected = 1 / (1 + np.exp(-(a * z + b - np.log(t / (1 - t)))))
    got = head_probabilities(folded_k, folded_b, x)[:, 1]
    np.testing.assert_allclose(got, expected, atol=1e-6)
    # the label at 0.5 of the folded head is the calibrated decision at the operating point
    calibrated = 1 / (1 + np.exp(-(a * z + b)))
    changed = np.abs(calibrated - t) > 1e-6
    np.testing.assert_array_equal((got >= 0.5)[changed], (calibrated >= t)[changed])
    assert a == pytest.approx(1 / 6, rel=0.3)  # undoes the overconfidence
    assert record["val_ece_after"] < record["val_ece_before"] / 2
    assert record["method"] == "platt" and record["images"] == 600


def test_reliability_and_ece_by_hand():
    y = [0, 0, 1, 1, 1]
    p = [0.05, 0.15, 0.15, 0.95, 0.95]
    table = calibration.reliability(y, p, bins=10)
    assert [row["n"] for row in table] == [1, 2, 0, 0, 0, 0, 0, 0, 0, 2]
    assert table[1]["mean_p"] == pytest.approx(0.15) and table[1]["frequency"] == pytest.approx(0.5)
    # bins: |0.05 - 0|*1 + |0.15 - 0.5|*2 + |0.95 - 1|*2, over 5 images
    assert calibration.expected_calibration_error(y, p) == pytest.approx((0.05 + 0.7 + 0.1) / 5)
    assert calibration.expected_calibration_error([], []) is None
