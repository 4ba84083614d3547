"""Window arithmetic shared by the kinds: output sizes, and padding in each backend's order."""

from __future__ import annotations

import numpy as np

from gender_cli.errors import ModelFileError


def output_size(size: int | None, kernel: int, stride: int, before: int, after: int, dilate: int = 1) -> int | None:
    """MatConvNet's (and dlib's) output length along one axis:
    ``floor((size + before + after - k_eff) / stride) + 1``; None stays None."""
    if size is None:
        return None
    effective = (kernel - 1) * dilate + 1
    span = size + before + after - effective
    if span < 0:
        raise ModelFileError(
            f"input of size {size} (padded {before}+{after}) is smaller than the window {effective}"
        )
    return span // stride + 1


def maps(layer, shape: tuple) -> tuple:
    """``shape`` when it is (C, H, W) maps; an error when a fully connected layer came before."""
    if len(shape) == 1:
        raise ModelFileError(f"{layer.type} layer {layer.name!r} follows a fully connected layer")
    return shape


def onnx_pads(layer) -> list[int]:
    """(top, bottom, left, right) -> ONNX [top, left, bottom, right]."""
    top, bottom, left, right = (int(p) for p in layer.pad)
    return [top, left, bottom, right]


# -- NumPy helpers of the reference passes (N, H, W, C) --------------------------------


def pad_nhwc(x: np.ndarray, pad, value: float) -> np.ndarray:
    top, bottom, left, right = pad
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=value)


def window_positions(size: int, kernel: int, stride: int, before: int, after: int, dilate: int = 1) -> int:
    """How many windows fit along one axis, counted one by one: the reference's own
    arithmetic, independent of :func:`output_size` (which the shape rules use)."""
    padded, effective = size + before + after, (kernel - 1) * dilate + 1
    if padded < effective:
        raise ModelFileError(
            f"input of size {size} (padded {before}+{after}) is smaller than the window {effective}"
        )
    return len(range(0, padded - effective + 1, stride))


def out_hw(layer, x: np.ndarray, kernel, dilate) -> tuple[int, int]:
    top, bottom, left, right = layer.pad
    return (
        window_positions(x.shape[1], kernel[0], layer.stride[0], top, bottom, dilate[0]),
        window_positions(x.shape[2], kernel[1], layer.stride[1], left, right, dilate[1]),
    )


def window_slices(layer, kernel: tuple[int, int], dilate: tuple[int, int], out: tuple[int, int]):
    """Yield (u, v, rows, cols): the strided slices of the padded input that tap (u, v)."""
    (sy, sx), (dy, dx), (ho, wo) = layer.stride, dilate, out
    for u in range(kernel[0]):
        for v in range(kernel[1]):
            rows = slice(u * dy, u * dy + (ho - 1) * sy + 1, sy)
            cols = slice(v * dx, v * dx + (wo - 1) * sx + 1, sx)
            yield u, v, rows, cols


def row(values) -> np.ndarray:
    """A MATLAB row vector (1 x K doubles), as MatConvNet stores sizes and pads."""
    return np.asarray(values, dtype=np.float64).reshape(1, -1)
