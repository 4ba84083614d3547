"""The README's chain of verbs ("The CLI in five lines"), bare, through the installed
console script.

``convert`` → ``train`` → ``classify photos/`` → ``classify photos/ --detect`` →
``bench --images photos/``, as the README's block says them, in a fresh working
directory holding a tiny stand-in ``vgg_face.mat``, a ``data/`` folder and ``photos/``,
with an empty ``$GENDER_CLI_HOME``: each verb must find its predecessor's output there.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from helpers_docs import README, blocks, make_folder, run_block

SCRIPT = Path(sys.executable).with_name("gender-cli")


def test_the_readme_chain_runs_bare_in_order(tmp_path, workspace, monkeypatch):
    assert SCRIPT.exists(), f"console script not installed next to {sys.executable}"
    (chain,) = [block for block in blocks(README) if block.mark == "chain"]
    assert [line.split()[1] for line in chain.code.splitlines()] == ["convert", "train", "classify", "classify", "bench"]
    make_folder(tmp_path, workspace)
    monkeypatch.chdir(tmp_path)
    assert not any(workspace.iterdir())

    done = run_block(chain, {}, tmp_path)

    home = workspace
    assert (home / "converted" / "network" / "network.json").is_file()
    assert not (home / "converted" / "model.keras").exists()  # only with convert --keras
    runs = sorted((home / "runs").iterdir())
    assert runs and (runs[-1] / "head.json").is_file() and (runs[-1] / "metrics.json").is_file()
    # train found convert's output: the run records the converted weights' hash
    source_sha = json.loads((home / "converted" / "network" / "network.json").read_text())["source_sha256"]
    assert json.loads((runs[-1] / "head.json").read_text())["backbone_sha256"] == source_sha
    assert (home / "models" / "classifier-fp32.onnx").is_file()

    rows = list(csv.DictReader((tmp_path / "rows.csv").open(encoding="utf-8")))
    photos = sorted(p for p in (tmp_path / "photos").rglob("*") if p.is_file())
    assert sorted(Path(r["path"]).name for r in rows) == [p.name for p in photos]
    assert all(r["error"] == "" and r["label"] in ("male", "female") for r in rows)
    assert "STAND-IN" in done.stderr.upper()
    with (tmp_path / "faces.csv").open(encoding="utf-8") as handle:
        assert next(csv.reader(handle))[:5] == ["path", "face", "faces", "box", "detector_score"]
    assert "img/s" in done.stdout
