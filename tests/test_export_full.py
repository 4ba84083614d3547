"""Full-size (145 M parameter) export: memory, and numerics against the NumPy reference."""

from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort
import pytest

from gender_cli import contract
from measure_export import TARGET_PEAK_GIB, run_measured
from gender_cli.convert import reference
from gender_cli.convert.network import Network
from gender_cli.convert.vgg_face import vgg_face_network

from helpers_export import numpy_head, save_head  # noqa: E402


@pytest.mark.slow
def test_full_size_classifier_matches_reference_within_memory_budget(tmp_path, workspace):
    vgg_face_network("full", seed=1).save(tmp_path / "converted" / "network")
    head_dir, kernels, biases = save_head(tmp_path / "run", "relu7", 4096, hidden=(32,), seed=2)
    out = tmp_path / "classifier.onnx"
    case = run_measured(["export", str(tmp_path / "converted"), "--head", str(head_dir), "-o", str(out), "-q"],
                        dict(os.environ, GENDER_CLI_HOME=str(workspace)))
    assert case["returncode"] == 0, case["stderr_tail"]
    print(f"full-size export: {case['seconds']} s, peak RSS {case['peak_rss_gib']} GiB")
    assert 0 < case["peak_rss_gib"] <= TARGET_PEAK_GIB

    images = np.random.default_rng(3).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = dict(zip([o.name for o in session.get_outputs()], session.run(None, {contract.INPUT_NAME: images})))
    del session
    network = Network.load(tmp_path / "converted" / "network", mmap=True)
    expected = reference.descriptor(network, images, "relu7")
    error = np.abs(got[contract.DESCRIPTOR] - expected).max() / np.abs(expected).max()
    assert error <= 1e-4, f"relative descriptor error {error:.2e}"
    np.testing.assert_allclose(got[contract.PROBABILITIES], numpy_head(expected, kernels, biases), atol=1e-4)
