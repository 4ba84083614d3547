"""Any Keras head on the descriptor, converted by tf2onnx and joined to the backbone graph.

``export --head FILE.keras`` takes a Keras model from ``(N, D)`` descriptors to ``(N, 2)``
probabilities, whatever its layers (batch normalization, other activations, ...),
converts it with tf2onnx at the contract's opset, checks the converted head against
Keras on probe descriptors, and grafts its nodes onto the streamed backbone graph
(``onnx.compose.add_prefix`` keeps its names apart; every node name starts with the
head prefix, so int8 keeps the head in float32 as it does the built-in one). The
result is the same one graph with the same metadata as the built-in route.

The built-in route (``head.json`` + ``head_weights.npz``, ``head_graph.py``) stays the
default and needs no TensorFlow; this module imports TensorFlow and tf2onnx. A Keras
file is a gender head; the age head travels through the built-in route (the run
folder).

Labels, threshold, descriptor and metrics come from a ``head.json`` beside the
``.keras`` file (a ``gender-cli train`` run folder holds both); a head alone gets the
contract's labels and a threshold of 0.5 on ``probabilities[:, 1]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from gender_cli import contract
from gender_cli.errors import ModelFileError
from gender_cli.export.graph_builder import GraphBuilder, graft
from gender_cli.export.head_graph import HEAD_PREFIX, NUM_CLASSES
from gender_cli.export.keras_convert import convert_checked, load_keras_model
from gender_cli.head_spec import SPEC_FILE, HeadSpec

KERAS_SUFFIXES = (".keras", ".h5")
KERAS_PREFIX = f"{HEAD_PREFIX}keras_"
PROBE_ROWS = 64
AGREEMENT = 1e-5  # max |p_onnx - p_keras| on the probe descriptors


def is_keras_head(path) -> bool:
    return path is not None and Path(path).suffix.lower() in KERAS_SUFFIXES and Path(path).is_file()


@dataclass
class KerasHead:
    task: ClassVar[str] = contract.GENDER_HEAD
    spec: HeadSpec
    onnx_model: object  # onnx.ModelProto: one [N, D] float input, one [N, 2] output
    source: Path
    max_abs_difference: float  # converted vs Keras on the probe descriptors

    def emit(self, g: GraphBuilder, descriptor: str) -> str:
        """Add the converted head on the float32 ``[N, D]`` descriptor; returns probabilities."""
        return graft(g, self.onnx_model, KERAS_PREFIX, descriptor)


def load_keras_head(path: Path, descriptor: str, descriptor_dim: int) -> KerasHead:
    """Load, check and convert the Keras head in ``path`` for a ``descriptor_dim`` descriptor."""
    path = Path(path)
    model = load_keras_model(path)
    inputs, outputs = list(model.inputs), list(model.outputs)
    if len(inputs) != 1 or tuple(inputs[0].shape[1:]) != (descriptor_dim,):
        raise ModelFileError(
            f"the Keras head {path} takes {[tuple(i.shape) for i in inputs]}; this network's "
            f"{descriptor!r} descriptor is (None, {descriptor_dim})"
        )
    if len(outputs) != 1 or tuple(outputs[0].shape[1:]) != (NUM_CLASSES,):
        raise ModelFileError(
            f"the Keras head {path} gives {[tuple(o.shape) for o in outputs]}; a gender head gives "
            f"(None, {NUM_CLASSES}) probabilities"
        )
    probe = np.random.default_rng(0).gamma(1.0, 1.0, (PROBE_ROWS, descriptor_dim)).astype(np.float32)
    expected = np.asarray(model(probe, training=False), np.float32)
    if expected.min() < -1e-6 or np.abs(expected.sum(axis=1) - 1).max() > 1e-4:
        raise ModelFileError(
            f"the Keras head {path} does not output probabilities (rows must be >= 0 and sum to 1); "
            "end it with a softmax"
        )
    onnx_model, difference = convert_checked(model, probe, "descriptor", f"the Keras head {path}", AGREEMENT)
    return KerasHead(_spec_for(path, descriptor, descriptor_dim), onnx_model, path, difference)


def _spec_for(path: Path, descriptor: str, descriptor_dim: int) -> HeadSpec:
    if (path.parent / SPEC_FILE).is_file():
        spec, _, _ = HeadSpec.load(path.parent)
        if spec.descriptor != descriptor:
            raise ModelFileError(
                f"{path.parent / SPEC_FILE} says the head was trained on {spec.descriptor!r}, not {descriptor!r}"
            )
        return spec
    return HeadSpec(
        descriptor=descriptor, input_dim=descriptor_dim, hidden=[], dropout=0.0,
        labels=list(contract.LABELS), threshold=0.5,
    )
