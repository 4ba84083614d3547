"""Each layer's geometry and output shape, computed once from the layer table.

The backends that build a network from the table (the ONNX emitter, the Keras builder
and the PyTorch port) walk :func:`plan` instead of re-deriving shapes: a :class:`Step`
holds the layer, the per-image shape going in and coming out, and whether a conv is
*fully connected* (its window covers its whole input, as fc6/fc7/fc8 do at 224x224),
which the ONNX graph and the PyTorch port run as a matrix product on the input
flattened in (C, H, W) order. The NumPy reference (``reference.py``) keeps its own
arithmetic on purpose: it is the independent oracle the backends are checked against.

Shapes are per image: ``(C, H, W)`` maps, or ``(D,)`` after a fully connected layer.
An unknown spatial size (``None``, for a size-agnostic Keras model) stays ``None``.
Output sizes follow MatConvNet: ``floor((H + before + after - k_eff) / stride) + 1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from gender_cli import contract
from gender_cli.convert.network import SUPPORTED_TYPES, Layer, Network
from gender_cli.errors import ModelFileError, UnsupportedLayerError

Shape = tuple  # (C, H, W) or (D,); H and W may be None (unknown)


@dataclass(frozen=True)
class Step:
    index: int  # position in the layer table (0-based)
    layer: Layer
    input_shape: Shape
    output_shape: Shape
    fully_connected: bool = False  # a conv whose window covers its whole input

    @property
    def flat_output(self) -> bool:
        return len(self.output_shape) == 1


def output_size(size: int | None, kernel: int, stride: int, before: int, after: int, dilate: int = 1) -> int | None:
    """Output length along one axis (None stays None)."""
    if size is None:
        return None
    span = size + before + after - ((kernel - 1) * dilate + 1)
    if span < 0:
        raise ModelFileError(f"input of size {size} (padded {before}+{after}) is smaller than the window")
    return span // stride + 1


def _maps(layer: Layer, shape: Shape) -> Shape:
    if len(shape) == 1:
        raise ModelFileError(f"{layer.type} layer {layer.name!r} follows a fully connected layer")
    return shape


def _conv(layer: Layer, shape: Shape) -> tuple[Shape, bool]:
    if layer.weights is None:
        raise ModelFileError(f"conv layer {layer.name!r} has no weights")
    kh, kw, cin, cout = (int(s) for s in layer.weights.shape)
    if len(shape) == 1:
        if kh == kw == 1 and shape[0] == cin:
            return (cout,), True
        raise ModelFileError(
            f"conv layer {layer.name!r} follows a fully connected layer ({shape[0]} values) "
            f"but takes {kh}x{kw}x{cin}"
        )
    c, h, w = shape
    if c != cin:
        raise ModelFileError(f"layer {layer.name!r}: filters expect {cin} input channels, got {c}")
    if (h, w) == (kh, kw) and not any(layer.pad) and tuple(layer.dilate) == (1, 1):
        return (cout,), True
    top, bottom, left, right = (int(p) for p in layer.pad)
    (sy, sx), (dy, dx) = layer.stride, layer.dilate
    return (cout, output_size(h, kh, sy, top, bottom, dy), output_size(w, kw, sx, left, right, dx)), False


def _pool(layer: Layer, shape: Shape) -> tuple[Shape, bool]:
    c, h, w = _maps(layer, shape)
    (ph, pw), (sy, sx), (top, bottom, left, right) = layer.pool_geometry()
    return (c, output_size(h, ph, sy, top, bottom), output_size(w, pw, sx, left, right)), False


def _same(layer: Layer, shape: Shape) -> tuple[Shape, bool]:
    return shape, False


def _lrn(layer: Layer, shape: Shape) -> tuple[Shape, bool]:
    return _maps(layer, shape), False


PLANNERS: dict[str, Callable[[Layer, Shape], tuple[Shape, bool]]] = {
    "conv": _conv,
    "pool": _pool,
    "relu": _same,
    "dropout": _same,
    "softmax": _same,
    "lrn": _lrn,
}


def next_shape(layer: Layer, shape: Shape) -> Shape:
    """The per-image shape after ``layer`` (readers that build a table layer by layer)."""
    planner = PLANNERS.get(layer.type)
    if planner is None:
        raise UnsupportedLayerError(f"layer {layer.name!r} has type {layer.type!r}")
    return planner(layer, shape)[0]


def plan(network: Network, upto: str | None = None, input_size=None) -> list[Step]:
    """The steps up to and including layer ``upto`` (default: all).

    ``input_size`` is ``(H, W)``; default the network's own. Raises ModelFileError for
    inconsistent shapes and UnsupportedLayerError for a type outside SUPPORTED_TYPES.
    """
    last = len(network.layers) - 1 if upto is None else network.layer_index(upto)
    height, width = tuple(input_size) if input_size is not None else tuple(network.input_size[:2])
    shape: Shape = (int(network.input_size[2]), height, width)
    steps = []
    for index, layer in enumerate(network.layers[: last + 1]):
        planner = PLANNERS.get(layer.type)
        if planner is None:
            raise UnsupportedLayerError(
                f"layer {index + 1} {layer.name!r} has type {layer.type!r}; supported types: "
                f"{', '.join(SUPPORTED_TYPES)}"
            )
        out, fully_connected = planner(layer, shape)
        steps.append(Step(index, layer, shape, out, fully_connected))
        shape = out
    return steps


@dataclass(frozen=True)
class DescriptorPlan:
    steps: list[Step]
    dim: int  # D of the (N, D) descriptor
    global_average_pool: bool  # maps are averaged over H x W (pool5)
    flatten: bool  # 1x1 maps are flattened to (N, D); False when the last step is already flat


def descriptor_plan(network: Network, descriptor: str, input_size=None) -> DescriptorPlan:
    """The steps that compute ``descriptor`` and how their output becomes ``(N, D)``."""
    spec = contract.descriptor_spec(descriptor)
    steps = plan(network, spec.layer, input_size)
    out = steps[-1].output_shape
    if len(out) == 1:
        return DescriptorPlan(steps, out[0], False, False)
    channels, height, width = out
    if spec.global_average_pool:
        return DescriptorPlan(steps, channels, True, False)
    if (height, width) != (1, 1):
        raise ModelFileError(
            f"descriptor {descriptor!r}: layer {spec.layer!r} gives {height}x{width} maps, "
            "expected 1x1 (is the input the network's input size?)"
        )
    return DescriptorPlan(steps, channels, False, True)


if set(PLANNERS) != set(SUPPORTED_TYPES):  # pragma: no cover - a programming error
    raise RuntimeError("layer_plan.PLANNERS and network.SUPPORTED_TYPES disagree")
