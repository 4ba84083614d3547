"""Kind ``relu``: ``max(x, 0)`` (MatConvNet ``vl_nnrelu`` without leak, Caffe ReLU, dlib ``relu``)."""

from __future__ import annotations

import numpy as np

from gender_cli.convert.kinds.record import LayerKind
from gender_cli.convert.layer_registry import numbers
from gender_cli.convert.network import Layer
from gender_cli.errors import UnsupportedLayerError


def shape(layer: Layer, shape: tuple) -> tuple[tuple, bool]:
    return shape, False


def reference(layer: Layer, x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def onnx(g, step, dtype: np.dtype, x: str) -> str:
    return g.node("Relu", [x], step.layer.name)


def keras(layer: Layer, x):
    from gender_cli.convert.keras_model import keras as K

    return K.layers.ReLU(name=layer.name)(x)


def from_mat(raw: dict, name: str, label: str) -> Layer:
    leak = numbers(raw, "leak", label)
    if leak is not None and np.any(leak != 0):
        raise UnsupportedLayerError(f"{label}: leaky ReLU (leak={leak.tolist()}) is not supported; only leak = 0")
    return Layer(name=name, type="relu")


KIND = LayerKind(
    "relu", "max(x, 0)", shape, reference, onnx, keras, from_mat=from_mat,
    mat_values=lambda layer, layout: {"leak": 0.0},
    mat_fields={"release": ("type", "name"), "zoo": ("name", "type", "leak", "precious")},
)
