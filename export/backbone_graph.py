"""The backbone, NCHW-native, emitted layer by layer from the framework-free table.

One small emitter per MatConvNet layer type (a registry, like the converter's), each
given its :class:`~gender_cli.convert.layer_plan.Step` (shapes computed once in
``convert/layer_plan.py``). Semantics match ``convert/reference.py`` (MatConvNet's ``vl_simplenn``): floor output
sizes, max pooling ignores padding, average pooling divides by the cells inside the
image (``count_include_pad=0``), LRN's alpha is not divided by the depth.

A conv layer whose window covers its whole input (fc6, fc7, fc8 at 224x224) becomes a
Gemm on the flattened input: the weights are the same bytes (``(Cout, Cin*H*W)`` is the
ONNX conv layout reshaped) and the descriptor comes out as ``[N, D]`` with no reshape
(faster too: see docs/decisions.md).
Weights are transposed from ``(H, W, Cin, Cout)`` only when the writer asks for them,
one layer at a time.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from gender_cli.convert.layer_plan import Step, descriptor_plan
from gender_cli.convert.network import Layer, Network
from gender_cli.export.graph_builder import GraphBuilder


def onnx_pads(layer: Layer) -> list[int]:
    """MatConvNet (top, bottom, left, right) -> ONNX [top, left, bottom, right]."""
    top, bottom, left, right = (int(p) for p in layer.pad)
    return [top, left, bottom, right]


def _conv_weights(layer: Layer, dtype: np.dtype) -> Callable[[], np.ndarray]:
    # (H, W, Cin, Cout) -> (Cout, Cin, H, W); one copy, converted to ``dtype`` on the way.
    return lambda: np.ascontiguousarray(np.transpose(layer.weights, (3, 2, 0, 1)), dtype=dtype)


def _bias(layer: Layer, cout: int, dtype: np.dtype) -> Callable[[], np.ndarray]:
    if layer.bias is None:
        return lambda: np.zeros(cout, dtype)
    return lambda: np.asarray(layer.bias, dtype=dtype).reshape(cout)


def emit_conv(g: GraphBuilder, step: Step, x: str, dtype: np.dtype) -> str:
    layer = step.layer
    kh, kw, cin, cout = (int(s) for s in layer.weights.shape)
    if step.fully_connected:
        # The ONNX conv layout reshaped: same bytes, declared 2-D so that quantizers see
        # a Gemm weight initializer.
        make = _conv_weights(layer, dtype)
        weights = g.initializer(
            f"{layer.name}_W", dtype, (cout, cin * kh * kw), lambda: make().reshape(cout, -1)
        )
        bias = g.initializer(f"{layer.name}_b", dtype, (cout,), _bias(layer, cout, dtype))
        if len(step.input_shape) != 1:
            x = g.node("Flatten", [x], f"{layer.name}_flatten", axis=1)
        return g.node("Gemm", [x, weights, bias], layer.name, transB=1)
    weights = g.initializer(f"{layer.name}_W", dtype, (cout, cin, kh, kw), _conv_weights(layer, dtype))
    bias = g.initializer(f"{layer.name}_b", dtype, (cout,), _bias(layer, cout, dtype))
    return g.node(
        "Conv", [x, weights, bias], layer.name,
        kernel_shape=[kh, kw], strides=[int(s) for s in layer.stride], pads=onnx_pads(layer),
        dilations=[int(d) for d in layer.dilate],
    )


def emit_relu(g: GraphBuilder, step: Step, x: str, dtype: np.dtype) -> str:
    return g.node("Relu", [x], step.layer.name)


def emit_dropout(g: GraphBuilder, step: Step, x: str, dtype: np.dtype) -> str:
    return x  # identity at inference


def emit_pool(g: GraphBuilder, step: Step, x: str, dtype: np.dtype) -> str:
    layer = step.layer
    (ph, pw), (sy, sx), _ = layer.pool_geometry()
    attrs = dict(kernel_shape=[ph, pw], strides=[sy, sx], pads=onnx_pads(layer), ceil_mode=0)
    if layer.method == "max":
        return g.node("MaxPool", [x], layer.name, **attrs)
    return g.node("AveragePool", [x], layer.name, count_include_pad=0, **attrs)


def emit_lrn(g: GraphBuilder, step: Step, x: str, dtype: np.dtype) -> str:
    depth, kappa, alpha, beta = step.layer.lrn
    # ONNX divides alpha by size; MatConvNet does not.
    return g.node(
        "LRN", [x], step.layer.name,
        size=int(depth), alpha=float(alpha) * int(depth), beta=float(beta), bias=float(kappa),
    )


def emit_softmax(g: GraphBuilder, step: Step, x: str, dtype: np.dtype) -> str:
    return g.node("Softmax", [x], step.layer.name, axis=1)


EMITTERS: dict[str, Callable[[GraphBuilder, Step, str, np.dtype], str]] = {
    "conv": emit_conv,
    "relu": emit_relu,
    "dropout": emit_dropout,
    "pool": emit_pool,
    "lrn": emit_lrn,
    "softmax": emit_softmax,
}


def emit_backbone(
    g: GraphBuilder,
    network: Network,
    x_nchw: str,
    descriptor: str,
    dtype: np.dtype,
) -> tuple[str, int]:
    """Emit the layers up to ``descriptor``; returns the ``[N, D]`` descriptor tensor and D."""
    planned = descriptor_plan(network, descriptor)
    x = x_nchw
    for step in planned.steps:
        x = EMITTERS[step.layer.type](g, step, x, np.dtype(dtype))
    if planned.global_average_pool:
        x = g.node("GlobalAveragePool", [x], f"{descriptor}_global_average")
    if planned.global_average_pool or planned.flatten:
        x = g.node("Flatten", [x], f"{descriptor}_flatten", axis=1)
    return x, planned.dim
