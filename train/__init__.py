"""Fit the gender head on cached backbone descriptors, evaluate it, plot it.

Modules: ``datasets`` (layouts), ``splits``, ``descriptors`` (ONNX backbone + cache),
``head_model`` (Keras head), ``metrics``, ``plots``, ``report``, ``run``
(``run_training``) and ``evaluate`` (``evaluate_classifier``). The names below are
imported on first use, so importing this package costs nothing.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "TrainOptions": "gender_cli.train.run",
    "TrainResult": "gender_cli.train.run",
    "run_training": "gender_cli.train.run",
    "evaluate_classifier": "gender_cli.train.evaluate",
    "load_dataset": "gender_cli.train.datasets",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'gender_cli.train' has no attribute {name!r}")
