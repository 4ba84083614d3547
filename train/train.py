"""One training run, start to finish: data -> splits -> descriptors -> heads -> metrics -> export.

``train(TrainOptions(...))`` fits the heads of the task (``tasks.plan_task``: the
gender head, the age head or both) on the same cached descriptors and the same seeded
splits, and writes into the run folder::

    splits.csv            path,label,split (reuse with --splits)
    head.json, head_weights.npz   the gender head as plain data (HeadSpec; export reads these)
    head.keras            the same head as a Keras model taking raw descriptors
    age_head.json, age_head_weights.npz, age_head.keras   the age head, likewise (AgeHeadSpec)
    history.json, age_history.json   per-epoch curves of each head
    config.json           every option, data summary, versions, backbone sha256, stand-in flag
    metrics.json          test (and val/train) metrics of each head, threshold, unreadable
                          images, images without a usable age
    predictions.csv       path,true,predicted,p_male,p_female,true_age,predicted_age,split
                          (the columns of the heads trained) for every used image
    report.md             the above, readable
    *.png                 training curves, ROC, confusion matrix, prediction grids; age:
                          estimate vs truth, error histogram, MAE per band

and then exports the fp32 classifier (one graph, every head) to
``workspace.classifier_path("fp32")`` so that ``gender-cli classify`` works at once.
Returns a :class:`TrainResult`; prints nothing (``log`` receives one-line status
messages).
"""

from __future__ import annotations

import platform
import shutil
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from gender_cli import __version__, workspace
from gender_cli.atomic import write_json_atomically
from gender_cli.contract import AGE, LABELS, PROBABILITIES, STANDIN_WARNING, default_descriptor, descriptor_spec
from gender_cli.devices import DEFAULT_DEVICE
from gender_cli.errors import GenderCliError
from gender_cli.head_spec import AgeHeadSpec, HeadSpec
from gender_cli.infer.detect import FaceSettings, check_settings
from gender_cli.tf_quiet import import_keras
from gender_cli.train.age_head import AgeHeadConfig, age_estimates, save_keras_age_head, train_age_head
from gender_cli.train.datasets import SPLITS, load_dataset
from gender_cli.train.descriptors import DescriptorResult, extract_descriptors
from gender_cli.train.calibration import calibrate_head
from gender_cli.train.head_model import HeadConfig, head_logits, head_probabilities, save_keras_head, train_head
from gender_cli.train.metrics import classification_metrics
from gender_cli.train.scratch_model import ScratchConfig
from gender_cli.train.report import (
    METRICS_FILE, PREDICTIONS_FILE, REPORT_FILE, Predictions, age_metrics_by_split, write_age_evaluation,
    write_evaluation, write_report,
)
from gender_cli.train.run_report import descriptor_training_lines, report_sections
from gender_cli.train.splits import DEFAULT_FRACTIONS, SPLITS_FILE, plan_splits, write_splits
from gender_cli.train.tasks import AUTO, TaskPlan, describe_missing_ages, plan_task

EXPORT_CHECK_IMAGES = 32
FOLDED_THRESHOLD = 0.5  # the calibrated head's decision: the larger probability
LIST_UNREADABLE = 10  # printed one per line; metrics.json lists them all
AGE_DEFAULTS = AgeHeadConfig()


@dataclass
class TrainOptions:
    data: Path = Path("data")
    run_dir: Path | None = None  # default: workspace.new_run_dir()
    weights: str | None = None  # converted folder or weights file; default: the workspace's converted model
    layout: str = "auto"
    descriptor: str | None = None  # None: the network's default (contract.default_descriptor)
    task: str = AUTO  # tasks.TASK_CHOICES
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS
    agegender_split: bool = False
    splits_file: Path | None = None
    seed: int = 0
    epochs: int = 100
    head_batch: int = 32  # descriptors per training step of the head
    hidden: list[int] = field(default_factory=lambda: [16, 16])
    dropout: float = 0.4
    age_hidden: list[int] = field(default_factory=lambda: list(AGE_DEFAULTS.hidden))
    age_dropout: float = AGE_DEFAULTS.dropout
    age_loss: str = AGE_DEFAULTS.loss
    learning_rate: float = 1e-3
    patience: int = 10
    extract_batch: int = 32
    workers: int | None = None
    device: str = DEFAULT_DEVICE
    progress: bool = True
    export: bool = True
    faces: FaceSettings | None = None  # train on each image's largest detected face (--detect)
    scratch: ScratchConfig | None = None  # train the whole network from the images (--from-scratch)

    def head_config(self) -> HeadConfig:
        return HeadConfig(list(self.hidden), self.dropout, self.epochs, self.head_batch,
                          self.learning_rate, self.patience, self.seed)

    def age_head_config(self) -> AgeHeadConfig:
        return AgeHeadConfig(list(self.age_hidden), self.age_dropout, self.epochs, self.head_batch,
                             self.learning_rate, self.patience, self.seed, loss=self.age_loss)


@dataclass
class TrainResult:
    run_dir: Path
    files: dict[str, Path]
    metrics: dict | None  # gender head, test split; None without a gender head
    threshold: float | None
    dataset: dict
    split_counts: dict
    unreadable: list[dict]
    descriptor_stats: dict
    classifier_path: Path | None
    export_check: dict | None
    standin: bool
    best_epoch: int | None
    epochs_run: int | None
    seconds: float
    task: str = "gender"
    age: dict | None = None  # age head: test metrics, epochs, images without a usable age


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
    """Train, evaluate and export; ``network`` overrides ``options.weights`` (an in-memory Network).

    With ``options.scratch`` the whole network is trained from the images
    (``train.scratch``); otherwise heads are fitted on a converted network's descriptors.
    """
    say = log or (lambda message: None)
    started = time.perf_counter()
    if options.scratch is not None:
        from gender_cli.train.scratch import ScratchRoute

        route = ScratchRoute(options, say)
    else:
        route = DescriptorRoute(options, network, say, on_shard)

    dataset, task, plan = _plan_run(options, say)
    chosen = Chosen.of(dataset, plan)
    options = route.begin(chosen)
    read = route.read(chosen)
    unreadable = [{"path": str(chosen.paths[i]), "category": c, "message": m, "split": chosen.splits[i]}
                  for i, (c, m) in sorted(read.failures.items())]
    if unreadable:
        say(f"unreadable: {len(unreadable)} image(s) left out of the splits (all listed in metrics.json)")
        for item in unreadable[:LIST_UNREADABLE]:
            say(f"  {item['path']}: {item['category']} ({item['message']})")
    split_counts = _split_counts(chosen.labels, chosen.splits, read.ok)
    for name in SPLITS:
        say(f"{name}: " + ", ".join(f"{n} {label}" for label, n in split_counts[name].items())
            + (f"; {int((chosen.in_split(name) & read.ok & chosen.aged).sum())} with an age"
               if task.age else ""))

    rows = {name: np.flatnonzero(chosen.in_split(name) & read.ok) for name in SPLITS}
    _check_trainable(rows, chosen.labels, chosen.aged, task)
    # made only now, so a failed or interrupted extraction leaves no half-made run folder;
    # removed again if fitting, evaluating or exporting fails
    made_here = not (options.run_dir and Path(options.run_dir).exists())
    run_dir = Path(options.run_dir) if options.run_dir else workspace.new_run_dir()
    run_dir.mkdir(parents=True, exist_ok=True)
    with _removed_on_failure(run_dir, made_here):
        write_splits(run_dir / SPLITS_FILE, dataset, plan)
        fitted = route.fit(rows, chosen, task)
        standin = route.standin
        ok = np.flatnonzero(read.ok)
        preds = Predictions([chosen.paths[i] for i in ok], chosen.labels[ok], None, [chosen.splits[i] for i in ok],
                            chosen.true_ages[ok])
        files: dict[str, Path] = {"splits": run_dir / SPLITS_FILE}
        metrics: dict = {"standin": standin, **({"warning": STANDIN_WARNING} if standin else {}),
                         "task": task.task, "heads": list(task.heads)}

        descriptors = fitted.descriptors
        gender = _calibrated_gender(fitted.gender, descriptors, read.ok, rows, chosen.labels, preds, say) \
            if task.gender else None
        age = _age_estimates(fitted.age, descriptors, read.ok, preds) if task.age else None
        files["predictions"] = preds.write_csv(run_dir / PREDICTIONS_FILE, gender["threshold"] if gender else None)
        if gender:
            evaluation = write_evaluation(run_dir, preds, gender["threshold"], "test", standin,
                                          gender["trained"].history, gender["trained"].best_epoch)
            files.update(evaluation["files"])
            gender["test"] = evaluation["metrics"]
            metrics.update({
                "threshold": {"value": gender["threshold"], "chosen_on": "val",
                              "rule": "Platt scaling on the validation split, then the operating point "
                                      "maximising Youden's J (TPR + TNR - 1) on it, folded into the head: "
                                      "a label is the class whose probability is >= 0.5",
                              "calibration": gender["calibration"]},
                "test": gender["test"], "val": gender["val"], "train": gender["train"],
            })
        if age:
            evaluation = write_age_evaluation(run_dir, preds, "test", standin, age["trained"].history,
                                              age["trained"].best_epoch)
            files.update(evaluation["files"])
            age["by_split"] = age_metrics_by_split(preds)
            metrics["age"] = {
                **age["by_split"],
                "estimate": "expected value of the softmax over the ages {}-{} (DEX)".format(*age["config"].ages),
                "images_with_age": int(chosen.aged[ok].sum()),
                "without_age": task.ages["without_age"],
            }
        input_stats = read.stats
        metrics.update({"split_counts": split_counts, "unreadable": unreadable, route.stats_key: input_stats})
        files["metrics"] = write_json_atomically(run_dir / METRICS_FILE, metrics)

        files.update(route.save(run_dir))
        common = dict(descriptor=options.descriptor, backbone_sha256=route.backbone_sha256, standin=standin,
                      faces=options.faces.to_meta() if options.faces is not None else None)
        if gender:
            spec = HeadSpec(
                input_dim=int(gender["kernels"][0].shape[0]), hidden=list(fitted.gender["hidden"]),
                dropout=float(fitted.gender["dropout"]), labels=list(LABELS), threshold=float(gender["threshold"]),
                metrics=_compact(gender["test"], gender["val"]), calibration=gender["calibration"], **common,
            )
            spec.save(run_dir, gender["kernels"], gender["biases"])
            files["head"] = run_dir / HeadSpec.SPEC_FILE
            files["head_keras"] = save_keras_head(run_dir / "head.keras", spec, gender["kernels"], gender["biases"])
            files["history_json"] = _write_history(run_dir / "history.json", gender["trained"])
        if age:
            config = age["config"]
            age_spec = AgeHeadSpec(
                input_dim=int(age["kernels"][0].shape[0]), hidden=list(config.hidden), dropout=float(config.dropout),
                ages=list(config.ages), loss=config.loss, metrics=_compact_age(age["by_split"]), **common,
            )
            age_spec.save(run_dir, age["kernels"], age["biases"])
            files["age_head"] = run_dir / AgeHeadSpec.SPEC_FILE
            files["age_head_keras"] = save_keras_age_head(run_dir / "age_head.keras", age_spec, age["kernels"],
                                                          age["biases"])
            files["age_history_json"] = _write_history(run_dir / "age_history.json", age["trained"])
        data_summary = dataset.summary()
        config_json = {
            "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(options).items()},
            "task": {"task": task.task, "heads": list(task.heads), "reason": task.reason},
            "dataset": data_summary,
            "split_method": plan.method,
            "split_notes": plan.notes,
            "backbone": route.backbone_record(),
            "versions": _versions(),
        }
        files["config"] = write_json_atomically(run_dir / "config.json", config_json)

        classifier, export_check = None, None
        if options.export:
            classifier, export_check = _export_classifier(route.export_network(run_dir), options, run_dir, preds,
                                                          gender, task)
            say(f"exported {classifier}")
        files["report"] = write_report(
            run_dir / REPORT_FILE, f"Training run {run_dir.name}",
            report_sections(data_summary, task, plan, split_counts, unreadable, options.faces,
                            route.training_lines(fitted, gender, age), gender, age, classifier, export_check, files),
            standin,
        )
        return TrainResult(
            run_dir=run_dir, files=files, metrics=gender["test"] if gender else None,
            threshold=gender["threshold"] if gender else None,
            dataset=data_summary, split_counts=split_counts, unreadable=unreadable,
            descriptor_stats=input_stats, classifier_path=classifier, export_check=export_check,
            standin=standin, best_epoch=gender["trained"].best_epoch if gender else None,
            epochs_run=gender["trained"].epochs_run if gender else None,
            seconds=time.perf_counter() - started, task=task.task,
            age={"metrics": age["by_split"].get("test"), "best_epoch": age["trained"].best_epoch,
                 "epochs_run": age["trained"].epochs_run, "without_age": task.ages["without_age"]} if age else None,
        )


def _plan_run(options: TrainOptions, say) -> tuple:
    """The labelled images, the heads to train and the seeded splits, checked before any
    image is read: (dataset, task plan, split plan)."""
    dataset = load_dataset(options.data, options.layout)
    counts = dataset.class_counts()
    say(f"data: {dataset.root} ({dataset.layout}): {len(dataset.samples)} images, "
        + ", ".join(f"{n} {name}" for name, n in counts.items()))
    for reason, n in dataset.skipped_reasons().items():
        examples = [Path(s.path).name for s in dataset.skipped if s.reason == reason][:3]
        say(f"skipped {n}: {reason} (e.g. {', '.join(examples)})")
    task = plan_task(options.task, dataset)
    say(f"task: {task.task} ({task.reason})")
    if task.ages["without_age"] and (task.age or task.ages["with_age"]):
        say(f"ages: {task.ages['with_age']} of {len(dataset.samples)} images have a usable age"
            + ("; the age head leaves out " if task.age else "; without one: ")
            + describe_missing_ages(task.ages))
    plan = plan_splits(dataset, options.fractions, options.seed, options.agegender_split, options.splits_file)
    for note in plan.notes:
        say(f"splits: {note}")
    # the same checks run again after reading (unreadable images drop out); failing
    # here first spares the reading and leaves no half-made run folder behind
    all_labels = np.array([s.label for s in dataset.samples], int)
    all_aged = np.array([s.has_age for s in dataset.samples], bool)
    _check_trainable({name: np.flatnonzero(np.array([s == name for s in plan.splits], bool))
                      for name in SPLITS}, all_labels, all_aged, task)
    return dataset, task, plan


@dataclass
class Chosen:
    """The images a run uses (those in a split), with their labels, ages and splits."""

    paths: list[Path]
    labels: np.ndarray  # int (N,)
    aged: np.ndarray  # bool (N,): has a usable age
    true_ages: np.ndarray  # float (N,), NaN without an age
    splits: list[str]

    @classmethod
    def of(cls, dataset, plan) -> "Chosen":
        used = [i for i, s in enumerate(plan.splits) if s is not None]
        samples = [dataset.samples[i] for i in used]
        return cls(
            paths=[s.path for s in samples],
            labels=np.array([s.label for s in samples], int),
            aged=np.array([s.has_age for s in samples], bool),
            true_ages=np.array([s.age if s.has_age else np.nan for s in samples], float),
            splits=[plan.splits[i] for i in used],
        )

    def in_split(self, name: str) -> np.ndarray:
        return np.array([s == name for s in self.splits], bool)


@dataclass
class ReadImages:
    """What reading the images gave, whatever the route: which were usable, why the rest
    were not, and the route's figures for the report (``stats``)."""

    ok: np.ndarray  # bool (N,)
    failures: dict[int, tuple[str, str]]  # index -> (category, message)
    stats: dict


@dataclass
class Fitted:
    """A route's trained heads before calibration, and every used image's descriptor.

    ``gender``: ``{"trained", "kernels", "biases", "hidden", "dropout"}``; ``age``:
    ``{"trained", "kernels", "biases", "config"}`` (an AgeHeadConfig); ``trained`` has
    ``history``, ``best_epoch`` and ``epochs_run``.
    """

    descriptors: np.ndarray  # float32 (N, D), zeros where an image was not usable
    gender: dict | None
    age: dict | None


class DescriptorRoute:
    """Heads fitted on a converted network's descriptors, extracted through ONNX and cached."""

    stats_key = "descriptors"

    def __init__(self, options: TrainOptions, network, say, on_shard):
        if options.descriptor is not None:
            descriptor_spec(options.descriptor)
        self.options, self.network, self.say, self.on_shard = options, network, say, on_shard
        self.desc: DescriptorResult | None = None

    def begin(self, chosen: Chosen) -> TrainOptions:
        """Load the network and settle the options that depend on it."""
        if self.network is None:
            self.network = _load_network(self.options.weights)
        options = self.options
        if options.descriptor is None:
            options = replace(options, descriptor=default_descriptor(layer.name for layer in self.network.layers))
        if options.faces is not None:  # the faces are cut out as the backbone's training cut them
            options = replace(options, faces=replace(options.faces,
                                                     crop=self.network.preprocessing.get("face_crop", "box")))
            check_settings(options.faces)
            self.say(f"faces: the largest face of each image, {options.faces.summary()}")
        self.options = options
        return options

    def read(self, chosen: Chosen) -> ReadImages:
        options = self.options
        self.desc = desc = extract_descriptors(
            chosen.paths, self.network, options.descriptor, options.extract_batch, options.workers, options.device,
            options.progress, on_shard=self.on_shard, faces=options.faces,
        )
        if desc.notice:
            self.say(f"Notice: {desc.notice}")
        return ReadImages(desc.ok, desc.failures, _descriptor_stats(desc))

    @property
    def standin(self) -> bool:
        return bool(self.network.standin)

    @property
    def backbone_sha256(self) -> str:
        return self.network.source_sha256

    def fit(self, rows: dict, chosen: Chosen, task: TaskPlan) -> Fitted:
        options, x = self.options, self.desc.descriptors
        gender = age = None
        if task.gender:
            trained = train_head(x[rows["train"]], chosen.labels[rows["train"]], x[rows["val"]],
                                 chosen.labels[rows["val"]], options.head_config())
            self.say(f"gender head: {trained.epochs_run} epochs, best validation loss at epoch {trained.best_epoch}")
            kernels, biases = trained.dense_weights()
            gender = {"trained": trained, "kernels": kernels, "biases": biases, "hidden": options.hidden,
                      "dropout": options.dropout}
        if task.age:
            config = options.age_head_config()
            aged = chosen.aged
            train_rows, val_rows = rows["train"][aged[rows["train"]]], rows["val"][aged[rows["val"]]]
            trained = train_age_head(x[train_rows], chosen.true_ages[train_rows], x[val_rows],
                                     chosen.true_ages[val_rows], config)
            self.say(f"age head: {trained.epochs_run} epochs, best validation MAE at epoch {trained.best_epoch}")
            kernels, biases = trained.dense_weights()
            age = {"trained": trained, "kernels": kernels, "biases": biases, "config": config}
        return Fitted(x, gender, age)

    def save(self, run_dir: Path) -> dict[str, Path]:
        return {}  # the backbone stays where convert wrote it

    def backbone_record(self) -> dict:
        return {"sha256": self.network.source_sha256, "source_path": self.network.source_path,
                "standin": self.standin, "descriptor": self.options.descriptor,
                "onnx": str(self.desc.backbone_path)}

    def export_network(self, run_dir: Path):
        return self.network

    def training_lines(self, fitted: Fitted, gender: dict | None, age: dict | None) -> list[str]:
        return descriptor_training_lines(self.options, _descriptor_stats(self.desc), gender, age)


def _calibrated_gender(fitted: dict, descriptors: np.ndarray, ok: np.ndarray, rows: dict, labels: np.ndarray,
                       preds: Predictions, say) -> dict:
    """Calibrate the gender head on val with the operating point folded in
    (``calibration``), fill ``preds.probabilities``."""
    val_rows = descriptors[rows["val"]]
    kernels, biases, calibration = calibrate_head(fitted["kernels"], fitted["biases"],
                                                  head_logits(fitted["kernels"], fitted["biases"], val_rows),
                                                  labels[rows["val"]])
    say(f"calibration: Platt scaling on validation (slope {calibration['slope']:.3f}), operating point "
        f"{calibration['operating_point']:.3f} folded in; labels follow the larger probability")
    preds.probabilities = head_probabilities(kernels, biases, descriptors[ok])
    threshold = FOLDED_THRESHOLD
    by_split = {
        name: classification_metrics(preds.labels[preds.select(name)],
                                     preds.probabilities[preds.select(name), 1], threshold)
        for name in ("train", "val")
    }
    return {"trained": fitted["trained"], "kernels": kernels, "biases": biases, "threshold": threshold,
            "calibration": calibration, **by_split}


def _age_estimates(fitted: dict, descriptors: np.ndarray, ok: np.ndarray, preds: Predictions) -> dict:
    """Every usable image's age estimate into ``preds``."""
    preds.predicted_ages = age_estimates(fitted["kernels"], fitted["biases"], descriptors[ok],
                                         fitted["config"].ages)
    return dict(fitted)


@contextmanager
def _removed_on_failure(run_dir: Path, made_here: bool):
    """Remove the run folder this run made when it fails or is interrupted (Ctrl-C
    included), so the workspace never holds a half-made run."""
    try:
        yield
    except BaseException:
        if made_here:
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def _write_history(path: Path, trained) -> Path:
    return write_json_atomically(path, {**trained.history, "best_epoch": trained.best_epoch,
                                        "epochs_run": trained.epochs_run})


def _split_counts(labels: np.ndarray, splits: list[str], ok: np.ndarray) -> dict:
    table = {s: {name: 0 for name in LABELS} for s in SPLITS}
    for label, split, good in zip(labels, splits, ok):
        if good:
            table[split][LABELS[label]] += 1
    return table


def _check_trainable(rows: dict, labels: np.ndarray, aged: np.ndarray, task: TaskPlan) -> None:
    for name in ("train", "val", "test"):
        present = set(labels[rows[name]].tolist())
        if task.gender and len(present) < 2:
            have = ", ".join(LABELS[i] for i in sorted(present)) or "no images"
            raise GenderCliError(
                f"the {name} split needs images of both classes ({', '.join(LABELS)}), "
                f"it has {have}; add images or change --split"
            )
        if task.age and not aged[rows[name]].any():
            raise GenderCliError(
                f"the {name} split has no image with a usable age, which the age head needs; "
                "add images with ages, change --split or train --task gender"
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
        "threshold_rule": "platt_on_val_youden_j_folded",
    }


def _compact_age(by_split: dict) -> dict:
    test, val = by_split.get("test", {}), by_split.get("val", {})
    return {
        "test_mae": test.get("mae"), "test_rmse": test.get("rmse"), "test_cs5": test.get("cs5"),
        "test_n": test.get("n", 0), "test_mae_by_band": {k: v["mae"] for k, v in test.get("mae_by_band", {}).items()},
        "val_mae": val.get("mae"),
    }


def _export_classifier(network, options: TrainOptions, run_dir: Path, preds: Predictions, gender: dict | None,
                       task: TaskPlan):
    """Export the fp32 classifier and check it against the NumPy heads on a few test images."""
    from gender_cli.export.export import export
    from gender_cli.infer.session import open_session
    from gender_cli.train.batch_runner import run_over_paths

    path = workspace.classifier_path("fp32")
    path.parent.mkdir(parents=True, exist_ok=True)
    export(network, path, descriptor=options.descriptor, head=run_dir, precision="fp32")
    loaded = open_session(path, device=options.device)
    rows = np.flatnonzero(preds.select("test"))[:EXPORT_CHECK_IMAGES]
    outputs = ([PROBABILITIES] if task.gender else []) + ([AGE] if task.age else [])
    differences = {name: 0.0 for name in outputs}
    expected = {PROBABILITIES: preds.probabilities, AGE: preds.predicted_ages}
    checked = 0
    for result in run_over_paths(loaded, [preds.paths[i] for i in rows], outputs,
                                 options.extract_batch, options.workers, progress=False, faces=options.faces):
        checked += len(result.indices)
        for name in outputs:
            got = result.values[name]
            want = expected[name][rows[result.indices]]
            if name == PROBABILITIES:
                got, want = got[:, 1], want[:, 1]
            differences[name] = max(differences[name], float(np.max(np.abs(got - want), initial=0.0)))
    check = {"images": checked}
    if task.gender:
        check.update({"max_abs_diff_p_female": differences[PROBABILITIES] if checked else None,
                      "threshold_in_metadata": float(loaded.info.threshold), "threshold": gender["threshold"]})
    if task.age:
        check["max_abs_diff_age_years"] = differences[AGE] if checked else None
    return path, check
