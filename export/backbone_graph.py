"""The backbone, NCHW-native, emitted layer by layer from the framework-free table.

One small emitter per MatConvNet layer type (a registry, like the converter's).
Semantics match ``convert/reference.py`` (MatConvNet's ``vl_simplenn``): floor output
sizes, max pooling ignores padding, average pooling divides by the cells inside the
image (``count_include_pad=0``), LRN's alpha is not divided by the depth.

A conv layer whose window covers its whole input (fc6, fc7, fc8 at 224x224) becomes a
Gemm on the flattened input: the weights are the same bytes (``(Cout, Cin*H*W)`` is the
ONNX conv layout reshaped) and the descriptor comes out as ``[N, D]`` with no reshape. It is also faster: on 2 cores,
onnxruntime runs fc6 for a batch of 8 as a Gemm in 39 ms and as a 7x7 Conv in 228 ms.
Weights are transposed from ``(H, W, Cin, Cout)`` only when the writer asks for them,
one layer at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from gender_cli import contract
from gender_cli.convert.network import Layer, Network
from gender_cli.errors import ModelFileError, UnsupportedLayerError
from gender_cli.export.graph_builder import GraphBuilder


@dataclass(frozen=True)
class Flow:
    """The running activation: tensor name and per-image shape, (C, H, W) or (D,)."""

    tensor: str
    shape: tuple[int, ...]

    @property
    def flat(self) -> bool:
        return len(self.shape) == 1


def output_size(size: int, kernel: int, stride: int, before: int, after: int, dilate: int = 1) -> int:
    span = size + before + after - ((kernel - 1) * dilate + 1)
    if span < 0:
        raise ModelFileError(f"input of size {size} (padded {before}+{after}) is smaller than the window")
    return span // stride + 1


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


def emit_conv(g: GraphBuilder, layer: Layer, flow: Flow, dtype: np.dtype) -> Flow:
    if layer.weights is None:
        raise ModelFileError(f"conv layer {layer.name!r} has no weights")
    kh, kw, cin, cout = (int(s) for s in layer.weights.shape)
    dy, dx = (int(d) for d in layer.dilate)
    covers_input = (
        flow.flat and kh == kw == 1 and flow.shape[0] == cin
    ) or (
        not flow.flat
        and flow.shape == (cin, kh, kw)
        and not any(layer.pad)
        and (dy, dx) == (1, 1)
    )
    if covers_input:
        # The ONNX conv layout reshaped: same bytes, declared 2-D so that quantizers see
        # a Gemm weight initializer.
        make = _conv_weights(layer, dtype)
        weights = g.initializer(
            f"{layer.name}_W", dtype, (cout, cin * kh * kw), lambda: make().reshape(cout, -1)
        )
        bias = g.initializer(f"{layer.name}_b", dtype, (cout,), _bias(layer, cout, dtype))
        x = flow.tensor if flow.flat else g.node("Flatten", [flow.tensor], f"{layer.name}_flatten", axis=1)
        return Flow(g.node("Gemm", [x, weights, bias], layer.name, transB=1), (cout,))
    if flow.flat:
        raise ModelFileError(f"conv layer {layer.name!r} follows a fully connected layer but is not 1x1")
    c, h, w = flow.shape
    if c != cin:
        raise ModelFileError(f"layer {layer.name!r}: filters expect {cin} input channels, got {c}")
    weights = g.initializer(f"{layer.name}_W", dtype, (cout, cin, kh, kw), _conv_weights(layer, dtype))
    bias = g.initializer(f"{layer.name}_b", dtype, (cout,), _bias(layer, cout, dtype))
    top, bottom, left, right = (int(p) for p in layer.pad)
    sy, sx = (int(s) for s in layer.stride)
    out = (
        cout,
        output_size(h, kh, sy, top, bottom, dy),
        output_size(w, kw, sx, left, right, dx),
    )
    tensor = g.node(
        "Conv", [flow.tensor, weights, bias], layer.name,
        kernel_shape=[kh, kw], strides=[sy, sx], pads=onnx_pads(layer), dilations=[dy, dx],
    )
    return Flow(tensor, out)


def emit_relu(g: GraphBuilder, layer: Layer, flow: Flow, dtype: np.dtype) -> Flow:
    return Flow(g.node("Relu", [flow.tensor], layer.name), flow.shape)


def emit_dropout(g: GraphBuilder, layer: Layer, flow: Flow, dtype: np.dtype) -> Flow:
    return flow  # identity at inference


def _require_maps(layer: Layer, flow: Flow) -> tuple[int, int, int]:
    if flow.flat:
        raise ModelFileError(f"{layer.type} layer {layer.name!r} follows a fully connected layer")
    return flow.shape


def emit_pool(g: GraphBuilder, layer: Layer, flow: Flow, dtype: np.dtype) -> Flow:
    c, h, w = _require_maps(layer, flow)
    (ph, pw), (sy, sx), (top, bottom, left, right) = layer.pool_geometry()
    attrs = dict(kernel_shape=[ph, pw], strides=[sy, sx], pads=onnx_pads(layer), ceil_mode=0)
    if layer.method == "max":
        tensor = g.node("MaxPool", [flow.tensor], layer.name, **attrs)
    else:
        tensor = g.node("AveragePool", [flow.tensor], layer.name, count_include_pad=0, **attrs)
    return Flow(tensor, (c, output_size(h, ph, sy, top, bottom), output_size(w, pw, sx, left, right)))


def emit_lrn(g: GraphBuilder, layer: Layer, flow: Flow, dtype: np.dtype) -> Flow:
    _require_maps(layer, flow)
    depth, kappa, alpha, beta = layer.lrn
    # ONNX divides alpha by size; MatConvNet does not.
    tensor = g.node(
        "LRN", [flow.tensor], layer.name,
        size=int(depth), alpha=float(alpha) * int(depth), beta=float(beta), bias=float(kappa),
    )
    return Flow(tensor, flow.shape)


def emit_softmax(g: GraphBuilder, layer: Layer, flow: Flow, dtype: np.dtype) -> Flow:
    return Flow(g.node("Softmax", [flow.tensor], layer.name, axis=1), flow.shape)


EMITTERS: dict[str, Callable[[GraphBuilder, Layer, Flow, np.dtype], Flow]] = {
    "conv": emit_conv,
    "relu": emit_relu,
    "dropout": emit_dropout,
    "pool": emit_pool,
    "lrn": emit_lrn,
    "softmax": emit_softmax,
}


def descriptor_layers(network: Network, descriptor: str) -> list[Layer]:
    """The layers that compute ``descriptor``, checked against the registry."""
    last = network.layer_index(contract.descriptor_spec(descriptor).layer)
    layers = network.layers[: last + 1]
    for index, layer in enumerate(layers):
        if layer.type not in EMITTERS:
            raise UnsupportedLayerError(
                f"layer {index} ({layer.name!r}) has type {layer.type!r}; export supports "
                f"{', '.join(EMITTERS)}"
            )
    return layers


def emit_backbone(
    g: GraphBuilder,
    network: Network,
    x_nchw: str,
    descriptor: str,
    dtype: np.dtype,
) -> Flow:
    """Emit the layers up to ``descriptor``; returns the ``[N, D]`` descriptor flow."""
    h, w, c = (int(s) for s in network.input_size)
    flow = Flow(x_nchw, (c, h, w))
    for layer in descriptor_layers(network, descriptor):
        flow = EMITTERS[layer.type](g, layer, flow, np.dtype(dtype))
    spec = contract.DESCRIPTORS[descriptor]
    if flow.flat:
        return flow
    channels, height, width = flow.shape
    if spec.global_average_pool:
        pooled = g.node("GlobalAveragePool", [flow.tensor], f"{descriptor}_global_average")
        return Flow(g.node("Flatten", [pooled], f"{descriptor}_flatten", axis=1), (channels,))
    if (height, width) != (1, 1):
        raise ModelFileError(
            f"descriptor {descriptor!r}: layer {spec.layer!r} gives {height}x{width} maps, "
            "expected 1x1 (is the input the network's input size?)"
        )
    return Flow(g.node("Flatten", [flow.tensor], f"{descriptor}_flatten", axis=1), (channels,))
