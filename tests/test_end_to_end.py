"""The README's chain of verbs, bare, through the installed console script.

``convert`` → ``train`` → ``classify data/`` → ``bench --batch 64`` in a fresh
working directory holding a tiny stand-in ``vgg_face.mat`` and a ``data/`` folder;
each verb must find its predecessor's output in ``$GENDER_CLI_HOME``.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gender_cli.synthetic import write_known_answer_dataset

SCRIPT = Path(sys.executable).with_name("gender-cli")


def run(argv, cwd, env, timeout=600):
    result = subprocess.run(
        [str(SCRIPT), *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.fixture
def chain_dir(tmp_path, workspace):
    from gender_cli.convert.standin import make_standin

    make_standin(tmp_path / "vgg_face.mat", size="tiny", seed=3)
    write_known_answer_dataset(tmp_path / "data", per_class=30, seed=1)
    env = dict(os.environ, GENDER_CLI_HOME=str(workspace))
    return tmp_path, env, workspace


def test_used_by_chain_runs_bare_in_order(chain_dir):
    cwd, env, home = chain_dir
    assert SCRIPT.exists(), f"console script not installed next to {sys.executable}"

    converted = run(["convert"], cwd, env)
    assert converted.returncode == 0, converted.stderr
    assert (home / "converted" / "network" / "network.json").is_file()
    assert not (home / "converted" / "model.keras").exists()  # only with convert --keras

    trained = run(["train", "--epochs", "30"], cwd, env)
    assert trained.returncode == 0, trained.stderr
    runs = sorted((home / "runs").iterdir())
    assert runs and (runs[-1] / "head.json").is_file() and (runs[-1] / "metrics.json").is_file()
    # train found convert's output: the run records the converted weights' hash
    source_sha = json.loads((home / "converted" / "network" / "network.json").read_text())["source_sha256"]
    assert json.loads((runs[-1] / "head.json").read_text())["backbone_sha256"] == source_sha
    assert (home / "models" / "classifier-fp32.onnx").is_file()

    classified = run(["classify", "data/"], cwd, env)
    assert classified.returncode == 0, classified.stderr
    rows = list(csv.DictReader((cwd / "predictions.csv").open(encoding="utf-8")))
    images = sorted(p for p in (cwd / "data").rglob("*") if p.is_file())
    assert len(rows) == len(images) == 60
    assert {Path(r["path"]).name for r in rows} == {p.name for p in images}
    assert all(r["error"] == "" for r in rows)
    assert "STAND-IN" in classified.stderr.upper()

    benched = run(["bench", "--batch", "64", "--iters", "2", "--warmup", "1"], cwd, env)
    assert benched.returncode == 0, benched.stderr
    assert "img/s" in benched.stdout + benched.stderr
