"""A from-scratch training run's trunk as a network ``export`` writes: tf2onnx, the same one graph.

``train --from-scratch`` leaves ``trunk.keras`` (uint8 RGB images -> descriptor, the
scaling to 0..1 inside) and ``scratch.json`` in its run folder, beside the usual dense
heads. :func:`load_scratch_network` reads them into a :class:`ScratchTrunk`, which
``export.export`` takes where it takes a converted network: the trunk is converted by
tf2onnx at the contract's opset (:meth:`ScratchTrunk.emit`) and grafted onto the
graph's ``images`` input, and the heads, precisions, metadata and checks are the
export's own. So a from-scratch classifier is one graph with the contract's input,
outputs and metadata (``source_format`` ``scratch``), whatever precision.

Every conversion is checked against Keras on seeded probe images: the converted trunk
must give Keras' descriptors within :data:`AGREEMENT` of their largest magnitude, or
export stops. The float16 twin is the same Keras network with every layer computing in
float16 (Keras' own float16 arithmetic, weights rounded to float16), converted alike;
its agreement with float32 is measured by export's fp16 check, as for any network.
This module imports TensorFlow and tf2onnx (the ``[train]`` extra).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gender_cli import contract
from gender_cli.errors import ModelFileError, first_line
from gender_cli.export.graph_builder import UINT8, GraphBuilder, graft
from gender_cli.export.keras_convert import convert_checked, load_keras_model

TRUNK_FILE = "trunk.keras"
SCRATCH_FILE = "scratch.json"
DESCRIPTOR = contract.SCRATCH_DESCRIPTOR
SOURCE_FORMAT = "scratch"
PREFIX = "scratch_"  # the converted trunk's node and tensor names
# max |onnx - keras| over the probe descriptors, relative to their largest magnitude: float32
# to the contract's 1e-5; the float16 twin only to its own rounding (onnxruntime's CPU runs
# float16 graphs through float32 casts, TensorFlow in float16), measured against float32 by
# export's fp16 check like any network's
AGREEMENT = {"float32": 1e-5, "float16": 1e-2}
PROBE_IMAGES = 16
PROBE_SEED = 0


@dataclass(frozen=True)
class LayerName:
    name: str


@dataclass
class ScratchTrunk:
    """What export needs of a network, for a trained from-scratch trunk."""

    run_dir: Path
    input_size: tuple[int, int, int]  # (H, W, 3)
    descriptor_dim: int
    source_sha256: str  # sha256 of trunk.keras; the heads' backbone_sha256
    config: dict  # the run's scratch settings (scratch.json)
    standin: bool = False
    source_format: str = SOURCE_FORMAT
    mean: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))  # nothing is subtracted
    agreement: dict = field(default_factory=dict)  # per dtype: max relative |onnx - keras| on the probes
    _converted_models: dict = field(default_factory=dict, repr=False)

    @property
    def source_path(self) -> str:
        return str(self.run_dir / TRUNK_FILE)

    @property
    def layers(self) -> tuple[LayerName, ...]:
        """The layers a descriptor can be taken from (``contract.default_descriptor``)."""
        return (LayerName(contract.descriptor_spec(DESCRIPTOR).layer),)

    @property
    def preprocessing(self) -> dict:
        return {"library": "gender-cli train --from-scratch", "channel_order": contract.CHANNEL_ORDER,
                "mean": [0.0, 0.0, 0.0], "scale": 1 / 255,
                "folded": "none: the graph scales the uint8 pixels by 1/255 itself",
                "where": "train/scratch_model.py build_trunk"}

    def emit(self, g: GraphBuilder, dtype: np.dtype) -> tuple[str, int]:
        """Add the ``images`` input and the converted trunk computing in ``dtype``;
        returns (the descriptor tensor, in ``dtype``; its width)."""
        h, w, _ = self.input_size
        images = g.add_input(contract.INPUT_NAME, UINT8, ["N", h, w, 3])
        return graft(g, self._converted(np.dtype(dtype)), PREFIX, images), self.descriptor_dim

    def _converted(self, dtype: np.dtype):
        """The trunk in ``dtype`` through tf2onnx, checked against Keras (once per dtype)."""
        if dtype.name not in self._converted_models:
            self._converted_models[dtype.name] = self._convert(dtype)
        return self._converted_models[dtype.name]

    def _convert(self, dtype: np.dtype):
        probe = np.random.default_rng(PROBE_SEED).integers(0, 256, (PROBE_IMAGES, *self.input_size), np.uint8)
        onnx_model, difference = convert_checked(self._keras(dtype), probe, contract.INPUT_NAME,
                                                 f"the trunk in {self.run_dir}", AGREEMENT[dtype.name],
                                                 relative=True)
        self.agreement[dtype.name] = difference
        return onnx_model

    def _keras(self, dtype: np.dtype):
        from gender_cli.tf_quiet import import_keras, native_stderr_silenced

        trunk = load_keras_model(self.run_dir / TRUNK_FILE)
        if dtype == np.float32:
            return trunk
        keras = import_keras()
        with native_stderr_silenced():  # oneDNN says where it has no float16 kernels
            twin = keras.models.clone_model(trunk, clone_function=lambda layer: _in_dtype(layer, dtype.name))
            twin.set_weights([w.astype(dtype) if w.dtype.kind == "f" else w
                              for w in (np.asarray(v) for v in trunk.get_weights())])
        return twin


def _in_dtype(layer, dtype: str):
    config = layer.get_config()
    config["dtype"] = dtype
    return layer.__class__.from_config(config)


def is_scratch_run(path) -> bool:
    """Whether ``path`` is the run folder of ``train --from-scratch``."""
    return path is not None and Path(path).is_dir() and (Path(path) / SCRATCH_FILE).is_file()


def load_scratch_network(run_dir) -> ScratchTrunk:
    """The trunk of a ``train --from-scratch`` run folder."""
    run_dir = Path(run_dir)
    try:
        record = json.loads((run_dir / SCRATCH_FILE).read_text())
        size = tuple(int(v) for v in record["input_size"])
        dim = int(record["descriptor_dim"])
        sha256 = str(record["trunk_sha256"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelFileError(f"cannot read {run_dir / SCRATCH_FILE}: {first_line(exc)}") from None
    if not (run_dir / TRUNK_FILE).is_file():
        raise ModelFileError(f"{run_dir} has {SCRATCH_FILE} but no {TRUNK_FILE}: the trunk is missing")
    return ScratchTrunk(run_dir, size, dim, sha256, record.get("config", {}))
