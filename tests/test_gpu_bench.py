"""bench/scripts/gpu/gpu_bench.py, the one-shot GPU script, run end to end on the CPU.

It runs where gender-cli is not installed (the GPU host), so the test starts it with
``python -S`` and the dependencies' folder on PYTHONPATH: the editable install's
``.pth`` is then not read and the script must import the package from the tree.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "scripts" / "gpu" / "gpu_bench.py"


@pytest.mark.parametrize("network", ["vgg-face", "dlib"])
def test_gpu_bench_runs_on_cpu_without_the_package_installed(tmp_path, network):
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=sysconfig.get_paths()["purelib"], OUT=str(out))
    command = [
        sys.executable, "-S", str(SCRIPT), "--network", network, "--size", "tiny", "--device", "cpu", "--jpegs", "24",
        "--batch", "4", "--warmup", "1", "--iters", "2", "--work", str(tmp_path / "work"),
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((out / "bench-gpu.json").read_text())
    assert report["gender_cli_import"].startswith("mapped from")  # not the installed copy
    assert report["standin"] is True and report["size"] == "tiny" and report["batch"] == 4
    assert report["network"] == network
    assert set(report["runs"]) == {"fp32", "fp16"} and set(report["exports"]) == {"fp32", "fp16"}
    for precision, run in report["runs"].items():
        assert run["precision"] == precision and run["providers"] == ["CPUExecutionProvider"]
        assert run["model_only"]["iters"] == 2 and run["model_only"]["images_per_second"] > 0
        assert run["end_to_end"]["files"] == 24 and run["end_to_end"]["failed_files"] == 0
        pytorch = run["pytorch"]
        if report["torch"]["installed"]:  # as the script's own interpreter saw it
            assert pytorch["precision"] == "fp32" and pytorch["images_per_second"] > 0
            assert pytorch["onnxruntime_speedup"] > 0
        else:
            assert pytorch["skipped"] == "torch is not installed"
    assert report["exports"]["fp16"]["checks"]["images"] == 16
    assert [goal["applies"] for goal in report["goals"]] == [False, False, False]
    assert "ort_experiments" not in report  # CUDA only
    markdown = (out / "bench-gpu.md").read_text()
    assert "| fp16 |" in markdown and "STAND-IN" in markdown and "Goals" in markdown
    assert markdown.strip() in done.stdout  # the table is printed last, for the run's output tail


def test_gpu_bench_reports_loudly_when_cuda_is_missing(tmp_path):
    """Where onnxruntime has no usable CUDA (as here), --device cuda stops early with exit 3."""
    out = tmp_path / "out"
    command = [sys.executable, str(SCRIPT), "--size", "tiny", "--device", "cuda", "--jpegs", "4", "--iters", "1",
               "--out", str(out), "--no-torch", "--work", str(tmp_path / "work")]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    if done.returncode == 0:
        pytest.skip("CUDA loads on this machine: there is nothing to report")
    assert done.returncode == 3, done.stderr[-3000:]
    assert "CUDA DID NOT LOAD" in done.stdout
    assert "--device cuda" in json.loads((out / "bench-gpu.json").read_text())["cuda_error"]
