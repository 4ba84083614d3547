"""The trained heads as plain data: what ``train`` saves and ``export`` reads.

A head is a stack of dense layers with ReLU between them and a softmax at the end
(dropout is inference-free), stored as a spec (JSON) plus its weights (``.npz`` with
``dense_<i>_kernel`` [in, out] and ``dense_<i>_bias`` [out]), so export needs neither
TensorFlow nor Keras. A run folder holds one pair per head it trained:

* the gender head (:class:`HeadSpec`): ``head.json`` + ``head_weights.npz``, a 2-way
  softmax over ``labels`` (unchanged since before the age head existed);
* the age head (:class:`AgeHeadSpec`): ``age_head.json`` + ``age_head_weights.npz``,
  a softmax over the whole years ``ages[0]..ages[1]`` whose expected value is the
  estimate (DEX: Rothe, Timofte and Van Gool, ICCV 2015 workshops).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from gender_cli.atomic import names_file
from gender_cli.contract import AGE_HEAD, AGE_RANGE, GENDER_HEAD
from gender_cli.errors import ModelFileError

SPEC_FILE = "head.json"
WEIGHTS_FILE = "head_weights.npz"
AGE_SPEC_FILE = "age_head.json"
AGE_WEIGHTS_FILE = "age_head_weights.npz"


class DenseHeadFiles:
    """Saving and loading a dense stack under the spec's own file names."""

    SPEC_FILE: ClassVar[str]
    WEIGHTS_FILE: ClassVar[str]
    NAME: ClassVar[str]  # in messages: "the <NAME> in <folder>"
    hidden: list[int]
    input_dim: int

    def save(self, run_dir: Path, kernels: list[np.ndarray], biases: list[np.ndarray]) -> None:
        run_dir = Path(run_dir)
        arrays = {}
        for i, (k, b) in enumerate(zip(kernels, biases)):
            arrays[f"dense_{i}_kernel"] = np.asarray(k, dtype=np.float32)
            arrays[f"dense_{i}_bias"] = np.asarray(b, dtype=np.float32)
        with names_file(run_dir / self.WEIGHTS_FILE):
            np.savez(run_dir / self.WEIGHTS_FILE, **arrays)
        with names_file(run_dir / self.SPEC_FILE):
            (run_dir / self.SPEC_FILE).write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def present(cls, run_dir: Path) -> bool:
        return (Path(run_dir) / cls.SPEC_FILE).is_file()

    @classmethod
    def load(cls, run_dir: Path):
        """Return (spec, kernels, biases); ``run_dir`` may also be the spec file's path."""
        run_dir = Path(run_dir)
        if run_dir.is_file():
            run_dir = run_dir.parent
        if not cls.present(run_dir):
            raise ModelFileError(
                f"no trained head in {run_dir} (no {cls.SPEC_FILE}); give a 'gender-cli train' run folder"
            )
        try:
            spec = cls(**json.loads((run_dir / cls.SPEC_FILE).read_text()))
            with np.load(run_dir / cls.WEIGHTS_FILE) as npz:
                n = len(spec.hidden) + 1
                kernels = [npz[f"dense_{i}_kernel"] for i in range(n)]
                biases = [npz[f"dense_{i}_bias"] for i in range(n)]
        except (OSError, KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"cannot read trained head in {run_dir}: {exc}") from exc
        if kernels[0].shape[0] != spec.input_dim:
            raise ModelFileError(
                f"head in {run_dir} is inconsistent: first kernel takes "
                f"{kernels[0].shape[0]} inputs, {cls.SPEC_FILE} says {spec.input_dim}"
            )
        return spec, kernels, biases


@dataclass
class HeadSpec(DenseHeadFiles):
    SPEC_FILE: ClassVar[str] = SPEC_FILE
    WEIGHTS_FILE: ClassVar[str] = WEIGHTS_FILE
    NAME: ClassVar[str] = "head"

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
    faces: dict | None = None  # trained on detected faces: the metadata of their settings
    # how train calibrated the head and folded its operating point in (train.calibration);
    # None for heads from before calibration, whose threshold is the Youden one
    calibration: dict | None = None


@dataclass
class AgeHeadSpec(DenseHeadFiles):
    SPEC_FILE: ClassVar[str] = AGE_SPEC_FILE
    WEIGHTS_FILE: ClassVar[str] = AGE_WEIGHTS_FILE
    NAME: ClassVar[str] = "age head"

    descriptor: str
    input_dim: int
    hidden: list[int]
    dropout: float
    ages: list[int] = field(default_factory=lambda: list(AGE_RANGE))  # first and last softmax class
    loss: str = "dex"  # how it was trained (train.age_head.AGE_LOSSES)
    backbone_sha256: str = ""
    standin: bool = False
    metrics: dict = field(default_factory=dict)
    faces: dict | None = None  # as HeadSpec.faces (both heads see the same crops)

    def age_values(self) -> np.ndarray:
        """The age (years) of each softmax class: the weights of the expected value."""
        return class_ages(self.ages)


def class_ages(ages: tuple[int, int] = AGE_RANGE) -> np.ndarray:
    """The age (years) of each class of an age softmax over ``ages`` (first, last)."""
    return np.arange(ages[0], ages[1] + 1, dtype=np.float32)


# task name -> spec class, in the graph's output order
HEAD_SPECS = {GENDER_HEAD: HeadSpec, AGE_HEAD: AgeHeadSpec}


def heads_in(run_dir: Path) -> list[str]:
    """The heads a run folder holds (``HEAD_SPECS`` order); empty when none."""
    run_dir = Path(run_dir)
    return [name for name, spec in HEAD_SPECS.items() if run_dir.is_dir() and spec.present(run_dir)]


def first_spec(run_dir: Path):
    """The spec of the first head a run folder holds (the facts its heads share:
    descriptor, input size, backbone); ModelFileError naming the gender files when none."""
    tasks = heads_in(run_dir) or [GENDER_HEAD]
    spec, _, _ = HEAD_SPECS[tasks[0]].load(run_dir)
    return spec
