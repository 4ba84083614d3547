"""Kind ``add``: the element-wise sum of two layers' outputs, the join of a residual
block (dlib's ``add_prev``).

When the two inputs differ in size (channels, rows or columns), the output takes the
larger size of each and the smaller input counts as zero outside its own extent,
aligned at the first channel, row and column: dlib ``add_prev_::forward`` sizes the
output as the element-wise maximum and ``tt::add(dest, src1, src2)`` (``cpu_dlib.cpp``)
reads an element of a source only where that source has it. dlib's face network
relies on this where a strided block meets its average-pooled shortcut (3x3 beside
4x4 maps, 64 channels beside 32).
"""

from __future__ import annotations

import numpy as np

from gender_cli.convert.kinds.geometry import maps
from gender_cli.convert.kinds.record import LayerKind
from gender_cli.convert.network import Layer


def shape(layer: Layer, a: tuple, b: tuple) -> tuple[tuple, bool]:
    maps(layer, a), maps(layer, b)
    return tuple(None if x is None or y is None else max(x, y) for x, y in zip(a, b)), False


def reference(layer: Layer, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.zeros(tuple(max(x, y) for x, y in zip(a.shape, b.shape)), np.float64)
    out[: a.shape[0], : a.shape[1], : a.shape[2], : a.shape[3]] += a
    out[: b.shape[0], : b.shape[1], : b.shape[2], : b.shape[3]] += b
    return out


def _grown(g, name: str, x: str, have: tuple, want: tuple) -> str:
    """``x`` (per-image shape ``have``, (C, H, W)) zero-padded at the end to ``want``."""
    if have == want:
        return x
    extra = [w - h for h, w in zip(have, want)]
    pads = g.constant(f"{name}_pads", np.asarray([0, 0, 0, 0, 0, *extra], np.int64))
    return g.node("Pad", [x, pads], f"{name}_grow")


def onnx(g, step, dtype: np.dtype, a: str, b: str) -> str:
    name = step.layer.name
    shape_a, shape_b = step.input_shapes
    out = step.output_shape
    return g.node("Add", [_grown(g, f"{name}_a", a, shape_a, out), _grown(g, f"{name}_b", b, shape_b, out)], name)


def keras(layer: Layer, a, b):
    from gender_cli.convert.keras_model import PaddedAdd

    return PaddedAdd(name=layer.name)([a, b])


KIND = LayerKind("add", "sum of two inputs (a residual join; the smaller input zero-extended)",
                 shape, reference, onnx, keras, arity=2)
