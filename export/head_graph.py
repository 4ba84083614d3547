"""The trained heads (HeadSpec, AgeHeadSpec) as float32 Gemm/Relu nodes and a Softmax.

Dropout is inference-free, so a head is ``Gemm -> Relu -> ... -> Gemm -> Softmax``.
The kernels are stored ``[in, out]`` exactly as the specs keep them (``transB=0``).
The gender head's softmax is the ``probabilities`` output; the age head's softmax over
the ages 0-100 is multiplied by the class ages (``MatMul`` with a [101] vector), which
gives the expected age in years, ``[N]`` (DEX). :class:`Heads` is the set of heads one
graph carries and adds their outputs in the contract's order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from gender_cli.contract import AGE_HEAD, GENDER_HEAD, HEADS
from gender_cli.errors import ModelFileError
from gender_cli.export.graph_builder import FLOAT, GraphBuilder
from gender_cli.head_spec import AgeHeadSpec, HeadSpec

NUM_CLASSES = 2
HEAD_PREFIX = "head_"  # every head node's name starts with it (int8 keeps them float)
AGE_PREFIX = f"{HEAD_PREFIX}age_"


@dataclass
class _BuiltInHead:
    """A head ``train`` saved in a run folder: its spec and dense layers."""

    SPEC: ClassVar[type]
    spec: HeadSpec | AgeHeadSpec
    kernels: list[np.ndarray]
    biases: list[np.ndarray]

    @classmethod
    def load(cls, head_dir: Path, descriptor: str, descriptor_dim: int, backbone_sha256: str):
        return cls(*load_head(head_dir, descriptor, descriptor_dim, backbone_sha256, cls.SPEC))


class DenseHead(_BuiltInHead):
    """The built-in gender head: dense layers and a softmax over the labels."""

    task: ClassVar[str] = GENDER_HEAD
    SPEC: ClassVar[type] = HeadSpec

    def emit(self, g: GraphBuilder, descriptor: str) -> str:
        return emit_head(g, descriptor, self.kernels, self.biases)


class AgeDenseHead(_BuiltInHead):
    """The built-in age head (DEX): dense layers, a softmax over the ages, its expected value."""

    task: ClassVar[str] = AGE_HEAD
    SPEC: ClassVar[type] = AgeHeadSpec

    def emit(self, g: GraphBuilder, descriptor: str) -> str:
        probabilities = emit_head(g, descriptor, self.kernels, self.biases, AGE_PREFIX)
        ages = g.constant(f"{AGE_PREFIX}class_ages", self.spec.age_values())
        return g.node("MatMul", [probabilities, ages], f"{AGE_PREFIX}expected")


BUILT_IN = {head.task: head for head in (DenseHead, AgeDenseHead)}


@dataclass
class Heads:
    """The heads one graph carries (each with ``task``, ``spec`` and ``emit``), in
    ``contract.HEADS`` order."""

    members: list

    def __post_init__(self) -> None:
        self.members = sorted(self.members, key=lambda head: list(HEADS).index(head.task))

    def get(self, task: str):
        return next((head for head in self.members if head.task == task), None)

    @property
    def names(self) -> list[str]:
        return [head.task for head in self.members]

    @property
    def outputs(self) -> list[str]:
        return [HEADS[task].output for task in self.names]

    @property
    def threshold(self) -> float:
        """The gender head's decision threshold (0.5 without one)."""
        gender = self.get(GENDER_HEAD)
        return float(gender.spec.threshold) if gender is not None else 0.5

    def emit(self, g: GraphBuilder, descriptor: str) -> None:
        """Add every head on the float32 ``[N, D]`` descriptor and expose its output."""
        for head in self.members:
            contract = HEADS[head.task]
            g.add_output(head.emit(g, descriptor), contract.output, FLOAT, list(contract.shape))


def load_run_heads(head_dir: Path, descriptor: str, descriptor_dim: int, backbone_sha256: str) -> Heads:
    """Every head a ``gender-cli train`` run folder holds."""
    from gender_cli.head_spec import heads_in

    tasks = heads_in(head_dir)
    if not tasks:
        files = " or ".join(spec.SPEC_FILE for spec in (HeadSpec, AgeHeadSpec))
        raise ModelFileError(f"no trained head in {head_dir} (no {files}); give a 'gender-cli train' run folder")
    return Heads([BUILT_IN[task].load(head_dir, descriptor, descriptor_dim, backbone_sha256) for task in tasks])


def load_head(head_dir: Path, descriptor: str, descriptor_dim: int, backbone_sha256: str, spec_class=HeadSpec):
    """Read a head and check it fits this backbone; returns (spec, kernels, biases)."""
    spec, kernels, biases = spec_class.load(Path(head_dir))
    name = f"the {spec_class.NAME} in {head_dir}"
    if spec.descriptor != descriptor:
        raise ModelFileError(
            f"{name} was trained on descriptor {spec.descriptor!r}, "
            f"not {descriptor!r}; export with --descriptor {spec.descriptor} (or train a new head)"
        )
    if spec.input_dim != descriptor_dim:
        raise ModelFileError(
            f"{name} takes {spec.input_dim} inputs but this network's "
            f"{descriptor!r} descriptor has {descriptor_dim} dimensions; was it trained on "
            "a different network?"
        )
    if spec.backbone_sha256 and backbone_sha256 and spec.backbone_sha256 != backbone_sha256:
        raise ModelFileError(
            f"{name} was trained on descriptors of weights "
            f"{spec.backbone_sha256[:12]}..., but the network to export has weights "
            f"{backbone_sha256[:12]}...; train a head on this network first"
        )
    width = descriptor_dim
    for i, (kernel, bias) in enumerate(zip(kernels, biases)):
        if kernel.ndim != 2 or kernel.shape[0] != width or bias.shape != (kernel.shape[1],):
            raise ModelFileError(
                f"{name} is inconsistent at dense layer {i}: kernel "
                f"{kernel.shape}, bias {bias.shape}, expected {width} inputs"
            )
        width = kernel.shape[1]
    if spec_class is HeadSpec and (width != NUM_CLASSES or len(spec.labels) != NUM_CLASSES):
        raise ModelFileError(
            f"{name} has {width} outputs and labels {spec.labels}; a gender head has {NUM_CLASSES}"
        )
    if spec_class is AgeHeadSpec and width != len(spec.age_values()):
        raise ModelFileError(
            f"{name} has {width} outputs; an age head over the ages {spec.ages[0]}-{spec.ages[1]} "
            f"has {len(spec.age_values())}"
        )
    return spec, kernels, biases


def emit_head(g: GraphBuilder, descriptor: str, kernels, biases, prefix: str = HEAD_PREFIX) -> str:
    """Add a dense stack and softmax on the float32 ``[N, D]`` descriptor; returns the
    probabilities tensor."""
    x = descriptor
    last = len(kernels) - 1
    for i, (kernel, bias) in enumerate(zip(kernels, biases)):
        k = g.constant(f"{prefix}dense_{i}_kernel", np.asarray(kernel, np.float32))
        b = g.constant(f"{prefix}dense_{i}_bias", np.asarray(bias, np.float32))
        x = g.node("Gemm", [x, k, b], f"{prefix}dense_{i}")
        if i < last:
            x = g.node("Relu", [x], f"{prefix}relu_{i}")
    return g.node("Softmax", [x], f"{prefix}softmax", axis=1)
