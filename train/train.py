"""One training run, start to finish: data -> splits -> descriptors -> head -> metrics -> export.

``train(TrainOptions(...))`` writes into the run folder::

    splits.csv            path,label,split (reuse with --splits)
    head.json, head_weights.npz   the head as plain data (HeadSpec; export reads these)
    head.keras            the same head as a Keras model taking raw descriptors
    history.json          per-epoch loss/accuracy (training and validation)
    config.json           every option, data summary, versions, backbone sha256, stand-in flag
    metrics.json          test (and val/train) metrics, threshold, unreadable images
    predictions.csv       path,true,predicted,p_male,p_female,split for every used image
    report.md             the above, readable
    *.png                 training curves, ROC, confusion matrix, prediction grids

and then exports the fp32 classifier to ``workspace.classifier_path("fp32")`` so that
``gender-cli classify`` works at once. Returns a :class:`TrainResult`; prints nothing
(``log`` receives one-line status messages).
"""

from __future__ import annotations

import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from gender_cli import __version__, workspace
from gender_cli.contract import LABELS, STANDIN_WARNING, descriptor_spec
from gender_cli.errors import GenderCliError
from gender_cli.head_spec import HeadSpec
from gender_cli.tf_quiet import import_keras
from gender_cli.train.datasets import SPLITS, load_dataset
from gender_cli.train.descriptors import DescriptorResult, extract_descriptors
from gender_cli.train.head_model import HeadConfig, head_probabilities, save_keras_head, train_head
from gender_cli.train.metrics import choose_threshold, classification_metrics
from gender_cli.atomic import write_json_atomically
from gender_cli.train.report import (
    METRICS_FILE, REPORT_FILE, Predictions, metrics_table, write_evaluation, write_report,
)
from gender_cli.train.splits import DEFAULT_FRACTIONS, SPLITS_FILE, plan_splits, write_splits

EXPORT_CHECK_IMAGES = 32
LIST_UNREADABLE = 10  # printed one per line; metrics.json lists them all


@dataclass
class TrainOptions:
    data: Path = Path("data")
    run_dir: Path | None = None  # default: workspace.new_run_dir()
    weights: str | None = None  # converted folder or weights file; default: the workspace's converted model
    layout: str = "auto"
    descriptor: str = "relu7"
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS
    agegender_split: bool = False
    splits_file: Path | None = None
    seed: int = 0
    epochs: int = 100
    head_batch: int = 32  # descriptors per training step of the head
    hidden: list[int] = field(default_factory=lambda: [16, 16])
    dropout: float = 0.4
    learning_rate: float = 1e-3
    patience: int = 10
    extract_batch: int = 32
    workers: int | None = None
    device: str = "auto"
    progress: bool = True
    export: bool = True

    def head_config(self) -> HeadConfig:
        return HeadConfig(list(self.hidden), self.dropout, self.epochs, self.head_batch,
                          self.learning_rate, self.patience, self.seed)


@dataclass
class TrainResult:
    run_dir: Path
    files: dict[str, Path]
    metrics: dict  # test split
    threshold: float
    dataset: dict
    split_counts: dict
    unreadable: list[dict]
    descriptor_stats: dict
    classifier_path: Path | None
    export_check: dict | None
    standin: bool
    best_epoch: int
    epochs_run: int
    seconds: float


def _versions() -> dict:
    import onnxruntime

    keras = import_keras()
    import tensorflow as tf

    return {"gender_cli": __version__, "python": platform.python_version(), "numpy": np.__version__,
            "tensorflow": tf.__version__, "keras": keras.__version__, "onnxruntime": onnxruntime.__version__}


def _load_network(model):
    from gender_cli.convert.source import load_network

    return load_network(model)


def train(
    options: TrainOptions,
    network=None,
    log: Callable[[str], None] | None = None,
    on_shard: Callable[[int], None] | None = None,
) -> TrainResult:
    """Train, evaluate and export; ``network`` overrides ``options.weights`` (an in-memory Network)."""
    say = log or (lambda message: None)
    started = time.perf_counter()
    descriptor_spec(options.descriptor)

    dataset = load_dataset(options.data, options.layout)
    counts = dataset.class_counts()
    say(f"data: {dataset.root} ({dataset.layout}): {len(dataset.samples)} images, "
        + ", ".join(f"{n} {name}" for name, n in counts.items()))
    for reason, n in dataset.skipped_reasons().items():
        examples = [Path(s.path).name for s in dataset.skipped if s.reason == reason][:3]
        say(f"skipped {n}: {reason} (e.g. {', '.join(examples)})")
    plan = plan_splits(dataset, options.fractions, options.seed, options.agegender_split, options.splits_file)
    for note in plan.notes:
        say(f"splits: {note}")
    # the same check runs again after extraction (unreadable images drop out); failing
    # here first spares the extraction and leaves no half-made run folder behind
    all_labels = np.array([s.label for s in dataset.samples], int)
    _check_trainable({name: np.flatnonzero(np.array([s == name for s in plan.splits], bool))
                      for name in SPLITS}, all_labels)

    if network is None:
        network = _load_network(options.weights)
    used = [i for i, s in enumerate(plan.splits) if s is not None]
    paths = [dataset.samples[i].path for i in used]
    labels = np.array([dataset.samples[i].label for i in used], int)
    splits = [plan.splits[i] for i in used]
    desc = extract_descriptors(
        paths, network, options.descriptor, options.extract_batch, options.workers, options.device,
        options.progress, on_shard=on_shard,
    )
    if desc.notice:
        say(f"Notice: {desc.notice}")
    unreadable = [{"path": str(paths[i]), "category": c, "message": m, "split": splits[i]}
                  for i, (c, m) in sorted(desc.failures.items())]
    if unreadable:
        say(f"unreadable: {len(unreadable)} image(s) left out of the splits (all listed in metrics.json)")
        for item in unreadable[:LIST_UNREADABLE]:
            say(f"  {item['path']}: {item['category']} ({item['message']})")
    split_counts = _split_counts(labels, splits, desc.ok)
    for name in SPLITS:
        say(f"{name}: " + ", ".join(f"{n} {label}" for label, n in split_counts[name].items()))

    rows = {name: np.flatnonzero(np.array([s == name for s in splits]) & desc.ok) for name in SPLITS}
    _check_trainable(rows, labels)
    # made only now, so a failed or interrupted extraction leaves no half-made run folder
    run_dir = Path(options.run_dir) if options.run_dir else workspace.new_run_dir()
    run_dir.mkdir(parents=True, exist_ok=True)
    write_splits(run_dir / SPLITS_FILE, dataset, plan)
    trained = train_head(
        desc.descriptors[rows["train"]], labels[rows["train"]],
        desc.descriptors[rows["val"]], labels[rows["val"]], options.head_config(),
    )
    say(f"head: {trained.epochs_run} epochs, best validation loss at epoch {trained.best_epoch}")
    kernels, biases = trained.dense_weights()

    ok = np.flatnonzero(desc.ok)
    probabilities = head_probabilities(kernels, biases, desc.descriptors[ok])
    preds = Predictions([paths[i] for i in ok], labels[ok], probabilities, [splits[i] for i in ok])
    val_mask = preds.select("val")
    threshold = choose_threshold(preds.labels[val_mask], preds.probabilities[val_mask, 1])
    standin = bool(network.standin)
    evaluation = write_evaluation(run_dir, preds, threshold, "test", standin, trained.history, trained.best_epoch)
    test_metrics = evaluation["metrics"]
    files = dict(evaluation["files"])
    files["splits"] = run_dir / SPLITS_FILE

    by_split = {
        name: classification_metrics(preds.labels[preds.select(name)],
                                     preds.probabilities[preds.select(name), 1], threshold)
        for name in ("train", "val")
    }
    descriptor_stats = _descriptor_stats(desc)
    metrics = {
        "standin": standin,
        **({"warning": STANDIN_WARNING} if standin else {}),
        "threshold": {"value": threshold, "chosen_on": "val",
                      "rule": "maximise Youden's J (TPR + TNR - 1) on the validation split"},
        "test": test_metrics,
        "val": by_split["val"],
        "train": by_split["train"],
        "split_counts": split_counts,
        "unreadable": unreadable,
        "descriptors": descriptor_stats,
    }
    files["metrics"] = write_json_atomically(run_dir / METRICS_FILE, metrics)

    spec = HeadSpec(
        descriptor=options.descriptor, input_dim=int(kernels[0].shape[0]), hidden=list(options.hidden),
        dropout=float(options.dropout), labels=list(LABELS), threshold=float(threshold),
        backbone_sha256=network.source_sha256, standin=standin, metrics=_compact(test_metrics, by_split["val"]),
    )
    spec.save(run_dir, kernels, biases)
    files["head"] = run_dir / "head.json"
    files["head_keras"] = save_keras_head(run_dir / "head.keras", spec, kernels, biases)
    files["history"] = write_json_atomically(run_dir / "history.json", {
        **trained.history, "best_epoch": trained.best_epoch, "epochs_run": trained.epochs_run})
    config = {
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(options).items()},
        "dataset": dataset.summary(),
        "split_method": plan.method,
        "split_notes": plan.notes,
        "backbone": {"sha256": network.source_sha256, "source_path": network.source_path,
                     "standin": standin, "descriptor": options.descriptor,
                     "onnx": str(desc.backbone_path)},
        "versions": _versions(),
    }
    files["config"] = write_json_atomically(run_dir / "config.json", config)

    classifier, export_check = None, None
    if options.export:
        classifier, export_check = _export_classifier(network, options, run_dir, preds, threshold)
        say(f"exported {classifier}")
    files["report"] = write_report(
        run_dir / REPORT_FILE, f"Training run {run_dir.name}",
        _report_sections(dataset.summary(), plan, split_counts, unreadable, options, trained,
                         threshold, test_metrics, by_split["val"], descriptor_stats, classifier,
                         export_check, files), standin,
    )
    return TrainResult(
        run_dir=run_dir, files=files, metrics=test_metrics, threshold=threshold,
        dataset=dataset.summary(), split_counts=split_counts, unreadable=unreadable,
        descriptor_stats=descriptor_stats, classifier_path=classifier, export_check=export_check,
        standin=standin, best_epoch=trained.best_epoch, epochs_run=trained.epochs_run,
        seconds=time.perf_counter() - started,
    )


def _split_counts(labels: np.ndarray, splits: list[str], ok: np.ndarray) -> dict:
    table = {s: {name: 0 for name in LABELS} for s in SPLITS}
    for label, split, good in zip(labels, splits, ok):
        if good:
            table[split][LABELS[label]] += 1
    return table


def _check_trainable(rows: dict, labels: np.ndarray) -> None:
    for name in ("train", "val", "test"):
        present = set(labels[rows[name]].tolist())
        if len(present) < 2:
            have = ", ".join(LABELS[i] for i in sorted(present)) or "no images"
            raise GenderCliError(
                f"the {name} split needs images of both classes ({', '.join(LABELS)}), "
                f"it has {have}; add images or change --split"
            )


def _descriptor_stats(desc: DescriptorResult) -> dict:
    return {
        "cached": desc.cached, "extracted": desc.extracted, "unreadable": len(desc.failures),
        "seconds": round(desc.seconds, 3),
        "images_per_second": round(desc.images_per_second, 1) if desc.images_per_second else None,
        "cache_dir": str(desc.cache_dir), "backbone_onnx": str(desc.backbone_path),
        "backbone_exported": desc.backbone_exported, "providers": desc.providers,
    }


def _compact(test: dict, val: dict) -> dict:
    return {
        "test_accuracy": test["accuracy"], "test_balanced_accuracy": test["balanced_accuracy"],
        "test_roc_auc": test["roc_auc"], "test_n": test["n"], "val_accuracy": val["accuracy"],
        "threshold_rule": "youden_j_on_val",
    }


def _export_classifier(network, options: TrainOptions, run_dir: Path, preds: Predictions, threshold: float):
    """Export the fp32 classifier and check it against the NumPy head on a few test images."""
    from gender_cli.export.export import export
    from gender_cli.infer.session import open_session
    from gender_cli.train.batch_runner import run_over_paths

    path = workspace.classifier_path("fp32")
    path.parent.mkdir(parents=True, exist_ok=True)
    export(network, path, descriptor=options.descriptor, head=run_dir, precision="fp32")
    loaded = open_session(path, device=options.device)
    rows = np.flatnonzero(preds.select("test"))[:EXPORT_CHECK_IMAGES]
    expected, got = [], []
    for result in run_over_paths(loaded, [preds.paths[i] for i in rows], "probabilities",
                                 options.extract_batch, options.workers, progress=False):
        got.extend(result.outputs[:, 1].tolist())
        expected.extend(preds.probabilities[rows[result.indices], 1].tolist())
    diff = float(np.max(np.abs(np.array(got) - np.array(expected)))) if got else None
    return path, {
        "images": len(got), "max_abs_diff_p_female": diff,
        "threshold_in_metadata": float(loaded.info.threshold), "threshold": threshold,
    }


def _report_sections(dataset, plan, split_counts, unreadable, options, trained, threshold,
                     test_metrics, val_metrics, descriptor_stats, classifier, export_check, files):
    data_lines = [
        f"- data: `{dataset['root']}` (layout {dataset['layout']}), {dataset['images']} images: "
        + ", ".join(f"{n} {name}" for name, n in dataset["classes"].items()),
        f"- skipped while reading: {dataset['skipped']}"
        + "".join(f"\n  - {n} × {reason}" for reason, n in dataset["skipped_reasons"].items()),
        f"- unreadable at extraction (left out): {len(unreadable)}"
        + "".join(f"\n  - `{u['path']}`: {u['category']}" for u in unreadable[:20]),
        f"- splits: {plan.method}" + "".join(f"; {note}" for note in plan.notes),
        "",
        "| split | " + " | ".join(LABELS) + " | total |",
        "|---" * (len(LABELS) + 2) + "|",
    ]
    for name, row in split_counts.items():
        data_lines.append(f"| {name} | " + " | ".join(str(v) for v in row.values()) + f" | {sum(row.values())} |")
    head_lines = [
        f"- descriptor: {options.descriptor} ({descriptor_stats['cached']} cached, "
        f"{descriptor_stats['extracted']} extracted"
        + (f" at {descriptor_stats['images_per_second']} img/s" if descriptor_stats["images_per_second"] else "")
        + ")",
        f"- head: hidden {options.hidden or 'none (logistic regression)'}, dropout {options.dropout}, "
        f"Adam lr {options.learning_rate}, batch {options.head_batch}, seed {options.seed}",
        f"- epochs run: {trained.epochs_run} of {options.epochs}; weights kept from epoch {trained.best_epoch} "
        "(lowest validation loss)",
        f"- threshold on p_female: {threshold:.4f}, chosen on validation by maximising Youden's J "
        f"(validation accuracy at it: {val_metrics['accuracy']:.4f})",
    ]
    sections = [("Data", data_lines), ("Training", head_lines), ("Test metrics", metrics_table(test_metrics))]
    if classifier is not None:
        sections.append(("Export", [
            f"- fp32 classifier: `{classifier}`",
            f"- agreement with the saved head on {export_check['images']} test images: "
            f"max |Δ p_female| = {export_check['max_abs_diff_p_female']}",
        ]))
    sections.append(("Files", [f"- {name}: `{Path(p).name}`" for name, p in files.items()]))
    return sections
