"""Kind ``pool``: max or average pooling over a window (MatConvNet ``vl_nnpool``, Caffe
Pooling, Keras MaxPooling2D/AveragePooling2D, dlib ``max_pool``/``avg_pool``).

Output size ``floor((H + top + bottom - k) / s) + 1``. ``max`` ignores padding (padded
cells are ``-inf`` and never win); ``avg`` divides the window sum by the number of
window cells inside the image, padding excluded: MatConvNet ``pooling_cpu.cpp``
(``pooling_forward_cpu`` clips the window to the image and scales by ``1 / ((y2 - y1) *
(x2 - x1))``; ``pooling_gpu.cu`` divides by the same clipped size, and
``nnpooling_cudnn.cu`` refuses average pooling with padding). Without padding this is
the plain window mean. A padding as large as the window would make windows without an
image cell; real networks never have them and they are refused.
"""

from __future__ import annotations

import numpy as np

from gender_cli.convert.kinds.geometry import maps, onnx_pads, out_hw, output_size, pad_nhwc, row, window_slices
from gender_cli.convert.kinds.record import LayerKind
from gender_cli.convert.layer_registry import pad4, pair, positive
from gender_cli.convert.network import Layer
from gender_cli.errors import ModelFileError, UnsupportedLayerError

METHODS = ("max", "avg")


def shape(layer: Layer, shape: tuple) -> tuple[tuple, bool]:
    c, h, w = maps(layer, shape)
    (ph, pw), (sy, sx), (top, bottom, left, right) = layer.pool_geometry()
    return (c, output_size(h, ph, sy, top, bottom), output_size(w, pw, sx, left, right)), False


def reference(layer: Layer, x: np.ndarray) -> np.ndarray:
    (ph, pw), _, _ = layer.pool_geometry()
    ho, wo = out_hw(layer, x, (ph, pw), (1, 1))
    windows = list(window_slices(layer, (ph, pw), (1, 1), (ho, wo)))
    if layer.method == "max":
        xp = pad_nhwc(x, layer.pad, -np.inf)
        y = np.full((x.shape[0], ho, wo, x.shape[3]), -np.inf, np.float64)
        for _, _, rows, cols in windows:
            np.maximum(y, xp[:, rows, cols, :], out=y)
        return y
    xp = pad_nhwc(x, layer.pad, 0.0)
    inside = pad_nhwc(np.ones((1,) + x.shape[1:3] + (1,), np.float64), layer.pad, 0.0)
    total = np.zeros((x.shape[0], ho, wo, x.shape[3]), np.float64)
    count = np.zeros((1, ho, wo, 1), np.float64)
    for _, _, rows, cols in windows:
        total += xp[:, rows, cols, :]
        count += inside[:, rows, cols, :]
    return total / count


def onnx(g, step, dtype: np.dtype, x: str) -> str:
    layer = step.layer
    (ph, pw), (sy, sx), _ = layer.pool_geometry()
    attrs = dict(kernel_shape=[ph, pw], strides=[sy, sx], pads=onnx_pads(layer), ceil_mode=0)
    if layer.method == "max":
        return g.node("MaxPool", [x], layer.name, **attrs)
    return g.node("AveragePool", [x], layer.name, count_include_pad=0, **attrs)


def keras(layer: Layer, x):
    from gender_cli.convert.keras_model import MatConvNetPooling2D, keras as K

    layer.pool_geometry()  # validates window, method and padding
    if any(layer.pad):
        return MatConvNetPooling2D(layer.pool, layer.stride, layer.pad, layer.method, name=layer.name)(x)
    pooling = K.layers.MaxPooling2D if layer.method == "max" else K.layers.AveragePooling2D
    return pooling(tuple(layer.pool), tuple(layer.stride), padding="valid", name=layer.name)(x)


def from_mat(raw: dict, name: str, label: str) -> Layer:
    method = raw.get("method")
    if method is None or (isinstance(method, str) and not method):
        method = "max"  # vl_simplenn_tidy's default
    if method not in METHODS:
        raise UnsupportedLayerError(
            f"{label}: pool method {method!r} is not supported; supported: {', '.join(METHODS)}"
        )
    window = pair(raw, "pool", label, None)
    if window is None:
        raise ModelFileError(f"{label}: pool layer has no 'pool' window size")
    return Layer(
        name=name, type="pool", pool=positive(window, "pool", label),
        stride=positive(pair(raw, "stride", label, (1, 1)), "stride", label),
        pad=pad4(raw, label), method=method,
    )


def mat_values(layer: Layer, layout: str) -> dict:
    release = layout == "release"
    uniform_stride = len(set(layer.stride)) == 1 and release
    uniform_pad = len(set(layer.pad)) == 1 and release
    return {
        "method": layer.method,
        "pool": row(layer.pool),
        "stride": float(layer.stride[0]) if uniform_stride else row(layer.stride),
        "pad": float(layer.pad[0]) if uniform_pad else row(layer.pad),
    }


KIND = LayerKind(
    "pool", "max or average pooling (average over the window's cells inside the image)",
    shape, reference, onnx, keras, from_mat=from_mat, mat_values=mat_values,
    mat_fields={
        "release": ("name", "type", "method", "pool", "stride", "pad"),
        "zoo": ("name", "type", "method", "pool", "stride", "pad", "precious", "opts"),
    },
)
