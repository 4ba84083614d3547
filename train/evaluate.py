"""Evaluate any exported classifier (fp32, fp16, int8) on a labelled data set.

The classifier runs through onnxruntime (no TensorFlow) and uses its own decision
threshold from the model metadata, so variants and data sets can be compared on equal
terms. Writes the same metrics, predictions and figures as a training run: the gender
head's, and the age head's when the graph has one and the data has ages (images
without a usable age are counted by reason and left out of the age metrics).

Which images: with ``splits_file`` (a run's ``splits.csv``) the test split of that
run (``split="all"``: every listed image); else the data's own split column
(manifest) when it has one; else every image.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gender_cli import workspace
from gender_cli.contract import AGE, AGE_HEAD, GENDER_HEAD, HEADS, LABELS, PROBABILITIES, STANDIN_WARNING
from gender_cli.devices import DEFAULT_DEVICE
from gender_cli.errors import GenderCliError, ModelFileError
from gender_cli.infer.detect import FaceSettings, check_settings, settings_for_model, trained_on_faces_notice
from gender_cli.train.batch_runner import run_over_paths
from gender_cli.train.datasets import age_summary, load_dataset
from gender_cli.atomic import write_json_atomically
from gender_cli.train.report import (
    METRICS_FILE, PREDICTIONS_FILE, REPORT_FILE, Predictions, age_metrics_table, metrics_table,
    write_age_evaluation, write_evaluation, write_report,
)
from gender_cli.train.splits import read_splits
from gender_cli.train.tasks import describe_missing_ages

EVAL_SPLITS = ("test", "all")


@dataclass
class EvaluateResult:
    out_dir: Path
    model_path: Path
    metrics: dict | None  # gender head; None when the graph has none
    files: dict[str, Path]
    unreadable: list[dict]
    standin: bool
    precision: str
    images_per_second: float | None
    providers: list[str]
    notice: str | None
    age: dict | None = None  # age head: metrics (None when the data has no usable age), images without one
    faces: FaceSettings | None = None  # how faces were found and cropped, with --detect
    raw_meta: dict = field(default_factory=dict)  # the model's metadata

    @property
    def notices(self) -> list[str]:
        """One-line notes for the user: the provider fallback, a face model run on crops."""
        trained = None if self.faces is not None else trained_on_faces_notice(self.raw_meta)
        return [message for message in (self.notice, trained) if message]


def default_out_dir(model_path: Path) -> Path:
    """``$GENDER_CLI_HOME/evaluations/<model stem>-NNN`` (the next free number)."""
    base = workspace.home() / "evaluations"
    base.mkdir(parents=True, exist_ok=True)
    n = 1
    while (base / f"{model_path.stem}-{n:03d}").exists():
        n += 1
    path = base / f"{model_path.stem}-{n:03d}"
    path.mkdir()
    return path


def _select(dataset, split: str | None, splits_file: Path | None) -> tuple[list[int], list[str], str]:
    """Indices of the samples to evaluate, their split names and a description."""
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


def evaluate(
    data: Path,
    model_path: Path | None = None,
    out_dir: Path | None = None,
    layout: str = "auto",
    split: str | None = None,
    splits_file: Path | None = None,
    batch_size: int = 32,
    workers: int | None = None,
    device: str = DEFAULT_DEVICE,
    progress: bool = True,
    faces: dict | None = None,
) -> EvaluateResult:
    """``faces``: None to use the images as they are; else detection settings given
    (None values are filled from the model's metadata, then the defaults), and each
    image stands for its largest face."""
    from gender_cli.infer.session import open_session

    model_path = Path(model_path) if model_path else workspace.default_classifier()
    dataset = load_dataset(data, layout)
    indices, split_names, selection = _select(dataset, split, splits_file)
    loaded = open_session(model_path, device=device)
    info = loaded.info
    if getattr(info, "kind", "classifier") not in ("classifier", None, ""):
        raise ModelFileError(f"{model_path} is a {info.kind} graph, not a classifier (no '{PROBABILITIES}' output)")
    gender, age = GENDER_HEAD in info.heads, AGE_HEAD in info.heads
    model_labels = tuple(info.labels) if info.labels else LABELS
    if gender and tuple(model_labels) != LABELS:
        raise ModelFileError(f"{model_path} has labels {list(model_labels)}; expected {list(LABELS)}")
    threshold = float(info.threshold)
    standin = bool(info.standin)
    settings = settings_for_model(faces, info.raw)
    if settings is not None:
        check_settings(settings)

    samples = [dataset.samples[i] for i in indices]
    paths = [s.path for s in samples]
    labels = np.array([s.label for s in samples], int)
    true_ages = np.array([s.age if s.has_age else np.nan for s in samples], float)
    found = {HEADS[name].output: np.zeros((len(paths), *HEADS[name].shape[1:]), np.float32) for name in info.heads}
    ok = np.zeros(len(paths), bool)
    unreadable = []
    started = time.perf_counter()
    for result in run_over_paths(loaded, paths, info.head_outputs, batch_size, workers, progress,
                                 desc=f"evaluate {model_path.name}", faces=settings):
        if result.indices:
            for name, values in result.values.items():
                found[name][result.indices] = values
            ok[result.indices] = True
        for i, (category, message) in result.failures.items():
            unreadable.append({"path": str(paths[i]), "category": category, "message": message})
    seconds = time.perf_counter() - started
    if not ok.any():
        raise GenderCliError(f"none of the {len(paths)} selected images could be decoded")

    out_dir = Path(out_dir) if out_dir else default_out_dir(model_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    keep = np.flatnonzero(ok)
    preds = Predictions([paths[i] for i in keep], labels[keep],
                        found[PROBABILITIES][keep] if gender else None, [split_names[i] for i in keep],
                        true_ages[keep], found[AGE][keep] if age else None)
    shown_as = "test" if set(preds.splits) == {"test"} else "all"
    files = {"predictions": preds.write_csv(out_dir / PREDICTIONS_FILE, threshold if gender else None)}
    metrics = {
        "model": str(model_path),
        "precision": info.precision,
        "heads": list(info.heads),
        "standin": standin,
        **({"warning": STANDIN_WARNING} if standin else {}),
        "data": dataset.summary(),
        "selection": selection,
    }
    sections = []
    gender_metrics = age_result = None
    if gender:
        evaluation = write_evaluation(out_dir, preds, threshold, "all", standin, title_split=shown_as)
        files.update(evaluation["files"])
        gender_metrics = evaluation["metrics"]
        metrics["threshold"] = {"value": threshold, "source": "model metadata"}
        metrics["test"] = gender_metrics
        sections.append(("Metrics", metrics_table(gender_metrics)))
    if age:
        ages = age_summary([samples[i] for i in keep])
        age_result = {"metrics": None, "images_with_age": ages["with_age"], "without_age": ages["without_age"]}
        lines = [f"- images with a usable age: {ages['with_age']} of {len(keep)}"
                 + (f"; left out: {describe_missing_ages(ages)}" if ages["without_age"] else "")]
        if ages["with_age"]:
            evaluation = write_age_evaluation(out_dir, preds, "all", standin, title_split=shown_as)
            files.update(evaluation["files"])
            age_result["metrics"] = evaluation["metrics"]
            lines += ["", *age_metrics_table({shown_as: evaluation["metrics"]})]
        metrics["age"] = {shown_as: age_result["metrics"], "images_with_age": ages["with_age"],
                          "without_age": ages["without_age"]}
        sections.append(("Age metrics", lines))
    metrics.update({
        "unreadable": unreadable,
        "images_per_second": round(int(ok.sum()) / seconds, 1) if seconds > 0 else None,
        "providers": list(loaded.providers),
        "faces": settings.describe() if settings is not None else None,
    })
    files["metrics"] = write_json_atomically(out_dir / METRICS_FILE, metrics)
    threshold_note = f", threshold {threshold:.4f} from metadata" if gender else ""
    files["report"] = write_report(
        out_dir / REPORT_FILE, f"Evaluation of {model_path.name}",
        [("Model and data", [
            f"- model: `{model_path}` (precision {info.precision}, heads {', '.join(info.heads)}{threshold_note})",
            f"- data: `{dataset.root}` (layout {dataset.layout}); evaluated: {selection}",
            f"- images evaluated: {int(ok.sum())}; unreadable: {len(unreadable)}; "
            f"skipped while reading: {len(dataset.skipped)}",
            *([f"- faces: the largest face of each image, {settings.summary()}; images without a face "
               "count as unreadable (category no_face)"] if settings is not None else []),
        ]), *sections,
         ("Files", [f"- {name}: `{Path(p).name}`" for name, p in files.items()])],
        standin,
    )
    return EvaluateResult(out_dir, model_path, gender_metrics, files, unreadable, standin,
                          str(info.precision), metrics["images_per_second"], list(loaded.providers),
                          loaded.notice, age_result, settings, dict(info.raw))
