"""The trained gender head as plain data: what ``train`` saves and ``export`` reads.

A head is a stack of dense layers with ReLU between them and a 2-way softmax at the
end (dropout is inference-free). It is stored as ``head.json`` (this spec) plus
``head_weights.npz`` (``dense_<i>_kernel`` [in, out] and ``dense_<i>_bias`` [out]),
so export needs neither TensorFlow nor Keras.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from gender_cli.atomic import names_file
from gender_cli.errors import ModelFileError

SPEC_FILE = "head.json"
WEIGHTS_FILE = "head_weights.npz"


@dataclass
class HeadSpec:
    descriptor: str  # contract.DESCRIPTORS key
    input_dim: int
    hidden: list[int]
    dropout: float
    labels: list[str]  # output order
    threshold: float  # on probabilities[:, 1]
    backbone_sha256: str = ""  # source weights the descriptors came from
    standin: bool = False
    metrics: dict = field(default_factory=dict)  # test-split metrics, when known
    source: str = ""  # where a head not trained here came from (convert of a ready classifier)

    def save(self, run_dir: Path, kernels: list[np.ndarray], biases: list[np.ndarray]) -> None:
        run_dir = Path(run_dir)
        arrays = {}
        for i, (k, b) in enumerate(zip(kernels, biases)):
            arrays[f"dense_{i}_kernel"] = np.asarray(k, dtype=np.float32)
            arrays[f"dense_{i}_bias"] = np.asarray(b, dtype=np.float32)
        with names_file(run_dir / WEIGHTS_FILE):
            np.savez(run_dir / WEIGHTS_FILE, **arrays)
        with names_file(run_dir / SPEC_FILE):
            (run_dir / SPEC_FILE).write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, run_dir: Path) -> tuple["HeadSpec", list[np.ndarray], list[np.ndarray]]:
        """Return (spec, kernels, biases); ``run_dir`` may also be the head.json path."""
        run_dir = Path(run_dir)
        if run_dir.is_file():
            run_dir = run_dir.parent
        if not (run_dir / SPEC_FILE).is_file():
            raise ModelFileError(
                f"no trained head in {run_dir} (no {SPEC_FILE}); give a 'gender-cli train' run folder"
            )
        try:
            spec = cls(**json.loads((run_dir / SPEC_FILE).read_text()))
            with np.load(run_dir / WEIGHTS_FILE) as npz:
                n = len(spec.hidden) + 1
                kernels = [npz[f"dense_{i}_kernel"] for i in range(n)]
                biases = [npz[f"dense_{i}_bias"] for i in range(n)]
        except (OSError, KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"cannot read trained head in {run_dir}: {exc}") from exc
        if kernels[0].shape[0] != spec.input_dim:
            raise ModelFileError(
                f"head in {run_dir} is inconsistent: first kernel takes "
                f"{kernels[0].shape[0]} inputs, head.json says {spec.input_dim}"
            )
        return spec, kernels, biases
