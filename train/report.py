"""Turn predictions into the files of a run or an evaluation.

``Predictions.write_csv`` writes ``predictions.csv`` (gender columns when there are
gender predictions, age columns when there are age estimates); ``write_evaluation``
computes the gender metrics on one split and draws their figures;
``write_age_evaluation`` does the same for the age head; ``write_report`` renders
``report.md`` from plain data. Shared by ``train`` and ``evaluate`` so both produce
the same metrics and plots.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gender_cli.atomic import names_file
from gender_cli.contract import LABELS, STANDIN_WARNING
from gender_cli.train import plots
from gender_cli.train.age_metrics import AGE_BANDS, CS_YEARS, age_metrics
from gender_cli.train.metrics import classification_metrics, roc_curve

PREDICTIONS_FILE = "predictions.csv"
METRICS_FILE = "metrics.json"
REPORT_FILE = "report.md"
GRID_IMAGES = 24
PLOT_FILES = {
    "history": "training_curves.png",
    "roc": "roc.png",
    "confusion": "confusion_matrix.png",
    "grid": "predictions_grid.png",
    "wrong": "wrong_predictions_grid.png",
}
AGE_PLOT_FILES = {
    "age_history": "age_training_curves.png",
    "age_scatter": "age_scatter.png",
    "age_errors": "age_error_histogram.png",
    "age_bands": "age_mae_by_band.png",
}
AGE_DIGITS = 2  # years in predictions.csv


@dataclass
class Predictions:
    paths: list[Path]
    labels: np.ndarray  # true label index
    probabilities: np.ndarray | None  # (N, 2); None without a gender head
    splits: list[str]
    true_ages: np.ndarray | None = None  # (N,) years, NaN where the image has no usable age
    predicted_ages: np.ndarray | None = None  # (N,) years; None without an age head

    def write_csv(self, path: Path, threshold: float | None) -> Path:
        """``path``, the gender columns ``true,predicted,p_male,p_female`` and the age
        columns ``true_age,predicted_age`` (true_age empty when unknown), ``split``."""
        header = ["path"]
        if self.probabilities is not None:
            header += ["true", "predicted", *(f"p_{label}" for label in LABELS)]
        if self.predicted_ages is not None:
            header += ["true_age", "predicted_age"]
        with names_file(path), Path(path).open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow([*header, "split"])
            for i, p in enumerate(self.paths):
                row = [str(p)]
                if self.probabilities is not None:
                    prob = self.probabilities[i]
                    row += [LABELS[self.labels[i]], LABELS[int(prob[1] >= threshold)], *(f"{v:.6f}" for v in prob)]
                if self.predicted_ages is not None:
                    true_age = self.true_ages[i] if self.true_ages is not None else np.nan
                    row += ["" if np.isnan(true_age) else f"{true_age:g}", f"{self.predicted_ages[i]:.{AGE_DIGITS}f}"]
                writer.writerow([*row, self.splits[i]])
        return Path(path)

    def aged(self, split: str | None) -> np.ndarray:
        """Rows of ``split`` whose true age is known (and that have an estimate)."""
        if self.predicted_ages is None or self.true_ages is None:
            return np.zeros(len(self.paths), bool)
        return self.select(split) & ~np.isnan(self.true_ages)

    def select(self, split: str | None) -> np.ndarray:
        if split is None or split == "all":
            return np.ones(len(self.paths), bool)
        return np.array([s == split for s in self.splits], bool)


def _grid_items(preds: Predictions, rows: np.ndarray, threshold: float) -> list[dict]:
    return [
        {
            "path": preds.paths[i],
            "true": LABELS[preds.labels[i]],
            "predicted": LABELS[int(preds.probabilities[i, 1] >= threshold)],
            "p_female": float(preds.probabilities[i, 1]),
        }
        for i in rows
    ]


def write_evaluation(
    out_dir: Path,
    preds: Predictions,
    threshold: float,
    split: str = "test",
    standin: bool = False,
    history: dict | None = None,
    best_epoch: int | None = None,
    title_split: str | None = None,
) -> dict:
    """Metrics on ``split`` plus ``predictions.csv`` and the PNG figures; returns
    ``{"metrics": ..., "files": {name: path}}``."""
    out_dir = Path(out_dir)
    shown_as = title_split or split
    files: dict[str, Path] = {}
    rows = np.flatnonzero(preds.select(split))
    y_true = preds.labels[rows]
    p_female = preds.probabilities[rows, 1]
    metrics = classification_metrics(y_true, p_female, threshold)

    if history:
        files["history"] = plots.plot_history(history, out_dir / PLOT_FILES["history"], best_epoch, standin)
    fpr, tpr, _ = roc_curve(y_true, p_female)
    point = _operating_point(y_true, p_female, threshold)
    files["roc"] = plots.plot_roc(fpr, tpr, metrics["roc_auc"], out_dir / PLOT_FILES["roc"], point, standin, shown_as)
    files["confusion"] = plots.plot_confusion(
        np.array(metrics["confusion_matrix"]["rows_true_cols_predicted"]), out_dir / PLOT_FILES["confusion"],
        standin=standin, split=shown_as,
    )
    shown = _spread_by_class(rows, preds.labels, GRID_IMAGES)
    files["grid"] = plots.plot_grid(
        _grid_items(preds, shown, threshold), out_dir / PLOT_FILES["grid"],
        f"Predictions ({shown_as} images, threshold {threshold:.3f})", standin,
    )
    predicted = (p_female >= threshold).astype(int)
    wrong = rows[predicted != y_true]
    confidence = np.abs(preds.probabilities[wrong, 1] - threshold)
    wrong = wrong[np.argsort(-confidence, kind="mergesort")][:GRID_IMAGES]
    files["wrong"] = plots.plot_grid(
        _grid_items(preds, wrong, threshold), out_dir / PLOT_FILES["wrong"],
        f"Wrong predictions ({shown_as} images, most confident first; "
        f"{int((predicted != y_true).sum())} in all)", standin,
    )
    return {"metrics": metrics, "files": files}


def write_age_evaluation(
    out_dir: Path,
    preds: Predictions,
    split: str = "test",
    standin: bool = False,
    history: dict | None = None,
    best_epoch: int | None = None,
    title_split: str | None = None,
) -> dict:
    """Age metrics on the images of ``split`` with a known age, and the age figures;
    returns ``{"metrics": ..., "files": {name: path}}``."""
    out_dir = Path(out_dir)
    shown_as = title_split or split
    rows = preds.aged(split)
    true_age, predicted = preds.true_ages[rows], preds.predicted_ages[rows]
    metrics = age_metrics(true_age, predicted)
    files: dict[str, Path] = {}
    if history:
        files["age_history"] = plots.plot_history(
            history, out_dir / AGE_PLOT_FILES["age_history"], best_epoch, standin,
            metrics=("loss", "mae_years"), title="Age head training curves")
    files["age_scatter"] = plots.plot_age_scatter(true_age, predicted, out_dir / AGE_PLOT_FILES["age_scatter"],
                                                  standin, shown_as)
    files["age_errors"] = plots.plot_age_errors(predicted - true_age, out_dir / AGE_PLOT_FILES["age_errors"],
                                                CS_YEARS, standin, shown_as)
    files["age_bands"] = plots.plot_age_bands(metrics["mae_by_band"], out_dir / AGE_PLOT_FILES["age_bands"],
                                              standin, shown_as)
    return {"metrics": metrics, "files": files}


def age_metrics_by_split(preds: Predictions, splits=("test", "val", "train")) -> dict:
    return {name: age_metrics(preds.true_ages[preds.aged(name)], preds.predicted_ages[preds.aged(name)])
            for name in splits if preds.aged(name).any()}


def _spread_by_class(rows: np.ndarray, labels: np.ndarray, limit: int) -> np.ndarray:
    """Up to ``limit`` rows, evenly spaced within each class, classes in equal shares."""
    chosen = []
    classes = sorted(set(labels[rows].tolist()))
    for label in classes:
        members = rows[labels[rows] == label]
        share = limit // max(1, len(classes))
        step = max(1, len(members) // max(1, share))
        chosen.extend(members[::step][:share].tolist())
    return np.array(chosen, int)


def _operating_point(y_true: np.ndarray, p_female: np.ndarray, threshold: float):
    pos, neg = y_true == 1, y_true == 0
    if not pos.any() or not neg.any():
        return None
    called = p_female >= threshold
    return float((called & neg).sum() / neg.sum()), float((called & pos).sum() / pos.sum())


def _fmt(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def metrics_table(metrics: dict) -> list[str]:
    lines = [
        f"- images: {metrics['n']}",
        f"- threshold on p_female: {metrics['threshold']:.4f}",
        f"- accuracy: {_fmt(metrics['accuracy'])} (at threshold 0.5: {_fmt(metrics['accuracy_at_0.5'])})",
        f"- balanced accuracy: {_fmt(metrics['balanced_accuracy'])}",
        f"- ROC AUC: {_fmt(metrics['roc_auc'])}",
        "",
        "| class | precision | recall | F1 | specificity | support |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in metrics["per_class"].items():
        lines.append(
            f"| {name} | {_fmt(row['precision'])} | {_fmt(row['recall'])} | {_fmt(row['f1'])} "
            f"| {_fmt(row['specificity'])} | {row['support']} |"
        )
    cm = metrics["confusion_matrix"]
    labels = cm["labels"]
    lines += ["", "Confusion matrix (rows true, columns predicted):", "",
              "| true \\ predicted | " + " | ".join(labels) + " |",
              "|---" * (len(labels) + 1) + "|"]
    for name, row in zip(labels, cm["rows_true_cols_predicted"]):
        lines.append(f"| {name} | " + " | ".join(str(v) for v in row) + " |")
    return lines


def age_metrics_table(by_split: dict) -> list[str]:
    """One row per split: n, MAE, RMSE, CS(5), mean error and MAE per band (years)."""
    bands = [name for name, _, _ in AGE_BANDS]
    lines = [
        f"| split | images | MAE | RMSE | CS({CS_YEARS}) | mean error | "
        + " | ".join(f"MAE {b}" for b in bands) + " |",
        "|---" * (6 + len(bands)) + "|",
    ]
    for split, m in by_split.items():
        per_band = [
            f"{_fmt(m['mae_by_band'][b]['mae'])} ({m['mae_by_band'][b]['n']})" for b in bands
        ]
        lines.append(
            f"| {split} | {m['n']} | {_fmt(m['mae'])} | {_fmt(m['rmse'])} | {_fmt(m[f'cs{CS_YEARS}'])} "
            f"| {_fmt(m['mean_error'])} | " + " | ".join(per_band) + " |"
        )
    lines += ["", f"Years; CS({CS_YEARS}) is the share of images within {CS_YEARS} years; mean error > 0 "
              "means estimates too old; each band's image count in brackets."]
    return lines


def write_report(path: Path, title: str, sections: list[tuple[str, list[str]]], standin: bool) -> Path:
    """``report.md``: a title, the stand-in warning when it applies, then (heading, lines) sections."""
    lines = [f"# {title}" + (" — STAND-IN backbone weights" if standin else ""), ""]
    if standin:
        lines += [f"**Warning:** {STANDIN_WARNING}.", ""]
    for heading, body in sections:
        lines += [f"## {heading}", "", *body, ""]
    with names_file(path):
        Path(path).write_text("\n".join(lines), encoding="utf-8")
    return Path(path)
