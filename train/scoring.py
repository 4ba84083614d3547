"""Run an exported classifier over a labelled data set: what ``evaluate`` and ``audit`` share.

Which images: with ``splits_file`` (a run's ``splits.csv``) the test split of that
run (``split="all"``: every listed image); else the data's own split column
(manifest) when it has one; else every image. The graph runs through onnxruntime (no
TensorFlow); images that cannot be decoded are listed with their category, not scored.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gender_cli import workspace
from gender_cli.contract import GENDER_HEAD, HEADS, LABELS, PROBABILITIES
from gender_cli.devices import DEFAULT_DEVICE
from gender_cli.errors import GenderCliError, ModelFileError
from gender_cli.infer.detect import FaceSettings, check_settings, settings_for_model
from gender_cli.train.batch_runner import run_over_paths
from gender_cli.train.datasets import Dataset, Sample, load_dataset
from gender_cli.train.splits import read_splits

EVAL_SPLITS = ("test", "all")


@dataclass
class Scored:
    """The selected images of a data set and the graph's outputs for those it decoded."""

    dataset: Dataset
    model_path: Path
    loaded: object  # infer.session.LoadedModel
    settings: FaceSettings | None  # face detection, when each image stands for its largest face
    samples: list[Sample]  # the selected images
    split_names: list[str]
    selection: str  # which images, in words
    outputs: dict[str, np.ndarray]  # graph output -> one row per selected image (zeros where not ok)
    ok: np.ndarray  # decoded and scored
    unreadable: list[dict]  # path, category, message
    seconds: float

    @property
    def info(self):
        return self.loaded.info

    @property
    def kept(self) -> np.ndarray:
        """Positions of the scored images among ``samples``."""
        return np.flatnonzero(self.ok)


def select(dataset: Dataset, split: str | None, splits_file: Path | None) -> tuple[list[int], list[str], str]:
    """Indices of the samples to score, their split names and a description."""
    if split is not None and split not in EVAL_SPLITS:
        raise GenderCliError(f"split must be one of {', '.join(EVAL_SPLITS)}, got {split!r}")
    if splits_file is not None:
        recorded = read_splits(splits_file)
        pairs = [(i, recorded.get(str(s.path.resolve()))) for i, s in enumerate(dataset.samples)]
        pairs = [(i, s) for i, s in pairs if s is not None]
        if split != "all":
            pairs = [(i, s) for i, s in pairs if s == "test"]
        if not pairs:
            raise GenderCliError(f"no image of {dataset.root} is in the {split or 'test'} split of {splits_file}")
        return [i for i, _ in pairs], [s for _, s in pairs], f"{split or 'test'} split of {splits_file}"
    has_split = any(s.split for s in dataset.samples)
    if split == "test" or (split is None and has_split):
        if not has_split:
            raise GenderCliError(
                "the data has no split information: pass --splits RUN_DIR/splits.csv or --split all"
            )
        idx = [i for i, s in enumerate(dataset.samples) if s.split == "test"]
        if not idx:
            raise GenderCliError(f"the data's split column has no test rows ({dataset.root})")
        return idx, ["test"] * len(idx), "test rows of the manifest"
    return list(range(len(dataset.samples))), ["all"] * len(dataset.samples), "all images"


def score(
    data: Path,
    model_path: Path | None = None,
    layout: str = "auto",
    split: str | None = None,
    splits_file: Path | None = None,
    batch_size: int = 32,
    workers: int | None = None,
    device: str = DEFAULT_DEVICE,
    progress: bool = True,
    faces: dict | None = None,
    verb: str = "evaluate",
    check: Callable[[list[Sample]], None] | None = None,
) -> Scored:
    """Every head of the classifier on the selected images of ``data``. ``faces``: None
    to use the images as they are; else detection settings given (None values are
    filled from the model's metadata, then the defaults), and each image stands for
    its largest face. ``verb`` names the progress bar; ``check`` sees the selected
    images before the model runs (to refuse them early)."""
    from gender_cli.infer.session import open_session

    model_path = Path(model_path) if model_path else workspace.default_classifier()
    dataset = load_dataset(data, layout)
    indices, split_names, selection = select(dataset, split, splits_file)
    if check is not None:
        check([dataset.samples[i] for i in indices])
    loaded = open_session(model_path, device=device)
    info = loaded.info
    if getattr(info, "kind", "classifier") not in ("classifier", None, ""):
        raise ModelFileError(f"{model_path} is a {info.kind} graph, not a classifier (no '{PROBABILITIES}' output)")
    model_labels = tuple(info.labels) if info.labels else LABELS
    if GENDER_HEAD in info.heads and tuple(model_labels) != LABELS:
        raise ModelFileError(f"{model_path} has labels {list(model_labels)}; expected {list(LABELS)}")
    settings = settings_for_model(faces, info.raw)
    if settings is not None:
        check_settings(settings)

    samples = [dataset.samples[i] for i in indices]
    paths = [s.path for s in samples]
    found = {HEADS[name].output: np.zeros((len(paths), *HEADS[name].shape[1:]), np.float32) for name in info.heads}
    ok = np.zeros(len(paths), bool)
    unreadable = []
    started = time.perf_counter()
    for result in run_over_paths(loaded, paths, info.head_outputs, batch_size, workers, progress,
                                 desc=f"{verb} {model_path.name}", faces=settings):
        if result.indices:
            for name, values in result.values.items():
                found[name][result.indices] = values
            ok[result.indices] = True
        for i, (category, message) in result.failures.items():
            unreadable.append({"path": str(paths[i]), "category": category, "message": message})
    seconds = time.perf_counter() - started
    if not ok.any():
        raise GenderCliError(f"none of the {len(paths)} selected images could be decoded")
    return Scored(dataset, model_path, loaded, settings, samples, split_names, selection, found, ok,
                  unreadable, seconds)
