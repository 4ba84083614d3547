"""Kind ``softmax``: over the channel axis, ``exp(x - max) / sum`` (MatConvNet
``vl_nnsoftmax``, Caffe Softmax)."""

from __future__ import annotations

import numpy as np

from gender_cli.convert.kinds.record import LayerKind
from gender_cli.convert.network import Layer


def shape(layer: Layer, shape: tuple) -> tuple[tuple, bool]:
    return shape, False


def reference(layer: Layer, x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=3, keepdims=True))
    return e / e.sum(axis=3, keepdims=True)


def onnx(g, step, dtype: np.dtype, x: str) -> str:
    return g.node("Softmax", [x], step.layer.name, axis=1)


def keras(layer: Layer, x):
    from gender_cli.convert.keras_model import keras as K

    return K.layers.Softmax(axis=-1, name=layer.name)(x)


KIND = LayerKind(
    "softmax", "softmax over the channels", shape, reference, onnx, keras,
    from_mat=lambda raw, name, label: Layer(name=name, type="softmax"),
    mat_values=lambda layer, layout: {},
    mat_fields={"release": ("type", "name"), "zoo": ("name", "type", "precious")},
)
