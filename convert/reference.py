"""NumPy forward pass of the layer table: the oracle that Keras and ONNX are tested against.

Written straight from MatConvNet's definitions (``vl_simplenn`` at test time), with
nothing but NumPy, so that it shares no code and no framework with what it checks.
Arithmetic is float64 throughout; results are returned as float32.

Semantics, per layer type (``x`` is ``(N, H, W, C)``):

* **conv** (``vl_nnconv``): ``y[n,i,j,o] = b[o] + sum_{u,v,c} W[u,v,c,o] *
  xpad[n, i*sy + u*dy, j*sx + v*dx, c]`` where ``xpad`` is ``x`` zero-padded by
  ``(top, bottom, left, right)``. Output size ``floor((H + top + bottom - kh_eff) / sy)
  + 1`` with the dilated kernel size ``kh_eff = (kh - 1) * dy + 1``. MatConvNet
  convolution is a correlation (no kernel flip), like TensorFlow's.
* **pool** (``vl_nnpool``), same output-size formula with ``kh_eff = kh``:

  - ``max`` ignores padding: padded cells are ``-inf``, so they never win;
  - ``avg`` divides the sum of the window by the number of window cells that lie
    inside the image (padding excluded). Source: MatConvNet
    ``matlab/src/bits/impl/pooling_cpu.cpp`` (vlfeat/matconvnet), where
    ``pooling_forward_cpu`` clips the window to the image (``x1 = max(x1, 0)``,
    ``x2 = min(x1 + windowWidth, width)``, same for y) and builds the accumulator as
    ``acc_sum(y2 - y1, x2 - x1)`` whose scale is ``1 / ((y2 - y1) * (x2 - x1))``;
    ``pooling_gpu.cu`` divides by the same clipped ``poolSize``, and
    ``nnpooling_cudnn.cu`` refuses average pooling with padding, so every MatConvNet
    code path agrees. Without padding this is the plain window mean.
  - a padding as large as the window would make windows that hold no image cell;
    MatConvNet never produces those for real networks and they are rejected here.
* **relu** (``vl_nnrelu``, no leak): ``max(x, 0)``.
* **dropout** (``vl_nndropout`` in test mode): identity.
* **softmax** (``vl_nnsoftmax``): over the channel axis, ``exp(x - max) / sum``.
* **lrn** (``vl_nnnormalize``, param ``[D, kappa, alpha, beta]``): ``y[..., t] =
  x[..., t] * (kappa + alpha * sum_{q = t - m1}^{t + m2} x[..., q]^2) ^ -beta`` with
  ``m1 = floor((D - 1) / 2)``, ``m2 = D - m1 - 1`` and channels outside ``0..C-1``
  counting as zero (``normalize_cpu.cpp``). Note ``alpha`` is not divided by ``D``.
  MatConvNet's CPU code evaluates the power with a fast polynomial approximation; this
  reference uses the exact power.

Input images are ``(N, H, W, 3)`` RGB in 0..255 (uint8 or float); ``network.mean`` is
subtracted first.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from gender_cli import contract
from gender_cli.convert.network import Layer, Network
from gender_cli.errors import ModelFileError, UnsupportedLayerError

COMPUTE_DTYPE = np.float64


def output_size(size: int, kernel: int, stride: int, pad_before: int, pad_after: int, dilate: int = 1) -> int:
    """MatConvNet's output length along one axis: floor((size + pads - k_eff) / stride) + 1."""
    effective = (kernel - 1) * dilate + 1
    span = size + pad_before + pad_after - effective
    if span < 0:
        raise ModelFileError(
            f"input of size {size} (padded {pad_before}+{pad_after}) is smaller than the "
            f"window {effective}"
        )
    return span // stride + 1


def _window_slices(layer: Layer, kernel: tuple[int, int], dilate: tuple[int, int], out_hw):
    """Yield (u, v, rows, cols): the strided slices of the padded input that tap (u, v)."""
    (sy, sx), (dy, dx), (ho, wo) = layer.stride, dilate, out_hw
    for u in range(kernel[0]):
        for v in range(kernel[1]):
            rows = slice(u * dy, u * dy + (ho - 1) * sy + 1, sy)
            cols = slice(v * dx, v * dx + (wo - 1) * sx + 1, sx)
            yield u, v, rows, cols


def _out_hw(layer: Layer, x: np.ndarray, kernel, dilate) -> tuple[int, int]:
    top, bottom, left, right = layer.pad
    return (
        output_size(x.shape[1], kernel[0], layer.stride[0], top, bottom, dilate[0]),
        output_size(x.shape[2], kernel[1], layer.stride[1], left, right, dilate[1]),
    )


def _pad(x: np.ndarray, pad, value: float) -> np.ndarray:
    top, bottom, left, right = pad
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=value)


def conv(layer: Layer, x: np.ndarray) -> np.ndarray:
    w = np.asarray(layer.weights, dtype=COMPUTE_DTYPE)
    kh, kw, cin, cout = w.shape
    if x.shape[3] != cin:
        raise ModelFileError(
            f"layer {layer.name!r}: filters expect {cin} input channels, got {x.shape[3]}"
        )
    ho, wo = _out_hw(layer, x, (kh, kw), layer.dilate)
    xp = _pad(x, layer.pad, 0.0)
    y = np.zeros((x.shape[0], ho, wo, cout), COMPUTE_DTYPE)
    for u, v, rows, cols in _window_slices(layer, (kh, kw), layer.dilate, (ho, wo)):
        y += xp[:, rows, cols, :] @ w[u, v]
    if layer.bias is not None:
        y += np.asarray(layer.bias, dtype=COMPUTE_DTYPE)
    return y


def pool(layer: Layer, x: np.ndarray) -> np.ndarray:
    ph, pw = layer.pool
    top, bottom, left, right = layer.pad
    if max(top, bottom) >= ph or max(left, right) >= pw:
        raise ModelFileError(
            f"layer {layer.name!r}: padding {layer.pad} must be smaller than the pool window {layer.pool}"
        )
    ho, wo = _out_hw(layer, x, (ph, pw), (1, 1))
    windows = list(_window_slices(layer, (ph, pw), (1, 1), (ho, wo)))
    if layer.method == "max":
        xp = _pad(x, layer.pad, -np.inf)
        y = np.full((x.shape[0], ho, wo, x.shape[3]), -np.inf, COMPUTE_DTYPE)
        for _, _, rows, cols in windows:
            np.maximum(y, xp[:, rows, cols, :], out=y)
        return y
    if layer.method == "avg":
        xp = _pad(x, layer.pad, 0.0)
        inside = _pad(np.ones((1,) + x.shape[1:3] + (1,), COMPUTE_DTYPE), layer.pad, 0.0)
        total = np.zeros((x.shape[0], ho, wo, x.shape[3]), COMPUTE_DTYPE)
        count = np.zeros((1, ho, wo, 1), COMPUTE_DTYPE)
        for _, _, rows, cols in windows:
            total += xp[:, rows, cols, :]
            count += inside[:, rows, cols, :]
        return total / count
    raise ModelFileError(f"layer {layer.name!r}: unknown pooling method {layer.method!r}")


def relu(layer: Layer, x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def dropout(layer: Layer, x: np.ndarray) -> np.ndarray:
    return x


def softmax(layer: Layer, x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=3, keepdims=True))
    return e / e.sum(axis=3, keepdims=True)


def lrn(layer: Layer, x: np.ndarray) -> np.ndarray:
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


LAYER_FUNCTIONS: dict[str, Callable[[Layer, np.ndarray], np.ndarray]] = {
    "conv": conv,
    "pool": pool,
    "relu": relu,
    "dropout": dropout,
    "softmax": softmax,
    "lrn": lrn,
}


def _check_images(network: Network, images) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[3] != 3:
        raise ValueError(f"images must be (N, H, W, 3) RGB, got shape {images.shape}")
    mean = np.asarray(network.mean, dtype=COMPUTE_DTYPE).reshape(1, 1, 1, -1)
    return images.astype(COMPUTE_DTYPE) - mean


def forward(network: Network, images, upto: str | None = None) -> np.ndarray:
    """Run ``network`` on ``images`` (N, H, W, 3) RGB 0..255; return layer ``upto``'s output.

    ``upto`` is a layer name (default: the last layer). The result is (N, H', W', C)
    float32, computed in float64.
    """
    last = len(network.layers) - 1 if upto is None else network.layer_index(upto)
    x = _check_images(network, images)
    for layer in network.layers[: last + 1]:
        function = LAYER_FUNCTIONS.get(layer.type)
        if function is None:
            raise UnsupportedLayerError(
                f"layer {layer.name!r} has type {layer.type!r}; supported: "
                f"{', '.join(LAYER_FUNCTIONS)}"
            )
        x = function(layer, x)
    return x.astype(np.float32)


def descriptor(network: Network, images, name: str) -> np.ndarray:
    """The (N, D) descriptor ``name`` (a ``contract.DESCRIPTORS`` key) of ``images``."""
    spec = contract.descriptor_spec(name)
    maps = forward(network, images, upto=spec.layer)
    if spec.global_average_pool:
        return maps.astype(COMPUTE_DTYPE).mean(axis=(1, 2)).astype(np.float32)
    if maps.shape[1:3] != (1, 1):
        raise ModelFileError(
            f"descriptor {name!r}: layer {spec.layer!r} gives {maps.shape[1]}x{maps.shape[2]} "
            "maps, expected 1x1 (is the input the network's input size?)"
        )
    return maps.reshape(maps.shape[0], -1)
