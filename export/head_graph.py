"""The trained gender head (a HeadSpec) as float32 Gemm/Relu nodes and a Softmax.

Dropout is inference-free, so the head is ``Gemm -> Relu -> ... -> Gemm -> Softmax``.
The kernels are stored ``[in, out]`` exactly as HeadSpec keeps them (``transB=0``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gender_cli.errors import ModelFileError
from gender_cli.export.graph_builder import GraphBuilder
from gender_cli.head_spec import HeadSpec

NUM_CLASSES = 2
HEAD_PREFIX = "head_"  # every head node's name starts with it (int8 keeps them float)


@dataclass
class DenseHead:
    """The built-in head: ``train``'s dense layers, read from a run folder."""

    spec: HeadSpec
    kernels: list[np.ndarray]
    biases: list[np.ndarray]

    @classmethod
    def load(cls, head_dir: Path, descriptor: str, descriptor_dim: int, backbone_sha256: str) -> "DenseHead":
        return cls(*load_head(head_dir, descriptor, descriptor_dim, backbone_sha256))

    def emit(self, g: GraphBuilder, descriptor: str) -> str:
        return emit_head(g, descriptor, self.kernels, self.biases)


def load_head(head_dir: Path, descriptor: str, descriptor_dim: int, backbone_sha256: str):
    """Read a head and check it fits this backbone; returns (spec, kernels, biases)."""
    spec, kernels, biases = HeadSpec.load(Path(head_dir))
    if spec.descriptor != descriptor:
        raise ModelFileError(
            f"the head in {head_dir} was trained on descriptor {spec.descriptor!r}, "
            f"not {descriptor!r}; export with --descriptor {spec.descriptor} (or train a new head)"
        )
    if spec.input_dim != descriptor_dim:
        raise ModelFileError(
            f"the head in {head_dir} takes {spec.input_dim} inputs but this network's "
            f"{descriptor!r} descriptor has {descriptor_dim} dimensions; was it trained on "
            "a different network?"
        )
    if spec.backbone_sha256 and backbone_sha256 and spec.backbone_sha256 != backbone_sha256:
        raise ModelFileError(
            f"the head in {head_dir} was trained on descriptors of weights "
            f"{spec.backbone_sha256[:12]}..., but the network to export has weights "
            f"{backbone_sha256[:12]}...; train a head on this network first"
        )
    width = descriptor_dim
    for i, (kernel, bias) in enumerate(zip(kernels, biases)):
        if kernel.ndim != 2 or kernel.shape[0] != width or bias.shape != (kernel.shape[1],):
            raise ModelFileError(
                f"the head in {head_dir} is inconsistent at dense layer {i}: kernel "
                f"{kernel.shape}, bias {bias.shape}, expected {width} inputs"
            )
        width = kernel.shape[1]
    if width != NUM_CLASSES or len(spec.labels) != NUM_CLASSES:
        raise ModelFileError(
            f"the head in {head_dir} has {width} outputs and labels {spec.labels}; "
            f"a gender head has {NUM_CLASSES}"
        )
    return spec, kernels, biases


def emit_head(g: GraphBuilder, descriptor: str, kernels, biases) -> str:
    """Add the head on the float32 ``[N, D]`` descriptor; returns the probabilities tensor."""
    x = descriptor
    last = len(kernels) - 1
    for i, (kernel, bias) in enumerate(zip(kernels, biases)):
        k = g.constant(f"{HEAD_PREFIX}dense_{i}_kernel", np.asarray(kernel, np.float32))
        b = g.constant(f"{HEAD_PREFIX}dense_{i}_bias", np.asarray(bias, np.float32))
        x = g.node("Gemm", [x, k, b], f"{HEAD_PREFIX}dense_{i}")
        if i < last:
            x = g.node("Relu", [x], f"{HEAD_PREFIX}relu_{i}")
    return g.node("Softmax", [x], f"{HEAD_PREFIX}softmax", axis=1)
