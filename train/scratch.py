"""``train --from-scratch``: the compact CNN trained end to end on the images, as a route of ``train``.

``train.train`` runs one pipeline (data, splits, reading, heads, calibration, report,
export) with two ways of getting from images to trained heads; this is the second.
:class:`ScratchRoute` decodes every image once through tf.data (``scratch_data``),
trains the network of ``scratch_model`` in its two seeded stages (:func:`fit_stages`:
Adam; ReduceLROnPlateau and EarlyStopping on the validation loss, best weights kept,
one line of progress per epoch), then hands the shared pipeline what the other route
hands it: every image's descriptor (the trunk's output) and each head's dense weights.
Calibration, predictions, metrics, plots and the report are the same code.

The run folder gains ``trunk.keras`` (images -> descriptor, the trained trunk) and
``scratch.json`` (its settings, what each stage did and the trunk's sha256, which the
heads' ``backbone_sha256`` names); ``export`` converts the trunk with tf2onnx and puts
the heads on it (``export.scratch_export``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from gender_cli.atomic import names_file
from gender_cli.contract import AGE_HEAD, AGE_RANGE, GENDER_HEAD, LABELS
from gender_cli.convert.matfile import sha256_file
from gender_cli.errors import Option, RequestError
from gender_cli.export.scratch_export import DESCRIPTOR, SCRATCH_FILE, TRUNK_FILE
from gender_cli.head_spec import class_ages
from gender_cli.infer.detect import check_settings
from gender_cli.tf_quiet import import_keras, native_stderr_silenced
from gender_cli.train.age_head import AGE_LOSSES, AgeHeadConfig, mae_years_metric
from gender_cli.train.head_model import class_weights, seed_everything
from gender_cli.train.scratch_data import DecodedImages, decode_images, training_dataset
from gender_cli.train.scratch_model import (
    NOT_FROM_SCRATCH, STAGES, ScratchConfig, ScratchNetwork, describe_augmentation,
)
from gender_cli.train.train import Chosen, Fitted, ReadImages, TrainOptions

LR_FACTOR = 0.5  # ReduceLROnPlateau halves the rate
MIN_LR = 1e-6


@dataclass
class StagedHistory:
    """The per-epoch curves of one output across both stages, as the plots and
    ``history.json`` take them (``best_epoch`` counts from the first stage's first epoch)."""

    history: dict
    best_epoch: int
    epochs_run: int


@dataclass
class StagesRun:
    network: ScratchNetwork
    history: dict  # Keras' keys, both stages one after the other, plus "stage" per epoch
    stages: list[dict]  # per stage: name, epochs run, best epoch, best val_loss, learning rates, seconds
    kept: str  # the stage whose best weights were kept
    seconds: float


def fit_stages(config: ScratchConfig, images: np.ndarray, rows: dict, targets: dict, weights: dict,
               heads: dict[str, int], learning_rate: float, seed: int, say) -> StagesRun:
    """Train ``config``'s network on ``images[rows["train"]]`` in the two stages of
    ``STAGES``, validating on ``rows["val"]``; ``targets``/``weights`` map each head
    (task) to its per-image target and sample weight."""
    keras = import_keras()

    seed_everything(seed)
    network = ScratchNetwork.build(config, heads, seed)

    def split(name: str, shuffle: bool):
        index = rows[name]
        return training_dataset(images[index], {t: v[index] for t, v in targets.items()},
                                {t: v[index] for t, v in weights.items()}, config.batch_size, seed, shuffle)

    train_data, val_data = split("train", True), split("val", False)
    history: dict[str, list] = {}
    stages: list[dict] = []
    best_loss, best_weights, kept = np.inf, None, None
    started = time.perf_counter()
    for stage in STAGES:
        model = network.stage_model(stage, seed)
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate),
            loss={task: "sparse_categorical_crossentropy" if task == GENDER_HEAD else "categorical_crossentropy"
                  for task in heads},
            loss_weights={task: 1.0 if task == GENDER_HEAD else config.age_loss_weight for task in heads},
            metrics={task: ["accuracy"] if task == GENDER_HEAD else [mae_years_metric(AGE_RANGE)] for task in heads},
        )
        stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=stage.stop_patience,
                                                restore_best_weights=True)
        stage_started = time.perf_counter()
        progress = _EpochLines(stage.name, config.epochs, say)
        with native_stderr_silenced():  # TF logs harmless NodeDef and layout notes on the first fit
            # the data set shuffles itself, seeded
            fit = model.fit(train_data, validation_data=val_data, epochs=config.epochs, shuffle=False, verbose=0,
                            callbacks=[
                stopper,
                keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=LR_FACTOR, patience=stage.lr_patience,
                                                  min_lr=MIN_LR),
                progress.callback(),
            ])
        run = {k: [float(v) for v in values] for k, values in fit.history.items()}
        epochs = len(run["val_loss"])
        best = int(np.argmin(run["val_loss"]))
        for key, values in run.items():
            history.setdefault(key, []).extend(values)
        history.setdefault("stage", []).extend([stage.name] * epochs)
        stages.append({"name": stage.name, "augment": stage.augment, "head_dropout": stage.head_dropout,
                       "lr_patience": stage.lr_patience, "stop_patience": stage.stop_patience,
                       "epochs_run": epochs, "best_epoch": best + 1, "best_val_loss": run["val_loss"][best],
                       "learning_rate_start": learning_rate, "seconds": round(time.perf_counter() - stage_started, 1)})
        learning_rate = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
        if run["val_loss"][best] < best_loss:  # stage two keeps stage one's weights unless it beats them
            best_loss, kept = run["val_loss"][best], stage.name
            best_weights = network.weights()
    network.set_weights(best_weights)
    return StagesRun(network, history, stages, kept, time.perf_counter() - started)


class _EpochLines:
    """One line per epoch through ``say``: the stage, the losses, the gender accuracy, the rate."""

    def __init__(self, stage: str, epochs: int, say):
        self.stage, self.epochs, self.say = stage, epochs, say
        self.started = time.perf_counter()

    def callback(self):
        keras = import_keras()
        return keras.callbacks.LambdaCallback(on_epoch_begin=self.begin, on_epoch_end=self.end)

    def begin(self, epoch, logs=None) -> None:
        self.started = time.perf_counter()

    def end(self, epoch, logs=None) -> None:
        logs = logs or {}
        figures = [f"loss {logs.get('loss', np.nan):.4f}", f"val_loss {logs.get('val_loss', np.nan):.4f}"]
        accuracy = _first(logs, ("val_gender_accuracy", "val_accuracy"))
        if accuracy is not None:
            figures.append(f"val accuracy {accuracy:.4f}")
        mae = _first(logs, ("val_age_mae_years", "val_mae_years"))
        if mae is not None:
            figures.append(f"val age MAE {mae:.2f}")
        if "learning_rate" in logs:
            figures.append(f"lr {float(logs['learning_rate']):.2g}")
        self.say(f"{self.stage} epoch {epoch + 1}/{self.epochs}: " + ", ".join(figures)
                 + f" ({time.perf_counter() - self.started:.0f} s)")


def _first(logs: dict, keys) -> float | None:
    return next((float(logs[k]) for k in keys if k in logs), None)


def _output_history(history: dict, task: str, metric: str, heads: dict) -> dict:
    """One head's curves under the names the plots read (``loss``, ``<metric>``,
    ``val_...``, ``learning_rate``): Keras prefixes them with the output's name only
    when the model has more than one output."""
    named = len(heads) > 1
    out = {}
    for name in ("loss", metric):
        for prefix in ("", "val_"):
            key = f"{prefix}{task}_{name}" if named else f"{prefix}{name}"
            if key not in history:
                key = f"{prefix}{task}_{name}"
            if key in history:
                out[f"{prefix}{name}"] = history[key]
    for key in ("learning_rate", "stage"):
        if key in history:
            out[key] = history[key]
    return out


class ScratchRoute:
    """The from-scratch route of ``train.train`` (see the module docstring)."""

    stats_key = "decoding"
    standin = False

    def __init__(self, options: TrainOptions, say):
        check_options(options)
        self.options = replace(options, descriptor=DESCRIPTOR)
        self.config: ScratchConfig = options.scratch
        self.say = say
        self.decoded: DecodedImages | None = None
        self.run: StagesRun | None = None
        self.sha256 = ""

    def begin(self, chosen: Chosen) -> TrainOptions:
        options = self.options
        if options.faces is not None:  # this network's faces are cut as VGG's are (a box crop)
            options = replace(options, faces=replace(options.faces, crop="box"))
            check_settings(options.faces)
            self.say(f"faces: the largest face of each image, {options.faces.summary()}")
        config = self.config
        self.say(f"network: from scratch, {len(config.widths)} blocks of {config.widths} channels, dense "
                 f"{config.dense}, input {config.input_size}x{config.input_size}")
        self.options = options
        return options

    def read(self, chosen: Chosen) -> ReadImages:
        options = self.options
        self.decoded = decoded = decode_images(chosen.paths, self.config.input_size, options.workers,
                                               options.faces, options.progress)
        rate = decoded.images_per_second
        stats = {"decoded": int(decoded.ok.sum()), "unreadable": len(decoded.failures),
                 "seconds": round(decoded.seconds, 3), "images_per_second": round(rate, 1) if rate else None,
                 "parallel_decodes": decoded.workers, "input_size": self.config.input_size,
                 "cache": "decoded once, in memory for the run"}
        self.say(f"decoded {stats['decoded']} images in {decoded.seconds:.1f} s ({decoded.workers} in parallel)")
        return ReadImages(decoded.ok, decoded.failures, stats)

    @property
    def backbone_sha256(self) -> str:
        return self.sha256

    def fit(self, rows: dict, chosen: Chosen, task) -> Fitted:
        options, config, images = self.options, self.config, self.decoded.images
        heads, targets, weights = {}, {}, {}
        if task.gender:
            heads[GENDER_HEAD] = len(LABELS)
            targets[GENDER_HEAD] = chosen.labels.astype(np.int64)
            balance = class_weights(chosen.labels[rows["train"]])
            weights[GENDER_HEAD] = np.array([balance[label] for label in chosen.labels], np.float32)
        if task.age:
            age_config = AgeHeadConfig(hidden=[], dropout=STAGES[-1].head_dropout, loss=options.age_loss,
                                       seed=options.seed)
            classes = class_ages(age_config.ages)
            known = np.where(chosen.aged, chosen.true_ages, classes[0])
            heads[AGE_HEAD] = len(classes)
            targets[AGE_HEAD] = AGE_LOSSES[age_config.loss].target(known, classes)
            weights[AGE_HEAD] = chosen.aged.astype(np.float32)
        self.run = run = fit_stages(config, images, rows, targets, weights, heads, options.learning_rate,
                                    options.seed, self.say)
        self.say(f"trained in {run.seconds:.0f} s; weights kept from the {run.kept} stage")
        ok = self.decoded.ok
        descriptors = np.zeros((len(ok), config.dense), np.float32)
        descriptors[ok] = run.network.descriptors(images[ok], config.batch_size)
        best_epoch = _kept_epoch(run)
        epochs_run = len(run.history["val_loss"])
        gender = age = None
        if task.gender:
            kernels, biases = run.network.head_weights(GENDER_HEAD)
            curves = _output_history(run.history, GENDER_HEAD, "accuracy", heads)
            gender = {"trained": StagedHistory(curves, best_epoch, epochs_run), "kernels": kernels,
                      "biases": biases, "hidden": [], "dropout": STAGES[-1].head_dropout}
        if task.age:
            kernels, biases = run.network.head_weights(AGE_HEAD)
            curves = _output_history(run.history, AGE_HEAD, "mae_years", heads)
            age = {"trained": StagedHistory(curves, best_epoch, epochs_run), "kernels": kernels, "biases": biases,
                   "config": age_config}
        return Fitted(descriptors, gender, age)

    def save(self, run_dir: Path) -> dict[str, Path]:
        files = save_trunk(run_dir, self.run.network, stages=self.run.stages, kept=self.run.kept,
                           training_seconds=round(self.run.seconds, 1), seed=self.options.seed)
        self.sha256 = json.loads(files["scratch"].read_text())["trunk_sha256"]
        return files

    def backbone_record(self) -> dict:
        return {"from_scratch": True, "sha256": self.sha256, "trunk": TRUNK_FILE, "descriptor": DESCRIPTOR,
                "standin": False}

    def export_network(self, run_dir: Path):
        from gender_cli.export.scratch_export import load_scratch_network

        return load_scratch_network(run_dir)

    def training_lines(self, fitted: Fitted, gender: dict | None, age: dict | None) -> list[str]:
        config, run, options = self.config, self.run, self.options
        lines = [
            f"- network: trained from scratch; {len(config.widths)} blocks of {config.convs_per_block} x (3x3 "
            f"convolution, batch normalization, ReLU) and 2x2 max pooling, {config.widths} channels; flatten, "
            f"dropout {config.dropout}, dense {config.dense} with ReLU (the descriptor {DESCRIPTOR!r}); one "
            f"dense softmax layer per head; {run.network.parameters():,} parameters; input "
            f"{config.input_size}x{config.input_size}",
            f"- input: every image decoded once through tf.data ({self.decoded.workers} in parallel, "
            f"{self.decoded.seconds:.1f} s), kept in memory for the run",
            f"- Adam lr {options.learning_rate}, batch {config.batch_size}, seed {options.seed}; at most "
            f"{config.epochs} epochs per stage; the rate halves after `lr_patience` epochs without a lower "
            "validation loss, a stage ends after `stop_patience` and keeps its best weights",
        ]
        for stage in run.stages:
            what = (f"augmented ({describe_augmentation(config.augmentation)})" if stage["augment"]
                    else f"no augmentation, dropout {stage['head_dropout']:g} before the heads")
            lines.append(f"- stage {stage['name']}: {what}; lr_patience {stage['lr_patience']}, stop_patience "
                         f"{stage['stop_patience']}; {stage['epochs_run']} epochs from lr "
                         f"{stage['learning_rate_start']:.2g}, best validation loss {stage['best_val_loss']:.4f} "
                         f"at its epoch {stage['best_epoch']}; {stage['seconds']:.0f} s")
        lines.append(f"- kept: the best weights of the {run.kept} stage (epoch {_kept_epoch(run)} of "
                     f"{len(run.history['val_loss'])}); training took {run.seconds:.0f} s")
        return lines


def save_trunk(run_dir: Path, network: ScratchNetwork, **facts) -> dict[str, Path]:
    """``trunk.keras`` and ``scratch.json`` (the network's settings, its sha256 and
    ``facts`` about its training) in ``run_dir``, as export reads them."""
    trunk = Path(run_dir) / TRUNK_FILE
    with names_file(trunk):
        network.trunk.save(trunk)
    config = network.config
    record = {"descriptor": DESCRIPTOR, "descriptor_dim": int(config.dense),
              "input_size": [config.input_size, config.input_size, 3], "trunk_sha256": sha256_file(trunk),
              "config": config.describe(), "parameters": network.parameters(), **facts}
    spec = Path(run_dir) / SCRATCH_FILE
    with names_file(spec):
        spec.write_text(json.dumps(record, indent=2))
    return {"trunk": trunk, "scratch": spec}


def check_options(options: TrainOptions) -> None:
    """RequestError for an option of the descriptor route set to anything but its default:
    a network trained from the images has no use for it."""
    defaults = TrainOptions()
    for name in NOT_FROM_SCRATCH:
        if getattr(options, name) != getattr(defaults, name):
            raise RequestError(Option(name), " does not apply to ", Option("from_scratch"),
                               " (the network is trained from the images)")


def _kept_epoch(run: StagesRun) -> int:
    """The kept weights' epoch, counted over both stages (1-based)."""
    names = [stage["name"] for stage in run.stages]
    kept = names.index(run.kept)
    return sum(stage["epochs_run"] for stage in run.stages[:kept]) + run.stages[kept]["best_epoch"]
