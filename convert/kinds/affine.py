"""Kind ``affine``: a per-channel scale and shift, ``y[..., c] = gamma[c] * x[..., c] + beta[c]``
(dlib's ``affine`` layer in its convolutional mode: the batch normalisation of training
frozen into two vectors; dlib ``layers.h``, ``affine_::forward`` with
``tt::affine_transform_conv``).

``Layer.weights`` holds gamma ``(C,)`` and ``Layer.bias`` beta ``(C,)``. On a flat
``(D,)`` input the vectors are per feature (D = C).
"""

from __future__ import annotations

import numpy as np

from gender_cli.convert.kinds.record import LayerKind
from gender_cli.convert.network import Layer
from gender_cli.errors import ModelFileError


def _channels(layer: Layer) -> int:
    if layer.weights is None or layer.bias is None:
        raise ModelFileError(f"affine layer {layer.name!r} needs a scale and a shift")
    gamma, beta = np.shape(layer.weights), np.shape(layer.bias)
    if len(gamma) != 1 or gamma != beta:
        raise ModelFileError(f"affine layer {layer.name!r}: scale {gamma} and shift {beta} must be two (C,) vectors")
    return gamma[0]


def shape(layer: Layer, shape: tuple) -> tuple[tuple, bool]:
    channels = _channels(layer)
    if shape[0] != channels:
        raise ModelFileError(f"affine layer {layer.name!r} has {channels} channels, its input {shape[0]}")
    return shape, False


def reference(layer: Layer, x: np.ndarray) -> np.ndarray:
    return x * np.asarray(layer.weights, np.float64) + np.asarray(layer.bias, np.float64)


def onnx(g, step, dtype: np.dtype, x: str) -> str:
    layer = step.layer
    channels = _channels(layer)
    # (C, 1, 1) broadcasts over NCHW maps (and is what onnxruntime's Conv+Mul/Add fusions take)
    dims = (channels,) if len(step.input_shape) == 1 else (channels, 1, 1)
    scale = g.initializer(f"{layer.name}_scale", dtype, dims, lambda: np.asarray(layer.weights, dtype).reshape(dims))
    shift = g.initializer(f"{layer.name}_shift", dtype, dims, lambda: np.asarray(layer.bias, dtype).reshape(dims))
    return g.node("Add", [g.node("Mul", [x, scale], f"{layer.name}_mul"), shift], layer.name)


def keras(layer: Layer, x):
    from gender_cli.convert.keras_model import ChannelAffine

    return ChannelAffine(np.asarray(layer.weights, np.float32), np.asarray(layer.bias, np.float32), name=layer.name)(x)


KIND = LayerKind("affine", "per-channel scale and shift (frozen batch normalisation)", shape, reference, onnx, keras)
