"""Age estimation metrics in NumPy: MAE, RMSE, cumulative score, MAE per age band.

* MAE and RMSE of ``predicted - true`` in years; ``mean_error`` is the signed mean
  (positive: the head guesses too old).
* CS(5), the cumulative score at 5 years: the share of images whose estimate is
  within 5 years of the truth (``|error| <= 5``), as in the age estimation literature.
* MAE per band of the *true* age: 0-19, 20-39, 40-59, 60+ (:data:`AGE_BANDS`); a band
  without images has ``n`` 0 and ``mae`` None.
"""

from __future__ import annotations

import numpy as np

CS_YEARS = 5
AGE_BANDS = (("0-19", 0, 20), ("20-39", 20, 40), ("40-59", 40, 60), ("60+", 60, None))  # [low, high)


def age_band(age: float) -> str:
    """The name of the :data:`AGE_BANDS` band holding ``age`` (years)."""
    for name, low, high in AGE_BANDS:
        if age >= low and (high is None or age < high):
            return name
    raise ValueError(f"age {age} is below every band")


def age_metrics(true_age, predicted_age) -> dict:
    """JSON-ready metrics of ``predicted_age`` against ``true_age`` (years)."""
    true_age = np.asarray(true_age, np.float64)
    error = np.asarray(predicted_age, np.float64) - true_age
    n = len(error)
    bands = {}
    for name, low, high in AGE_BANDS:
        inside = (true_age >= low) & (true_age < high if high is not None else True)
        bands[name] = {"n": int(inside.sum()),
                       "mae": float(np.abs(error[inside]).mean()) if inside.any() else None}
    return {
        "n": int(n),
        "mae": float(np.abs(error).mean()) if n else None,
        "rmse": float(np.sqrt((error ** 2).mean())) if n else None,
        f"cs{CS_YEARS}": float((np.abs(error) <= CS_YEARS).mean()) if n else None,
        "mean_error": float(error.mean()) if n else None,
        "mae_by_band": bands,
    }
