"""Kind ``global_pool``: the average over all rows and columns of each channel, giving
1 x 1 maps (dlib's ``avg_pool_everything``; VGG's ``pool5`` descriptor averages the same
way)."""

from __future__ import annotations

import numpy as np

from gender_cli.convert.kinds.geometry import maps
from gender_cli.convert.kinds.record import LayerKind
from gender_cli.convert.network import Layer


def shape(layer: Layer, shape: tuple) -> tuple[tuple, bool]:
    return (maps(layer, shape)[0], 1, 1), False


def reference(layer: Layer, x: np.ndarray) -> np.ndarray:
    return x.mean(axis=(1, 2), keepdims=True)


def onnx(g, step, dtype: np.dtype, x: str) -> str:
    return g.node("GlobalAveragePool", [x], step.layer.name)


def keras(layer: Layer, x):
    from gender_cli.convert.keras_model import keras as K

    return K.layers.GlobalAveragePooling2D(keepdims=True, name=layer.name)(x)


KIND = LayerKind("global_pool", "average of each channel over the whole map", shape, reference, onnx, keras)
