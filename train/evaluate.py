"""Evaluate any exported classifier (fp32, fp16, int8) on a labelled data set.

The classifier runs through onnxruntime (no TensorFlow) and uses its own decision
threshold from the model metadata, so variants and data sets can be compared on equal
terms. Writes the same metrics, predictions and figures as a training run: the gender
head's, and the age head's when the graph has one and the data has ages (images
without a usable age are counted by reason and left out of the age metrics). Which
images it scores: ``scoring.select``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gender_cli import workspace
from gender_cli.contract import AGE, AGE_HEAD, GENDER_HEAD, PROBABILITIES, STANDIN_WARNING
from gender_cli.infer.detect import FaceSettings, trained_on_faces_notice
from gender_cli.train.datasets import age_summary
from gender_cli.atomic import write_json_atomically
from gender_cli.train.report import (
    METRICS_FILE, PREDICTIONS_FILE, REPORT_FILE, Predictions, age_metrics_table, metrics_table,
    write_age_evaluation, write_evaluation, write_report,
)
from gender_cli.train.scoring import score
from gender_cli.train.tasks import describe_missing_ages


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


def evaluate(data: Path, model_path: Path | None = None, out_dir: Path | None = None, **scoring) -> EvaluateResult:
    """Metrics and figures of the classifier ``model_path`` on ``data`` into ``out_dir``;
    ``scoring``: which images and how to run the graph (``scoring.score``'s options:
    layout, split, splits_file, batch_size, workers, device, progress, faces)."""
    scored = score(data, model_path, **scoring)
    dataset, model_path, loaded, info, settings = (scored.dataset, scored.model_path, scored.loaded, scored.info,
                                                   scored.settings)
    gender, age = GENDER_HEAD in info.heads, AGE_HEAD in info.heads
    threshold = float(info.threshold)
    standin = bool(info.standin)
    samples, ok, unreadable, found, selection = (scored.samples, scored.ok, scored.unreadable, scored.outputs,
                                                 scored.selection)
    paths = [s.path for s in samples]
    labels = np.array([s.label for s in samples], int)
    true_ages = np.array([s.age if s.has_age else np.nan for s in samples], float)
    split_names = scored.split_names
    seconds = scored.seconds

    out_dir = Path(out_dir) if out_dir else workspace.new_output_dir("evaluations", model_path.stem)
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
