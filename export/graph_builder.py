"""Collect ONNX nodes and lazily-made initializers for one graph.

Initializers are recorded as :class:`LazyTensor` (name, dtype, dims and a function
that makes the array) instead of ``TensorProto``: the writer materialises them one at
a time while streaming the file, so a 580 MB model never exists twice in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from onnx import NodeProto, TensorProto, ValueInfoProto, helper


@dataclass
class LazyTensor:
    name: str
    dtype: np.dtype
    dims: tuple[int, ...]
    make: Callable[[], np.ndarray]  # returns a C-contiguous array of ``dims`` and ``dtype``

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.dims, dtype=np.int64)) * np.dtype(self.dtype).itemsize

    @property
    def onnx_type(self) -> int:
        return helper.np_dtype_to_tensor_dtype(np.dtype(self.dtype))

    def array(self) -> np.ndarray:
        # np.asarray, not np.ascontiguousarray: the latter turns scalars into shape (1,)
        value = np.asarray(self.make(), dtype=self.dtype, order="C")
        if value.shape != tuple(self.dims):
            raise ValueError(f"initializer {self.name}: made {value.shape}, declared {self.dims}")
        return value


@dataclass
class GraphBuilder:
    name: str = "gender_cli"
    nodes: list[NodeProto] = field(default_factory=list)
    initializers: list[LazyTensor] = field(default_factory=list)
    inputs: list[ValueInfoProto] = field(default_factory=list)
    outputs: list[ValueInfoProto] = field(default_factory=list)
    value_info: list[ValueInfoProto] = field(default_factory=list)
    opsets: dict[str, int] = field(default_factory=dict)  # domain -> version; empty: contract.OPSET
    _used: set[str] = field(default_factory=set)

    def unique(self, base: str) -> str:
        name, i = base, 1
        while name in self._used:
            i += 1
            name = f"{base}_{i}"
        self._used.add(name)
        return name

    def node(self, op: str, inputs: list[str], name: str, **attrs) -> str:
        """Add one single-output node; returns the output tensor name."""
        out = self.unique(name)
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def initializer(self, name: str, dtype, dims, make: Callable[[], np.ndarray]) -> str:
        name = self.unique(name)
        self.initializers.append(LazyTensor(name, np.dtype(dtype), tuple(int(d) for d in dims), make))
        return name

    def constant(self, name: str, value: np.ndarray) -> str:
        """A small initializer whose value is known now."""
        value = np.ascontiguousarray(value)
        return self.initializer(name, value.dtype, value.shape, lambda: value)

    def add_input(self, name: str, elem_type: int, shape: list) -> str:
        self._used.add(name)
        self.inputs.append(helper.make_tensor_value_info(name, elem_type, shape))
        return name

    def add_output(self, tensor: str, name: str, elem_type: int, shape: list) -> str:
        """Expose ``tensor`` as graph output ``name`` (an Identity renames it if needed)."""
        if tensor != name:
            self._used.add(name)
            self.nodes.append(helper.make_node("Identity", [tensor], [name], name=name))
        self.outputs.append(helper.make_tensor_value_info(name, elem_type, shape))
        return name


def from_model(model) -> GraphBuilder:
    """A builder holding a loaded ModelProto's graph (to rewrite it with the streaming writer)."""
    from onnx import numpy_helper

    graph = model.graph
    g = GraphBuilder(name=graph.name or "gender_cli")
    g.nodes = list(graph.node)
    g.inputs = list(graph.input)
    g.outputs = list(graph.output)
    g.value_info = list(graph.value_info)
    g.opsets = {o.domain: o.version for o in model.opset_import}
    for t in graph.initializer:
        dtype = helper.tensor_dtype_to_np_dtype(t.data_type)
        g.initializers.append(LazyTensor(t.name, dtype, tuple(t.dims), lambda t=t: numpy_helper.to_array(t)))
    return g


def graft(g: GraphBuilder, model, prefix: str, source: str) -> str:
    """Add a converted one-input ModelProto's nodes and weights to ``g``, every name
    prefixed with ``prefix`` (``onnx.compose.add_prefix``), its input fed by ``source``;
    returns its (first) output tensor."""
    from onnx import compose, numpy_helper

    model = compose.add_prefix(model, prefix)
    graph = model.graph
    (model_input,) = [i.name for i in graph.input if i.name not in {t.name for t in graph.initializer}]
    g.nodes.append(helper.make_node("Identity", [source], [model_input], name=f"{prefix}input"))
    for node in graph.node:
        if not node.name:
            node.name = node.output[0]
        g.nodes.append(node)
    for tensor in graph.initializer:
        array = numpy_helper.to_array(tensor)
        g.initializers.append(LazyTensor(tensor.name, array.dtype, tuple(tensor.dims), lambda a=array: a))
    for opset in model.opset_import:
        if opset.domain and any(node.domain == opset.domain for node in graph.node):
            g.opsets[opset.domain] = opset.version
    return graph.output[0].name


FLOAT = TensorProto.FLOAT
FLOAT16 = TensorProto.FLOAT16
UINT8 = TensorProto.UINT8
