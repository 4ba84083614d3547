"""Sizing the Ray stages: defaults per cluster shape, and plans that cannot fit refused
(a plan that cannot be scheduled would otherwise make Ray wait silently)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gender_cli.errors import GenderCliError
from gender_cli.infer.ray_cluster import DECODE_CPUS, GPU_ACTOR_CPUS, ClusterShape, plan

TWO_CORES = ClusterShape(node_cpus=(2.0,), node_gpus=(0.0,))
TWO_GPU_NODES = ClusterShape(node_cpus=(16.0, 16.0), node_gpus=(2.0, 2.0))


def test_cpu_machine_gives_one_actor_most_of_the_cores():
    p = plan(TWO_CORES)
    assert (p.actors, p.gpus_per_actor, p.device) == (1, 0.0, "cpu")
    assert p.cpus_per_actor == 2 - DECODE_CPUS and p.threads == 2  # onnxruntime uses both cores
    assert p.cpus_per_actor + p.decode_cpus <= TWO_CORES.cpus  # a decode task always fits beside it


def test_gpu_cluster_gives_one_actor_per_gpu():
    p = plan(TWO_GPU_NODES)
    assert (p.actors, p.gpus_per_actor, p.cpus_per_actor, p.device) == (4, 1.0, GPU_ACTOR_CPUS, "cuda")
    shared = plan(TWO_GPU_NODES, gpus_per_actor=0.5)
    assert shared.actors == 8
    assert plan(TWO_GPU_NODES, device="cpu").device == "cpu"


@pytest.mark.parametrize(
    "shape, options, message",
    [
        (TWO_CORES, {"gpus_per_actor": 1}, "has 2 CPUs and 0 GPUs on 1 node"),
        (TWO_CORES, {"device": "cuda"}, "--device cuda: the Ray cluster has no GPUs"),
        (TWO_CORES, {"cpus_per_actor": 1.5, "actors": 2}, "need 3.5 CPUs"),
        (TWO_CORES, {"cpus_per_actor": 2}, "need 2.5 CPUs"),  # no room left for decoding
        (TWO_CORES, {"cpus_per_actor": 4}, "no node of the Ray cluster"),
        (TWO_GPU_NODES, {"gpus_per_actor": 1, "actors": 5}, "need 5 GPUs"),
        (TWO_GPU_NODES, {"gpus_per_actor": 3}, "no node of the Ray cluster"),
        (TWO_GPU_NODES, {"device": "cpu", "gpus_per_actor": 1}, "contradicts"),
    ],
)
def test_plans_that_cannot_fit_are_refused(shape, options, message):
    with pytest.raises(GenderCliError, match=message):
        plan(shape, **options)


def test_ray_engine_without_the_extra_names_it(tmp_path):
    from helpers_infer import write_tiny_classifier

    model = write_tiny_classifier(tmp_path / "m.onnx", size=32)
    (tmp_path / "faces").mkdir()
    code = (
        "import sys\n"
        "sys.modules['ray'] = None  # as if the [ray] extra were not installed\n"
        "from gender_cli.cli.main import main\n"
        f"main(['classify', {str(tmp_path / 'faces')!r}, '--model', {str(model)!r}, '--engine', 'ray',"
        f" '-o', {str(tmp_path / 'o.csv')!r}])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "needs ray" in result.stderr and "pip install 'gender-cli[ray]'" in result.stderr
    assert not (tmp_path / "o.csv").exists()
