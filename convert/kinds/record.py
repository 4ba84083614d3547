"""The record of a layer kind (see the package docstring for what each part does)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

PARTS = ("shape", "reference", "onnx", "keras")  # every kind has these


@dataclass(frozen=True)
class LayerKind:
    name: str
    help: str  # one line: what the kind computes
    shape: Callable  # (layer, *shapes) -> (shape, fully_connected)
    reference: Callable  # (layer, *arrays) -> array; NHWC float64
    onnx: Callable  # (g, step, dtype, *tensors) -> tensor; NCHW
    keras: Callable  # (layer, *tensors) -> tensor; NHWC, imports Keras when called
    arity: int = 1  # inputs per layer
    from_mat: Callable | None = None  # (raw, name, label) -> Layer; None: MatConvNet has no such type
    mat_values: Callable | None = None  # (layer, layout) -> {field: value} of a MatConvNet stand-in
    mat_fields: dict[str, tuple[str, ...]] | None = None  # layout -> field order of a MatConvNet stand-in
