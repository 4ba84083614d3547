"""PNG figures of a training run or an evaluation (matplotlib, Agg backend).

Every function takes the data to draw and an output path and returns the path. When
the backbone weights are a stand-in, the caller passes ``standin=True`` and every
title says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from gender_cli.atomic import names_file
from gender_cli.contract import AGE_RANGE, LABELS

STANDIN_TITLE = "STAND-IN backbone weights"
GRID_SIZE = 112  # thumbnail side in pixels


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _title(text: str, standin: bool) -> str:
    return f"{text}\n({STANDIN_TITLE})" if standin else text


def _save(fig, path: Path) -> Path:
    path = Path(path)
    with names_file(path):
        fig.savefig(path, dpi=100, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def plot_history(history: dict, path: Path, best_epoch: int | None = None, standin: bool = False,
                 metrics: tuple[str, str] = ("loss", "accuracy"), title: str = "Training curves") -> Path:
    """Loss and one more figure (``metrics``) per epoch, training and validation."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, metrics):
        for key, style in ((metric, "-"), (f"val_{metric}", "--")):
            if key in history:
                epochs = np.arange(1, len(history[key]) + 1)
                ax.plot(epochs, history[key], style, label=key.replace("val_", "validation ").replace("_", " "))
        if best_epoch:
            ax.axvline(best_epoch, color="grey", linewidth=0.8, label=f"kept (epoch {best_epoch})")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric.replace("_", " "))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(_title(title, standin))
    return _save(fig, path)


def plot_roc(fpr: np.ndarray, tpr: np.ndarray, auc: float | None, path: Path,
             threshold_point: tuple[float, float] | None = None, standin: bool = False,
             split: str = "test") -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    label = f"ROC (AUC = {auc:.3f})" if auc is not None else "ROC (AUC undefined: one class)"
    ax.plot(fpr, tpr, label=label)
    ax.plot([0, 1], [0, 1], ":", color="grey", label="chance")
    if threshold_point is not None:
        ax.plot(*threshold_point, "o", color="red", label="chosen threshold")
    ax.set_xlabel(f"false positive rate ({LABELS[0]} called {LABELS[1]})")
    ax.set_ylabel(f"true positive rate ({LABELS[1]})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.legend(loc="lower right")
    ax.set_title(_title(f"ROC ({split} images)", standin))
    return _save(fig, path)


def plot_confusion(cm: np.ndarray, path: Path, labels: Sequence[str] = LABELS, standin: bool = False,
                   split: str = "test") -> Path:
    plt = _pyplot()
    cm = np.asarray(cm)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(cm, cmap="Blues")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            colour = "white" if cm[i, j] > cm.max() / 2 else "black"
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", color=colour, fontsize=14)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(_title(f"Confusion matrix ({split} images)", standin))
    return _save(fig, path)


def plot_grid(items: list[dict], path: Path, title: str, standin: bool = False, columns: int = 6) -> Path:
    """Thumbnails with 'true / predicted (p_female)' captions; wrong ones captioned in red.

    ``items``: dicts with ``path``, ``true``, ``predicted`` (label names), ``p_female``.
    """
    from gender_cli.infer.images import ImageError, load_image

    plt = _pyplot()
    rows = max(1, -(-len(items) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.8, rows * 2.0 + 0.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    if not items:
        axes[0, 0].text(0, 0.5, "none", fontsize=14)
    for ax, item in zip(axes.flat, items):
        try:
            ax.imshow(load_image(item["path"], size=(GRID_SIZE, GRID_SIZE)))
        except (ImageError, OSError):
            ax.text(0.5, 0.5, "unreadable", ha="center")
        wrong = item["true"] != item["predicted"]
        ax.set_title(
            f"true {item['true']}\npred {item['predicted']}, p(f)={item['p_female']:.2f}",
            fontsize=8, color="red" if wrong else "black",
        )
    fig.suptitle(_title(title, standin))
    return _save(fig, path)


def plot_age_scatter(true_age, predicted_age, path: Path, standin: bool = False, split: str = "test") -> Path:
    """Estimated against true age, one dot per image, with the diagonal of perfect estimates."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(AGE_RANGE, AGE_RANGE, ":", color="grey", label="estimate = truth")
    ax.scatter(true_age, predicted_age, s=10, alpha=0.6, label=f"{len(true_age)} images")
    ax.set_xlim(*AGE_RANGE)
    ax.set_ylim(*AGE_RANGE)
    ax.set_xlabel("true age (years)")
    ax.set_ylabel("estimated age (years)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    ax.set_title(_title(f"Age estimates ({split} images)", standin))
    return _save(fig, path)


def plot_age_errors(errors, path: Path, cs_years: int, standin: bool = False, split: str = "test") -> Path:
    """Histogram of estimate - truth in years, the +-``cs_years`` window marked."""
    plt = _pyplot()
    errors = np.asarray(errors, np.float64)
    fig, ax = plt.subplots(figsize=(6, 4))
    limit = max(cs_years * 2, float(np.ceil(np.abs(errors).max()))) if len(errors) else cs_years * 2
    ax.hist(errors, bins=np.linspace(-limit, limit, 41))
    for x in (-cs_years, cs_years):
        ax.axvline(x, color="red", linewidth=0.8)
    ax.set_xlabel(f"estimated - true age (years); red: +-{cs_years}")
    ax.set_ylabel("images")
    ax.grid(alpha=0.3)
    ax.set_title(_title(f"Age errors ({split} images)", standin))
    return _save(fig, path)


def plot_age_bands(bands: dict, path: Path, standin: bool = False, split: str = "test") -> Path:
    """MAE per band of the true age, each bar captioned with its image count."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    names = list(bands)
    values = [bands[n]["mae"] or 0.0 for n in names]
    bars = ax.bar(names, values)
    for bar, name in zip(bars, names):
        caption = f"n={bands[name]['n']}" if bands[name]["mae"] is not None else "no images"
        ax.annotate(caption, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom")
    ax.set_xlabel("true age (years)")
    ax.set_ylabel("mean absolute error (years)")
    ax.grid(alpha=0.3, axis="y")
    ax.set_title(_title(f"Age MAE per band ({split} images)", standin))
    return _save(fig, path)
