"""Kind ``dropout``: the identity at inference (MatConvNet ``vl_nndropout`` in test mode,
Caffe Dropout, Keras Dropout); its rate is kept for the stand-in files and Keras."""

from __future__ import annotations

import numpy as np

from gender_cli.convert.kinds.record import LayerKind
from gender_cli.convert.layer_registry import numbers
from gender_cli.convert.network import Layer


def shape(layer: Layer, shape: tuple) -> tuple[tuple, bool]:
    return shape, False


def reference(layer: Layer, x: np.ndarray) -> np.ndarray:
    return x


def onnx(g, step, dtype: np.dtype, x: str) -> str:
    return x


def keras(layer: Layer, x):
    from gender_cli.convert.keras_model import keras as K

    return K.layers.Dropout(layer.rate, name=layer.name)(x)


def from_mat(raw: dict, name: str, label: str) -> Layer:
    rate = numbers(raw, "rate", label)
    return Layer(name=name, type="dropout", rate=0.5 if rate is None else float(rate[0]))


KIND = LayerKind(
    "dropout", "identity at inference", shape, reference, onnx, keras, from_mat=from_mat,
    mat_values=lambda layer, layout: {"rate": float(layer.rate)},
    mat_fields={"release": ("name", "type", "rate"), "zoo": ("name", "type", "rate", "precious")},
)
