"""The PyTorch port against the NumPy reference, and ``bench --compare-torch``.

Tests that need torch skip with a reason where it is absent (it is never an install
requirement); the import-isolation test runs everywhere.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from gender_cli.cli.main import cli
from gender_cli.convert import reference
from gender_cli.convert.network import Layer, Network
from gender_cli.head_spec import HeadSpec

from helpers_infer import write_tiny_classifier  # noqa: E402

RTOL = 1e-4


@pytest.fixture
def torch():
    return pytest.importorskip("torch", reason="torch is not installed (optional: bench --compare-torch)")


def assert_close_to_reference(ours: np.ndarray, expected: np.ndarray, what: str):
    assert ours.shape == expected.shape, what
    scale = float(np.abs(expected).max()) or 1.0
    np.testing.assert_allclose(ours, expected, rtol=RTOL, atol=RTOL * 1e-1 * scale, err_msg=what)


def awkward_network(seed: int = 0) -> Network:
    """Asymmetric pads, stride 2, dilation, even-depth LRN, padded avg and max pools,
    a non-square input and an fc6 that covers its input, then fc7/relu7/fc8/prob."""
    rng = np.random.default_rng(seed)

    def conv(name, shape, **geometry):
        weights = rng.standard_normal(shape).astype(np.float32) * np.float32(np.sqrt(2 / np.prod(shape[:3])))
        return Layer(name=name, type="conv", weights=weights, bias=rng.normal(0, 0.1, shape[3]).astype(np.float32), **geometry)

    layers = [
        conv("conv_a", (3, 3, 3, 6), stride=(2, 2), pad=(1, 0, 2, 1)),
        Layer(name="relu_a", type="relu"),
        Layer(name="norm_a", type="lrn", lrn=(4, 2.0, 1e-4, 0.75)),  # even depth: 1 channel before, 2 after
        Layer(name="pool_avg", type="pool", pool=(3, 2), stride=(2, 1), pad=(1, 2, 0, 1), method="avg"),
        conv("conv_b", (3, 2, 6, 5), pad=(2, 1, 0, 2), dilate=(2, 1)),
        Layer(name="relu_b", type="relu"),
        Layer(name="dropout_b", type="dropout"),
        Layer(name="pool5", type="pool", pool=(2, 3), stride=(2, 2), pad=(1, 0, 0, 2), method="max"),
    ]
    network = Network(layers=layers, input_size=(23, 19, 3), mean=np.array([120.0, 110.0, 100.0], np.float32))
    _, h, w, c = reference.forward(network, np.zeros((1, 23, 19, 3), np.uint8), upto="pool5").shape
    network.layers += [
        conv("fc6", (h, w, c, 7)),
        Layer(name="relu6", type="relu"),
        conv("fc7", (1, 1, 7, 6)),
        Layer(name="relu7", type="relu"),
        conv("fc8", (1, 1, 6, 4)),
        Layer(name="prob", type="softmax"),
    ]
    return network


def images_for(network: Network, count: int = 3, seed: int = 1) -> np.ndarray:
    h, w, _ = network.input_size
    return np.random.default_rng(seed).integers(0, 256, (count, h, w, 3), dtype=np.uint8)


def random_head(input_dim: int, hidden=(5,), seed: int = 0, descriptor: str = "relu7"):
    rng = np.random.default_rng(seed)
    widths = [input_dim, *hidden, 2]
    kernels = [rng.normal(0, 1 / np.sqrt(a), (a, b)).astype(np.float32) for a, b in zip(widths, widths[1:])]
    biases = [rng.normal(0, 0.1, b).astype(np.float32) for b in widths[1:]]
    spec = HeadSpec(descriptor=descriptor, input_dim=input_dim, hidden=list(hidden), dropout=0.3,
                    labels=["male", "female"], threshold=0.5, standin=True)
    return spec, kernels, biases


def numpy_head(descriptors: np.ndarray, kernels, biases) -> np.ndarray:
    x = descriptors.astype(np.float64)
    for index, (kernel, bias) in enumerate(zip(kernels, biases)):
        x = x @ kernel.astype(np.float64) + bias
        if index < len(kernels) - 1:
            x = np.maximum(x, 0)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("upto", ["conv1_1", "pool1", "conv3_3", "pool5", "fc6", "relu7", "fc8", "prob"])
def test_port_matches_the_reference_on_the_tiny_stand_in(torch, tiny_network, upto):
    from gender_cli.bench.torch_port import forward_numpy

    images = images_for(tiny_network, 2)
    assert_close_to_reference(forward_numpy(tiny_network, images, upto), reference.forward(tiny_network, images, upto), upto)


def test_port_matches_the_reference_layer_by_layer_on_awkward_geometry(torch):
    from gender_cli.bench.torch_port import forward_numpy

    network = awkward_network()
    images = images_for(network, 3)
    for layer in network.layers:
        expected = reference.forward(network, images, layer.name)
        assert_close_to_reference(forward_numpy(network, images, layer.name), expected, layer.name)
    # padding matters here: the average pool's edge windows hold fewer in-image cells
    pool = network.layers[3]
    assert pool.method == "avg" and any(pool.pad)


@pytest.mark.parametrize("descriptor", ["relu7", "pool5", "fc8"])
def test_classifier_gives_the_reference_descriptor_and_numpy_head(torch, tiny_network, descriptor):
    from gender_cli.bench.same_weights import Head
    from gender_cli.bench.torch_port import Classifier

    images = images_for(tiny_network, 4)
    expected_descriptor = reference.descriptor(tiny_network, images, descriptor)
    spec, kernels, biases = random_head(expected_descriptor.shape[1], descriptor=descriptor)
    net = Classifier(tiny_network, descriptor, Head(spec, kernels, biases)).eval()
    with torch.inference_mode():
        outputs = {name: value.numpy() for name, value in net(torch.from_numpy(images)).items()}
    assert set(outputs) == {"descriptor", "probabilities"}
    assert outputs["descriptor"].dtype == np.float32 and outputs["probabilities"].dtype == np.float32
    assert_close_to_reference(outputs["descriptor"], expected_descriptor, descriptor)
    expected = numpy_head(expected_descriptor, kernels, biases)
    np.testing.assert_allclose(outputs["probabilities"], expected, rtol=RTOL, atol=1e-6)
    assert outputs["probabilities"].argmax(1).tolist() == expected.argmax(1).tolist()


@pytest.mark.parametrize("channels_last", [False, True])
def test_classifier_without_head_gives_the_descriptor_only(torch, tiny_network, channels_last):
    """channels_last is the CUDA layout; the CPU runs it too, with the same result."""
    from gender_cli.bench.torch_port import Classifier

    images = images_for(tiny_network, 2)
    net = Classifier(tiny_network, "relu7", channels_last=channels_last)
    conv_weight = net.backbone.layers[0].weight
    assert conv_weight.is_contiguous(memory_format=torch.channels_last) == channels_last
    with torch.inference_mode():
        outputs = net(torch.from_numpy(images))
    assert list(outputs) == ["descriptor"]
    assert_close_to_reference(outputs["descriptor"].numpy(), reference.descriptor(tiny_network, images, "relu7"), "relu7")


def test_fp16_port_stays_close_to_the_reference(torch, tiny_network):
    """fp16 is what runs on CUDA; on CPU it only shows the casts are in the right places."""
    from gender_cli.bench.torch_port import forward_numpy

    images = images_for(tiny_network, 2)
    try:
        ours = forward_numpy(tiny_network, images, "relu7", precision="fp16")
    except RuntimeError as exc:  # an old CPU build without half kernels
        pytest.skip(f"this torch runs no float16 on CPU: {exc}")
    expected = reference.forward(tiny_network, images, "relu7")
    assert np.linalg.norm(ours - expected) / np.linalg.norm(expected) < 2e-2


def _workspace_classifier(network: Network, descriptor: str = "relu7"):
    """convert + train + export, as the verbs leave them: network, head run, classifier."""
    from gender_cli import workspace
    from gender_cli.export.export import export

    network.save(workspace.network_dir())
    dim = reference.descriptor(network, images_for(network, 1), descriptor).shape[1]
    spec, kernels, biases = random_head(dim, descriptor=descriptor)
    run_dir = workspace.new_run_dir()
    spec.save(run_dir, kernels, biases)
    return export(network, workspace.classifier_path("fp32"), descriptor=descriptor, head=run_dir).path


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_bench_compare_torch_reports_pytorch_beside_onnxruntime(torch, tiny_network, tmp_path):
    model = _workspace_classifier(tiny_network)
    out = tmp_path / "bench.json"
    result = run("bench", "--iters", 3, "--warmup", 1, "--batch", 2, "--compare-torch", "-o", out, "--no-variants")
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["model"] == str(model)
    figures = data["pytorch"]
    assert figures["torch"] == torch.__version__ and figures["device"] == "cpu" and figures["precision"] == "fp32"
    assert figures["iters"] == 3 and figures["images_per_second"] > 0
    assert figures["latency_ms"]["min"] <= figures["latency_ms"]["p50"] <= figures["latency_ms"]["p99"]
    assert figures["onnxruntime_speedup"] == pytest.approx(
        data["model_only"]["images_per_second"] / figures["images_per_second"]
    )
    assert figures["threads"] == data["threads"]["intra_op"]
    agreement = figures["agreement_with_onnxruntime"]  # the same weights really ran
    assert agreement["probabilities_max_abs_difference"] < 1e-4
    assert agreement["descriptor_relative_error"] < 1e-4
    assert figures["notes"] == []
    assert "pytorch" in result.stdout and "onnxruntime x" in result.stdout


def test_compare_torch_without_a_converted_network_is_skipped_with_a_reason(torch, tmp_path):
    write_tiny_classifier(tmp_path / "classifier-fp32.onnx", size=32)
    out = tmp_path / "b.json"
    result = run("bench", "--model", tmp_path / "classifier-fp32.onnx", "--iters", 5, "--compare-torch", "-o", out)
    assert result.exit_code == 0, result.output
    assert "gender-cli convert" in json.loads(out.read_text())["pytorch"]["skipped"]
    assert "pytorch" in result.stdout and "skipped" in result.stdout


def test_without_the_flag_pytorch_is_not_run(tmp_path):
    write_tiny_classifier(tmp_path / "classifier-fp32.onnx", size=32)
    out = tmp_path / "b.json"
    result = run("bench", "--model", tmp_path / "classifier-fp32.onnx", "--iters", 5, "-o", out)
    assert result.exit_code == 0, result.output
    pytorch = json.loads(out.read_text())["pytorch"]
    assert pytorch["requested"] is False and "images_per_second" not in pytorch
    assert not [line for line in result.stdout.splitlines() if line.startswith("pytorch")]


def test_bench_help_explains_compare_torch():
    result = run("bench", "--help")
    assert "--compare-torch" in result.output and "channels_last" in result.output


def test_bench_and_classify_never_import_torch():
    code = (
        "import sys; import gender_cli.bench.bench, gender_cli.bench.torch_compare, "
        "gender_cli.bench.same_weights, gender_cli.cli.cmd_bench, gender_cli.infer.classify; "
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"


def test_compare_torch_where_torch_is_absent_is_skipped_with_a_reason(tiny_network, tmp_path, monkeypatch):
    _workspace_classifier(tiny_network)
    monkeypatch.setitem(sys.modules, "torch", None)  # find_spec and import both see no torch
    out = tmp_path / "b.json"
    result = run("bench", "--iters", 2, "--batch", 2, "--compare-torch", "-o", out, "--no-variants")
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["pytorch"] == {"skipped": "torch is not installed"}
    assert "pytorch                  skipped: torch is not installed" in result.stdout
