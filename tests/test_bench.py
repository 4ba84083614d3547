"""``gender-cli bench``: every figure in the JSON, statistics, side-by-side runs, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from gender_cli.bench.bench import latency_stats, sibling_variants, time_callable
from gender_cli.cli.main import cli
from gender_cli.infer.session import CUDA, open_session

from helpers_infer import write_tiny_classifier  # noqa: E402

SIZE = 32


@pytest.fixture
def models(tmp_path) -> Path:
    folder = tmp_path / "models"
    write_tiny_classifier(folder / "classifier-fp32.onnx", size=SIZE)
    write_tiny_classifier(folder / "classifier-fp16.onnx", size=SIZE, precision="fp16")
    return folder


@pytest.fixture
def images(tmp_path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)).save(folder / f"{i}.jpg")
    (folder / "broken.jpg").write_bytes(b"nope")
    return folder


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_json_has_every_field(models, images, tmp_path):
    out = tmp_path / "results" / "bench.json"
    result = run(
        "bench", "--model", models / "classifier-fp32.onnx", "--batch", 4, "--warmup", 2, "--iters", 7,
        "--images", images, "-o", out,
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    for key in (
        "timestamp", "command", "model", "providers", "precision", "standin", "device", "onnxruntime",
        "threads", "batch", "iters", "warmup", "model_only", "end_to_end", "variants", "input_size",
        "model_bytes", "pytorch",
    ):
        assert key in data, key
    assert data["batch"] == 4 and data["iters"] == 7 and data["warmup"] == 2
    assert data["providers"] == open_session(models / "classifier-fp32.onnx", "auto").providers
    assert data["precision"] == "fp32" and data["standin"] is True
    assert data["device"]["cpu_cores"] >= 1 and data["device"]["cpu"]
    assert data["threads"]["intra_op"] >= 1 and data["threads"]["decode_workers"] >= 1
    assert data["command"].startswith("gender-cli bench")
    model_only = data["model_only"]
    assert model_only["iters"] == 7 and model_only["images_per_second"] > 0
    latency = model_only["latency_ms"]
    assert latency["min"] <= latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]
    e2e = data["end_to_end"]
    assert e2e["files"] == 13 and e2e["failed_files"] == 1
    assert e2e["ratio_to_model_only"] == pytest.approx(e2e["images_per_second"] / model_only["images_per_second"])
    assert e2e["decode_only_images_per_second"] > 0
    assert set(data["variants"]) == {"fp32", "fp16"}
    assert data["variants"]["fp32"]["speed_vs_fp32"] == pytest.approx(1.0)
    assert data["variants"]["fp16"]["speed_vs_fp32"] > 0
    assert not [p for p in out.parent.iterdir() if p.name != "bench.json"]  # no temp file left
    assert "model-only" in result.stdout and "variant fp16" in result.stdout and "p99" in result.stdout


def test_latency_statistics_are_right():
    stats = latency_stats([0.1] * 98 + [0.2, 1.0], batch=10)
    assert stats["images_per_second"] == pytest.approx(1000 / 11.0)  # 100 batches of 10 in 9.8 + 0.2 + 1.0 s
    assert stats["latency_ms"]["p50"] == pytest.approx(100)
    assert stats["latency_ms"]["p99"] == pytest.approx(200 + 0.01 * 800)
    assert stats["latency_ms"]["max"] == pytest.approx(1000) and stats["iters"] == 100


def test_timing_honours_iters_and_the_time_target():
    calls = []
    seconds, iters = time_callable(lambda: calls.append(1), warmup=3, iters=4)
    assert iters == 4 and len(seconds) == 4 and len(calls) == 7
    seconds, iters = time_callable(lambda: None, warmup=0, iters=None, target_seconds=0.0)
    assert iters == 5  # the minimum
    import time

    seconds, iters = time_callable(lambda: time.sleep(0.01), warmup=0, iters=None, target_seconds=0.1)
    assert 5 <= iters <= 12 and sum(seconds) >= 0.1


def test_variants_found_beside_the_model(models):
    assert sibling_variants(models / "classifier-fp32.onnx") == {
        "fp32": models / "classifier-fp32.onnx",
        "fp16": models / "classifier-fp16.onnx",
    }


def test_no_variants_and_quiet(models):
    result = run("bench", "--model", models / "classifier-fp16.onnx", "--iters", 5, "--no-variants", "-q")
    assert result.exit_code == 0 and "variant fp" not in result.stdout
    assert "bench:" not in result.stderr


def test_compare_tf_without_a_converted_network_is_skipped_with_a_reason(models, tmp_path):
    out = tmp_path / "b.json"
    result = run("bench", "--model", models / "classifier-fp32.onnx", "--iters", 5, "--compare-tf", "-o", out)
    assert result.exit_code == 0, result.output
    assert "gender-cli convert" in json.loads(out.read_text())["tensorflow"]["skipped"]


def test_compare_tf_times_keras_on_the_same_weights(tiny_network, tmp_path):
    pytest.importorskip("tensorflow")
    from gender_cli import workspace
    from gender_cli.export.export import export

    tiny_network.save(workspace.network_dir())
    model = export(tiny_network, workspace.classifier_path("fp32") , descriptor="pool5").path
    out = tmp_path / "b.json"
    result = run("bench", "--iters", 5, "--batch", 2, "--compare-tf", "-o", out, "--no-variants")
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["model"] == str(model)
    tf = data["tensorflow"]
    assert tf["images_per_second"] > 0 and tf["iters"] == 5 and tf["onnxruntime_speedup"] > 0
    assert "tensorflow" in result.stdout


def test_exit_codes(models, tmp_path):
    assert run("bench", "--model", tmp_path / "absent.onnx").exit_code == 1
    result = run("bench")
    assert result.exit_code == 1 and "gender-cli export" in result.output
    assert run("bench", "--model", models / "classifier-fp32.onnx", "--batch", 0).exit_code == 2
    assert run("bench", "--model", models / "classifier-fp32.onnx", "--images", tmp_path / "nope").exit_code == 2
    if CUDA not in open_session(models / "classifier-fp32.onnx", "auto").providers:
        result = run("bench", "--model", models / "classifier-fp32.onnx", "--device", "cuda", "--iters", 5)
        assert result.exit_code == 1 and "--device cuda" in result.output


def test_compare_tf_shows_progress_and_keeps_tensorflow_logs_out(tiny_network, tmp_path):
    """The real command: TensorFlow's C++ start-up lines never reach the terminal."""
    import os
    import subprocess
    import sys

    pytest.importorskip("tensorflow")
    from gender_cli import workspace
    from gender_cli.export.export import export

    tiny_network.save(workspace.network_dir())
    export(tiny_network, workspace.classifier_path("fp32"), descriptor="pool5")
    env = {k: v for k, v in os.environ.items() if k != "GENDER_CLI_TF_LOGS"}
    done = subprocess.run(
        [sys.executable, "-m", "gender_cli", "bench", "--compare-tf", "--iters", "2", "--warmup", "1",
         "--batch", "2", "--no-variants"], capture_output=True, text=True, env=env, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    for native in ("absl", "cudart_stub", "cuInit", "I0000", "E0000", "W0000", "oneDNN"):
        assert native not in done.stderr, done.stderr
    shown = done.stderr.replace("\r", "\n")
    assert "model-only fp32: 100%" in shown and "3/3" in shown  # 1 warm-up + 2 timed
    assert "building the Keras model: 100%" in shown and "tensorflow: 100%" in shown


def test_stage_bars_end_at_their_final_count(capsys):
    from gender_cli.cli.progress import StageProgress

    progress = StageProgress(quiet=False, labels={"write": ("writing weights", "B", True)})
    progress("write", 0, 1000)
    progress("write", 400, 1000)
    progress("write", 1000, 1000)  # too soon after the last update for tqdm to draw on its own
    progress("model-only fp32", 0, 0)
    progress("model-only fp32", 7, 0)
    progress.close()
    lines = [line for line in capsys.readouterr().err.replace("\r", "\n").split("\n") if line.strip()]
    last_write = [line for line in lines if line.startswith("writing weights")][-1]
    last_timed = [line for line in lines if line.startswith("model-only fp32")][-1]
    assert "100%" in last_write and "1.00k/1.00k" in last_write
    assert "7batch" in last_timed


def test_framework_comparisons_rebuild_only_a_gender_head_and_say_so(tiny_network):
    from helpers_export import save_age_head, save_head

    from gender_cli import workspace
    from gender_cli.bench.same_weights import find_same_weights
    from gender_cli.export.export import export
    from gender_cli.infer.session import open_session

    relu7 = 16  # the tiny stand-in's relu7 width
    tiny_network.save(workspace.network_dir())
    age_only = workspace.new_run_dir()
    save_age_head(age_only, "relu7", relu7)
    model = open_session(export(tiny_network, workspace.classifier_path("fp32"), descriptor="relu7",
                                head=age_only).path, "cpu")
    weights = find_same_weights(model)  # an age-only run: the backbone alone, not an error
    assert weights.head is None
    assert any("no gender head" in note for note in weights.notes)
    assert any("age head is not rebuilt" in note for note in weights.notes)

    both = workspace.new_run_dir()
    save_head(both, "relu7", relu7)
    save_age_head(both, "relu7", relu7)
    weights = find_same_weights(model)
    assert weights.head is not None and weights.head.spec.descriptor == "relu7"
