"""Kind ``lrn``: local response normalisation across channels (MatConvNet
``vl_nnnormalize``, param ``[D, kappa, alpha, beta]``; Caffe LRN).

``y[..., t] = x[..., t] * (kappa + alpha * sum_{q = t - m1}^{t + m2} x[..., q]^2) ^ -beta``
with ``m1 = floor((D - 1) / 2)``, ``m2 = D - m1 - 1`` and channels outside ``0..C-1``
counting as zero (``normalize_cpu.cpp``). MatConvNet's ``alpha`` is not divided by ``D``
(ONNX's and Caffe's are); its CPU code evaluates the power with a fast polynomial
approximation, the reference uses the exact power.
"""

from __future__ import annotations

import numpy as np

from gender_cli.convert.kinds.geometry import maps
from gender_cli.convert.kinds.record import LayerKind
from gender_cli.convert.layer_registry import numbers
from gender_cli.convert.network import Layer
from gender_cli.errors import ModelFileError


def shape(layer: Layer, shape: tuple) -> tuple[tuple, bool]:
    return maps(layer, shape), False


def reference(layer: Layer, x: np.ndarray) -> np.ndarray:
    depth, kappa, alpha, beta = layer.lrn
    depth = int(depth)
    m1 = (depth - 1) // 2
    m2 = depth - m1 - 1
    channels = x.shape[3]
    squares = np.pad(x * x, ((0, 0), (0, 0), (0, 0), (m1, m2)))
    window_sum = np.zeros_like(x)
    for q in range(depth):  # padded channel t + q is original channel t - m1 + q
        window_sum += squares[..., q : q + channels]
    return x * (kappa + alpha * window_sum) ** (-beta)


def onnx(g, step, dtype: np.dtype, x: str) -> str:
    depth, kappa, alpha, beta = step.layer.lrn
    return g.node(  # ONNX divides alpha by size; MatConvNet does not
        "LRN", [x], step.layer.name,
        size=int(depth), alpha=float(alpha) * int(depth), beta=float(beta), bias=float(kappa),
    )


def keras(layer: Layer, x):
    from gender_cli.convert.keras_model import MatConvNetLRN

    return MatConvNetLRN(*layer.lrn, name=layer.name)(x)


def from_mat(raw: dict, name: str, label: str) -> Layer:
    param = numbers(raw, "param", label)
    if param is None or param.size != 4:
        raise ModelFileError(f"{label}: lrn 'param' must be [depth kappa alpha beta]")
    depth, kappa, alpha, beta = param.tolist()
    return Layer(name=name, type="lrn", lrn=(int(depth), kappa, alpha, beta))


KIND = LayerKind(
    "lrn", "local response normalisation across channels (MatConvNet's alpha)",
    shape, reference, onnx, keras, from_mat=from_mat,
    mat_values=lambda layer, layout: {"param": np.asarray(layer.lrn, np.float64).reshape(1, 4)},
    mat_fields={"release": ("type", "name", "param"), "zoo": ("name", "type", "param", "precious")},
)
