"""The backbone, NCHW-native, emitted layer by layer from the framework-free layer graph.

Each layer is emitted by its kind's ``onnx`` part (:mod:`gender_cli.convert.kinds`),
given its :class:`~gender_cli.convert.layer_plan.Step` (shapes computed once in
``convert/layer_plan.py``) and the tensors of the layers it takes. Semantics match
``convert/reference.py``. Weights are transposed into ONNX's layouts only when the
writer asks for them, one layer at a time.
"""

from __future__ import annotations

import numpy as np

from gender_cli.convert.kinds import kind_of
from gender_cli.convert.layer_plan import INPUT, descriptor_plan
from gender_cli.convert.network import Network
from gender_cli.export.graph_builder import GraphBuilder


def emit_layers(g: GraphBuilder, steps, x_nchw: str, dtype: np.dtype) -> dict[int, str]:
    """Emit ``steps`` (from ``layer_plan.plan``) on ``x_nchw``; each step's output tensor by index."""
    tensors = {INPUT: x_nchw}
    for step in steps:
        taken = (tensors[i] for i in step.inputs)
        tensors[step.index] = kind_of(step.layer).onnx(g, step, np.dtype(dtype), *taken)
    return tensors


def emit_backbone(
    g: GraphBuilder,
    network: Network,
    x_nchw: str,
    descriptor: str,
    dtype: np.dtype,
) -> tuple[str, int]:
    """Emit the layers up to ``descriptor``; returns the ``[N, D]`` descriptor tensor and D."""
    planned = descriptor_plan(network, descriptor)
    x = emit_layers(g, planned.steps, x_nchw, dtype)[planned.steps[-1].index]
    if planned.global_average_pool:
        x = g.node("GlobalAveragePool", [x], f"{descriptor}_global_average")
    if planned.global_average_pool or planned.flatten:
        x = g.node("Flatten", [x], f"{descriptor}_flatten", axis=1)
    return x, planned.dim
