"""Each layer's geometry and output shape, computed once from the layer graph.

The backends that build a network from the table (the ONNX emitter, the Keras builder
and the PyTorch port) walk :func:`plan` instead of re-deriving shapes: a :class:`Step`
holds the layer, the indices of the steps it takes, the per-image shapes going in and
coming out, and whether a conv is *fully connected* (its window covers its whole input,
as VGG's fc6/fc7/fc8 do at 224x224), which the ONNX graph and the PyTorch port run as a
matrix product on the input flattened in (C, H, W) order. Each shape rule is its kind's
(:mod:`gender_cli.convert.kinds`); the NumPy reference (``reference.py``) computes
shapes by doing the arithmetic, which is what checks these rules.

Shapes are per image: ``(C, H, W)`` maps, or ``(D,)`` after a fully connected layer.
An unknown spatial size (``None``, for a size-agnostic Keras model) stays ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass

from gender_cli import contract
from gender_cli.convert.kinds import kind_of
from gender_cli.convert.kinds.geometry import output_size  # noqa: F401  (re-exported)
from gender_cli.convert.network import Layer, Network
from gender_cli.errors import ModelFileError

Shape = tuple  # (C, H, W) or (D,); H and W may be None (unknown)
INPUT = -1  # the index of the image input among a step's inputs


@dataclass(frozen=True)
class Step:
    index: int  # position in the layer table (0-based)
    layer: Layer
    inputs: tuple[int, ...]  # indices of the steps it takes; INPUT is the image
    input_shapes: tuple[Shape, ...]
    output_shape: Shape
    fully_connected: bool = False  # a conv whose window covers its whole input

    @property
    def input_shape(self) -> Shape:
        return self.input_shapes[0]

    @property
    def flat_output(self) -> bool:
        return len(self.output_shape) == 1


def next_shape(layer: Layer, shape: Shape) -> Shape:
    """The per-image shape after single-input ``layer`` (readers that build a table layer by layer)."""
    return kind_of(layer).shape(layer, shape)[0]


def plan(network: Network, upto: str | None = None, input_size=None) -> list[Step]:
    """The steps up to and including layer ``upto`` (default: all), in table order.

    ``input_size`` is ``(H, W)``; default the network's own. Raises ModelFileError for
    inconsistent shapes or inputs and UnsupportedLayerError for a type no kind has.
    """
    last = len(network.layers) - 1 if upto is None else network.layer_index(upto)
    height, width = tuple(input_size) if input_size is not None else tuple(network.input_size[:2])
    image: Shape = (int(network.input_size[2]), height, width)
    steps: list[Step] = []
    for index, (layer, inputs) in enumerate(zip(network.layers[: last + 1], network.inputs_of())):
        kind = kind_of(layer, index)
        if len(inputs) != kind.arity:
            raise ModelFileError(
                f"layer {index + 1} {layer.name!r} ({layer.type}) takes {kind.arity} input(s), "
                f"not {len(inputs)}"
            )
        shapes = tuple(image if i == INPUT else steps[i].output_shape for i in inputs)
        out, fully_connected = kind.shape(layer, *shapes)
        steps.append(Step(index, layer, inputs, shapes, out, fully_connected))
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
