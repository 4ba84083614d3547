"""Weights files that declare far more than they hold get one line, in bounded memory.

Each bomb (``helpers_bombs``: kilobytes that declare gigabytes) goes through the real
command in a subprocess whose address space is capped at 3 GiB, so a reader that
allocates what a file declares fails the test instead of the machine. The peak memory of
that process is the child's own (``os.wait4``).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys

import pytest

from helpers_bombs import (  # noqa: E402
    write_keras_declared, write_v5_inflating, write_v5_many_cells, write_v73_declared,
)

GIB = 1 << 30
PEAK_MB = 600  # the goal for every bomb
pytest.importorskip("h5py", reason="the [train] extra reads weights files")


def _capped() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (3 * GIB, 3 * GIB))


def run_capped(*args: str) -> tuple[int, str, float]:
    """(exit status, stderr, peak RSS in MB) of ``gender-cli ARGS`` under a 3 GiB cap."""
    child = subprocess.Popen([sys.executable, "-m", "gender_cli", *args], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, preexec_fn=_capped)
    stderr = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    return child.returncode, stderr, usage.ru_maxrss / 1024


BOMBS = {
    # file name -> (writer, what the one line says)
    "junk.mat": (lambda p: write_v5_inflating(p, "junk", GIB), "no MatConvNet network"),
    "declares.mat": (lambda p: write_v5_inflating(p, "net", 2 * GIB - (1 << 24)), "declares 2.0 GiB"),
    "inflates.mat": (lambda p: write_v5_inflating(p, "net", GIB - (1 << 24)), "would inflate 1028 times"),
    "cells.mat": (write_v5_many_cells, "layers declares 2000000000 cells"),
    "v73.mat": (write_v73_declared, "layers declares 11.9 GiB (40000x40000 float64)"),
    "unwritten.mat": (lambda p: write_v73_declared(p, shape=(8000, 8000)), "but stores 0 bytes"),
    "keras.h5": (write_keras_declared, "weight 'conv1_1/kernel:0' declares 6.0 GiB"),
}


@pytest.mark.parametrize("verb, name", [("inspect", name) for name in BOMBS]
                         + [("convert", "declares.mat"), ("convert", "v73.mat")])
def test_a_weights_bomb_gets_one_line_in_bounded_memory(name, verb, tmp_path):
    write, says = BOMBS[name]
    path = write(tmp_path / name)
    assert path.stat().st_size < 3 << 20
    status, stderr, peak = run_capped(verb, str(path), *(["-o", str(tmp_path / "out"), "-q"] if verb == "convert" else []))
    lines = stderr.strip().splitlines()
    assert status == 1 and len(lines) == 1 and lines[0].startswith("Error: "), stderr
    assert says in lines[0]
    assert peak < PEAK_MB, f"{peak:.0f} MB"


def test_an_onnx_initializer_larger_than_its_bytes_gets_one_line(tmp_path):
    """onnxruntime checks an initializer's bytes against its shape before allocating."""
    import onnx
    from onnx import TensorProto, helper

    weights = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[40000, 40000], raw_data=b"\0" * 16)
    graph = helper.make_graph([helper.make_node("Identity", ["w"], ["y"])], "bomb", [],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [40000, 40000])], [weights])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "bomb.onnx"
    path.write_bytes(model.SerializeToString())
    (tmp_path / "photos").mkdir()
    status, stderr, peak = run_capped("classify", str(tmp_path / "photos"), "--model", str(path), "-o",
                                      str(tmp_path / "rows.csv"))
    lines = stderr.strip().splitlines()
    assert status == 1 and len(lines) == 1 and "not a model onnxruntime can load" in lines[0], stderr
    assert peak < PEAK_MB
    assert onnx  # the [train] extra built it
