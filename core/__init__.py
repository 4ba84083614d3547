"""gender-cli: face networks (VGG-Face and others) turned into a fast gender and age classifier.

The Python API mirrors the ``gender-cli`` verbs and runs the same code::

    from gender_cli import Classifier

    classifier = Classifier()                       # the workspace's default classifier
    predictions = classifier.predict(["a.jpg", image_array])
    predictions.to_pandas()

    import gender_cli
    gender_cli.convert("vgg_face.mat")              # convert, train, export, evaluate
    gender_cli.train("data/")

The package is split by job: ``convert`` reads weights files into a framework-free
layer table, ``train`` fits the heads, ``export`` writes the ONNX contract, ``infer``
decodes images and runs onnxruntime (the classify pipeline), ``bench`` measures speed
and ``cli`` maps all of it onto the ``gender-cli`` command. Importing the package
imports none of them; each name below loads what it needs when first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Classifier", "Prediction", "Predictions", "convert", "train", "export", "evaluate", "__version__"]

_LAZY = {
    "Classifier": "gender_cli.classifier",
    "Prediction": "gender_cli.classifier",
    "Predictions": "gender_cli.classifier",
    "evaluate": "gender_cli.api",
}
_VERB_PACKAGES = ("convert", "train", "export")  # callable subpackages (gender_cli.api.VerbPackage)

if TYPE_CHECKING:  # what a type checker should see: the functions, not the subpackages
    from gender_cli.api import convert, evaluate, export, train
    from gender_cli.classifier import Classifier, Prediction, Predictions


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _VERB_PACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
