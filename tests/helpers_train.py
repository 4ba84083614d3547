"""Builders for the train/evaluate tests: data sets with a known answer and folder trees."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from gender_cli.synthetic import CLASS_COLOURS, synthetic_image


def write_colour_dataset(root: Path, per_class: int = 100, seed: int = 0, size: int = 64) -> dict[str, int]:
    """``root/male/*.png`` warm, ``root/female/*.png`` cool: a task with a known answer."""
    rng = np.random.default_rng(seed)
    for label in CLASS_COLOURS:
        folder = Path(root) / label
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(synthetic_image(rng, label, size)).save(folder / f"{label}_{i:03d}.png")
    return {label: per_class for label in CLASS_COLOURS}


def write_png(path: Path, value: int = 128, size: int = 8) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size, 3), value, np.uint8)).save(path)
    return path


def make_agegender_tree(root: Path, per_folder: int = 1, pools=("aligned", "valid")) -> int:
    """``root/combined/<pool>/<NN>_<F|M>/`` for ages 1-70: 140 folders per pool."""
    n = 0
    for pool in pools:
        for age in range(1, 71):
            for sex in "FM":
                for i in range(per_folder):
                    write_png(root / "combined" / pool / f"{age:02d}_{sex}" / f"img{i}.png", value=age)
                    n += 1
    return n


def utkface_subset(source: Path, target: Path, per_class: int) -> list[Path]:
    """Copy the first ``per_class`` male and female UTKFace files of ``source`` into ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    taken = {"0": 0, "1": 0}
    copied = []
    for path in sorted(source.iterdir()):
        gender = path.name.split("_")[1]
        if gender in taken and taken[gender] < per_class:
            taken[gender] += 1
            copied.append(Path(shutil.copy2(path, target / path.name)))
    return copied


def write_manifest(path: Path, rows: list[dict], columns=("path", "gender", "split")) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns))
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in columns})
    return path


def read_csv(path: Path) -> list[dict]:
    with Path(path).open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def png_ok(path: Path) -> bool:
    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        return img.format == "PNG" and img.size[0] > 50 and img.size[1] > 50 and os.path.getsize(path) > 0


_RUNS: dict = {}


def colour_run(tmp_path_factory, network, name: str = "colour", per_class: int = 100, **options):
    """A training run on the colour task, made once per test session and shared.

    Returns ``(TrainResult, home, data)``; the run has its own $GENDER_CLI_HOME.
    """
    import pytest

    from gender_cli.train.train import TrainOptions, train

    if name not in _RUNS:
        base = tmp_path_factory.mktemp(f"run-{name}")
        data = base / "data"
        write_colour_dataset(data, per_class=per_class, seed=0)
        home = base / "home"
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("GENDER_CLI_HOME", str(home))
            opts = dict(data=data, device="cpu", progress=False, workers=2, seed=0, epochs=40, learning_rate=5e-3)
            opts.update(options)
            result = train(TrainOptions(**opts), network=network)
        _RUNS[name] = (result, home, data)
    return _RUNS[name]


AGE_PER_CLASS = 200  # 400 images: enough for the age head to learn the known answer


def age_chain(tmp_path_factory, network) -> dict:
    """``gender-cli train data/ && gender-cli export && gender-cli classify data/`` through
    click on the known-answer age task (UTKFace names, ages 0-100 encoded in the
    images), made once per test session in its own $GENDER_CLI_HOME.

    Returns the folders, the run folder, the exported graph, the prediction file and
    each verb's click result.
    """
    import pytest
    from click.testing import CliRunner

    from gender_cli.cli.main import cli
    from gender_cli.synthetic import write_known_answer_age_dataset

    if "age-chain" not in _RUNS:
        base = tmp_path_factory.mktemp("age-chain")
        data, home = base / "data", base / "home"
        ages = write_known_answer_age_dataset(data, per_class=AGE_PER_CLASS, seed=0, size=64, suffix=".png")
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("GENDER_CLI_HOME", str(home))
            from gender_cli import workspace

            network.save(workspace.network_dir())  # as 'gender-cli convert' leaves it
            runner = CliRunner()
            trained = runner.invoke(cli, ["train", str(data), "--epochs", "80", "--lr", "0.01", "--workers", "2",
                                          "--device", "cpu", "--quiet"])
            assert trained.exit_code == 0, trained.output
            exported = runner.invoke(cli, ["export", "--quiet"])
            assert exported.exit_code == 0, exported.output
            predictions = base / "predictions.csv"
            classified = runner.invoke(cli, ["classify", str(data), "-o", str(predictions), "--device", "cpu",
                                             "--quiet"])
            run_dir = workspace.latest_head_dir()
        _RUNS["age-chain"] = {
            "data": data, "home": home, "ages": ages, "run_dir": run_dir, "trained": trained,
            "exported": exported, "classified": classified, "predictions": predictions,
            "model": home / "models" / "classifier-fp32.onnx",
        }
    return _RUNS["age-chain"]


UTKFACE_RACES = ("white", "black", "asian", "indian", "others")  # the data set's codes 0-4, written out here


def write_utkface_named(root: Path, counts: dict[int, int], seed: int = 0, size: int = 32) -> list[Path]:
    """Noise images named as UTKFace names them, ``counts[race code]`` of each race, random
    ages 1-90 and genders; women lean blue and men red, so a tiny graph's scores differ."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    written = []
    for race, count in counts.items():
        for i in range(count):
            gender, age = int(rng.integers(0, 2)), int(rng.integers(1, 91))
            base = np.array([150, 110, 100]) if gender == 0 else np.array([100, 110, 150])
            pixels = base + rng.normal(0, 45, 3) + rng.normal(0, 15, (size, size, 3))
            path = root / f"{age}_{gender}_{race}_2017{race:02d}{i:08d}.jpg.chip.jpg"
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, format="JPEG", quality=92)
            written.append(path)
    return written


def untrained_scratch_run(run_dir: Path, size: int = 32, heads=("gender",)) -> Path:
    """A ``train --from-scratch`` run folder holding a seeded, untrained network (blocks of
    4 and 8 channels) and its dense heads: what export reads, in seconds, without training."""
    from gender_cli.contract import AGE_HEAD, GENDER_HEAD, LABELS
    from gender_cli.head_spec import AgeHeadSpec, HeadSpec, class_ages
    from gender_cli.train.scratch import save_trunk
    from gender_cli.train.scratch_model import ScratchConfig, ScratchNetwork

    classes = {GENDER_HEAD: len(LABELS), AGE_HEAD: len(class_ages())}
    network = ScratchNetwork.build(ScratchConfig(input_size=size, widths=[4, 8], dense=16),
                                   {head: classes[head] for head in heads})
    run_dir.mkdir(parents=True, exist_ok=True)
    sha256 = json.loads(save_trunk(run_dir, network)["scratch"].read_text())["trunk_sha256"]
    for head in heads:
        kernels, biases = network.head_weights(head)
        common = dict(descriptor="penultimate", input_dim=16, hidden=[], dropout=0.0, backbone_sha256=sha256)
        spec = (HeadSpec(labels=list(LABELS), threshold=0.5, **common) if head == GENDER_HEAD
                else AgeHeadSpec(**common))
        spec.save(run_dir, kernels, biases)
    return run_dir
