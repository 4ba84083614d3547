"""export: the ONNX contract, numerics against the NumPy reference, errors, files, CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from click.testing import CliRunner

from gender_cli import contract, workspace
from gender_cli.cli.main import cli
from gender_cli.contract import Meta
from gender_cli.convert import reference
from gender_cli.errors import GenderCliError, ModelFileError
from gender_cli.export.export import export

from helpers_export import numpy_head, odd_network, residual_network, save_head  # noqa: E402

TINY_DIMS = {"relu7": 16, "fc8": 2622, "pool5": 8, "embedding": 8, "pooled": 16}
DLIB_DESCRIPTORS = ("embedding", "pooled")  # dlib's network has these; VGG-Face the others


def tiny_for(descriptor: str, tiny_network):
    """The tiny stand-in that has ``descriptor``: VGG-Face's, or dlib's network's."""
    from gender_cli.convert.dlib_resnet import dlib_resnet_network

    return dlib_resnet_network("tiny") if descriptor in DLIB_DESCRIPTORS else tiny_network
FILL_WEIGHTS = Path(__file__).resolve().parents[2] / "shared" / "device" / "fill_weights.py"


def session(path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def run(path, images) -> dict[str, np.ndarray]:
    s = session(path)
    return dict(zip([o.name for o in s.get_outputs()], s.run(None, {contract.INPUT_NAME: images})))


def images_uint8(n, size=(224, 224), seed=1):
    return np.random.default_rng(seed).integers(0, 256, (n, *size, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def classifier(tiny_network, tmp_path_factory):
    """A tiny fp32 classifier (relu7 head) and its head arrays."""
    tmp = tmp_path_factory.mktemp("classifier")
    head_dir, kernels, biases = save_head(tmp / "run", "relu7", TINY_DIMS["relu7"])
    result = export(tiny_network, tmp / "classifier.onnx", head=head_dir)
    return result, kernels, biases


# -- the contract ------------------------------------------------------------------------


def test_input_and_outputs_follow_the_contract(classifier):
    result, _, _ = classifier
    s = session(result.path)
    (inp,) = s.get_inputs()
    assert inp.name == contract.INPUT_NAME and inp.type == "tensor(uint8)"
    assert inp.shape == ["N", 224, 224, 3]
    outputs = {o.name: o for o in s.get_outputs()}
    assert set(outputs) == {contract.PROBABILITIES, contract.DESCRIPTOR}
    assert outputs[contract.PROBABILITIES].type == outputs[contract.DESCRIPTOR].type == "tensor(float)"
    assert outputs[contract.PROBABILITIES].shape == ["N", 2]
    assert outputs[contract.DESCRIPTOR].shape == ["N", TINY_DIMS["relu7"]]


@pytest.mark.parametrize("n", [1, 3, 64])
def test_batch_dimension_is_dynamic(classifier, n):
    result, _, _ = classifier
    out = run(result.path, images_uint8(n, seed=n))
    assert out[contract.PROBABILITIES].shape == (n, 2)
    assert out[contract.DESCRIPTOR].shape == (n, TINY_DIMS["relu7"])
    assert out[contract.PROBABILITIES].dtype == np.float32
    np.testing.assert_allclose(out[contract.PROBABILITIES].sum(axis=1), 1.0, atol=1e-6)


def test_checker_opset_and_ir_version(classifier):
    result, _, _ = classifier
    onnx.checker.check_model(str(result.path), full_check=True)
    model = onnx.load(str(result.path))
    assert model.ir_version == contract.IR_VERSION
    assert [(o.domain, o.version) for o in model.opset_import] == [("", contract.OPSET)]
    # NHWC uint8 in, then Cast -> Sub(mean) -> Transpose before the first Conv
    ops = [n.op_type for n in model.graph.node]
    assert ops[:4] == ["Cast", "Sub", "Transpose", "Conv"]
    assert "Dropout" not in ops


def test_classifier_metadata(classifier, tiny_network):
    result, _, _ = classifier
    meta = {p.key: p.value for p in onnx.load(str(result.path)).metadata_props}
    assert meta == result.metadata
    assert set(contract.REQUIRED_KEYS) <= set(meta)
    assert all(isinstance(v, str) for v in meta.values())
    assert json.loads(meta[Meta.LABELS]) == ["male", "female"]
    assert float(meta[Meta.THRESHOLD]) == 0.5
    assert json.loads(meta[Meta.INPUT_SIZE]) == [224, 224, 3]
    assert meta[Meta.CHANNEL_ORDER] == "RGB"
    np.testing.assert_allclose(json.loads(meta[Meta.MEAN]), tiny_network.mean, rtol=1e-6)
    assert meta[Meta.DESCRIPTOR] == "relu7" and meta[Meta.DESCRIPTOR_DIM] == "16"
    assert meta[Meta.PRECISION] == "fp32" and meta[Meta.KIND] == "classifier"
    assert meta[Meta.STANDIN] == "true" and meta[Meta.RESIZE] == "stretch"
    assert json.loads(meta[Meta.METRICS]) == {"accuracy": 0.5, "auc": 0.5}
    assert Meta.PRECISION_CHECK not in meta  # fp32 is the reference


def test_backbone_metadata_and_head_labels_threshold(tiny_network, tmp_path):
    backbone = export(tiny_network, tmp_path / "bb.onnx", descriptor="pool5")
    meta = backbone.metadata
    assert meta[Meta.KIND] == "backbone" and meta[Meta.DESCRIPTOR] == "pool5"
    assert json.loads(meta[Meta.LABELS]) == list(contract.LABELS) and meta[Meta.THRESHOLD] == "0.5"
    assert Meta.METRICS not in meta
    assert [o.name for o in session(backbone.path).get_outputs()] == [contract.DESCRIPTOR]

    head_dir, _, _ = save_head(tmp_path / "run", "relu7", 16, labels=["female", "male"], threshold=0.37,
                               standin=False, backbone_sha256="")
    real = tiny_network.truncated("prob")
    real.standin = False
    real.source_sha256 = "ab" * 32
    meta = export(real, tmp_path / "c.onnx", head=head_dir).metadata
    assert json.loads(meta[Meta.LABELS]) == ["female", "male"]
    assert float(meta[Meta.THRESHOLD]) == 0.37
    assert meta[Meta.STANDIN] == "false" and meta[Meta.SOURCE_SHA256] == "ab" * 32


# -- numerics ----------------------------------------------------------------------------


@pytest.mark.parametrize("descriptor", list(contract.LAYER_DESCRIPTORS))
def test_descriptor_and_probabilities_match_numpy(tiny_network, tmp_path, descriptor):
    network = tiny_for(descriptor, tiny_network)
    head_dir, kernels, biases = save_head(tmp_path / "run", descriptor, TINY_DIMS[descriptor], seed=3)
    result = export(network, tmp_path / "c.onnx", descriptor=descriptor, head=head_dir)
    images = images_uint8(3, size=network.input_size[:2], seed=11)
    out = run(result.path, images)
    expected = reference.descriptor(network, images, descriptor)
    error = np.abs(out[contract.DESCRIPTOR] - expected).max() / np.abs(expected).max()
    assert error <= 1e-4, f"{descriptor}: relative error {error:.2e}"
    probabilities = numpy_head(expected, kernels, biases)
    np.testing.assert_allclose(out[contract.PROBABILITIES], probabilities, atol=1e-4)
    assert result.metadata[Meta.DESCRIPTOR_DIM] == str(TINY_DIMS[descriptor])


@pytest.mark.parametrize("descriptor", list(contract.LAYER_DESCRIPTORS))
def test_every_layer_type_and_geometry_matches_numpy(tmp_path, descriptor):
    """LRN, avg pool with padding, dilation, stride, asymmetric pads, non-square input;
    dlib's descriptors on a residual graph with joins of unequal sizes."""
    net = residual_network() if descriptor in DLIB_DESCRIPTORS else odd_network()
    result = export(net, tmp_path / "odd.onnx", descriptor=descriptor)
    images = images_uint8(4, size=net.input_size[:2], seed=5)
    got = run(result.path, images)[contract.DESCRIPTOR]
    expected = reference.descriptor(net, images, descriptor)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    ops = {n.op_type for n in onnx.load(str(result.path)).graph.node}
    if descriptor in DLIB_DESCRIPTORS:  # joins of unequal sizes; each scale-and-shift folded into its conv
        assert {"Pad", "Add", "AveragePool", "MaxPool", "Conv"} <= ops and "Mul" not in ops
    else:
        assert {"LRN", "AveragePool", "MaxPool", "Conv"} <= ops


def test_lrn_alpha_is_scaled_for_onnx(tmp_path):
    model = onnx.load(str(export(odd_network(), tmp_path / "o.onnx", descriptor="pool5").path))
    (lrn,) = [n for n in model.graph.node if n.op_type == "LRN"]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in lrn.attribute}
    assert attrs["size"] == 5 and attrs["bias"] == pytest.approx(2.0)
    assert attrs["alpha"] == pytest.approx(5e-4)  # MatConvNet alpha 1e-4 times depth 5


def test_backbone_stops_at_the_descriptor(tiny_network, tmp_path):
    relu7 = onnx.load(str(export(tiny_network, tmp_path / "r.onnx", descriptor="relu7").path))
    names = {n.name for n in relu7.graph.node}
    assert "fc7" in names and "fc8" not in names and "prob" not in names
    pool5 = onnx.load(str(export(tiny_network, tmp_path / "p.onnx", descriptor="pool5").path))
    assert "fc6" not in {n.name for n in pool5.graph.node}
    assert "GlobalAveragePool" in {n.op_type for n in pool5.graph.node}


@pytest.mark.slow
def test_matches_keras(tiny_network, tmp_path):
    keras_model = pytest.importorskip("gender_cli.convert.keras_model")
    for descriptor in contract.LAYER_DESCRIPTORS:
        network = tiny_for(descriptor, tiny_network)
        images = images_uint8(2, size=network.input_size[:2], seed=4)
        model = keras_model.keras_descriptor_model(network, descriptor)
        expected = np.asarray(model(images.astype(np.float32)))
        got = run(export(network, tmp_path / f"{descriptor}.onnx", descriptor=descriptor).path,
                  images)[contract.DESCRIPTOR]
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


# -- the file ----------------------------------------------------------------------------


def test_streamed_file_is_exactly_what_onnx_save_writes(classifier):
    result, _, _ = classifier
    data = result.path.read_bytes()
    assert onnx.load_from_string(data).SerializeToString() == data


def test_failed_write_leaves_no_file_and_keeps_the_old_one(tiny_network, tmp_path, monkeypatch):
    from gender_cli.export import proto_writer

    out = tmp_path / "m.onnx"
    out.write_bytes(b"old model")
    calls = {"n": 0}
    original = proto_writer._write_array

    def failing(f, array):
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError("disk full")
        original(f, array)

    monkeypatch.setattr(proto_writer, "_write_array", failing)
    with pytest.raises(OSError, match="disk full"):
        export(tiny_network, out, external_data=True)
    assert out.read_bytes() == b"old model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_external_data_side_file(tiny_network, tmp_path):
    single = export(tiny_network, tmp_path / "single.onnx", descriptor="fc8")
    split = export(tiny_network, tmp_path / "split.onnx", descriptor="fc8", external_data=True)
    side = tmp_path / "split.onnx.data"
    assert split.files == [split.path, side] and side.is_file()
    assert split.path.stat().st_size < 64 * 1024 < side.stat().st_size
    model = onnx.load(str(split.path), load_external_data=False)
    external = [t for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    assert external and all({e.key: e.value for e in t.external_data}["location"] == side.name for t in external)
    assert all(onnx.helper.tensor_dtype_to_np_dtype(t.data_type).kind == "f" for t in external)
    onnx.checker.check_model(str(split.path))
    images = images_uint8(2, seed=9)
    np.testing.assert_array_equal(run(split.path, images)[contract.DESCRIPTOR],
                                  run(single.path, images)[contract.DESCRIPTOR])
    assert split.metadata == single.metadata


def test_graph_alone_can_be_filled_by_the_device_script(tiny_network, tmp_path):
    if not FILL_WEIGHTS.is_file():
        pytest.skip(f"{FILL_WEIGHTS} not present")
    split = export(tiny_network, tmp_path / "m.onnx", descriptor="relu7", external_data=True)
    host = tmp_path / "host"
    host.mkdir()
    shutil.copy(split.path, host / "m.onnx")  # the graph travels alone
    filled = subprocess.run([sys.executable, str(FILL_WEIGHTS), str(host / "m.onnx")],
                            capture_output=True, text=True, timeout=120)
    assert filled.returncode == 0, filled.stderr
    assert (host / "m.onnx.data").stat().st_size == (tmp_path / "m.onnx.data").stat().st_size
    out = run(host / "m.onnx", images_uint8(2))
    assert out[contract.DESCRIPTOR].shape == (2, 16) and np.isfinite(out[contract.DESCRIPTOR]).all()


# -- errors ------------------------------------------------------------------------------


def test_head_with_wrong_input_size_is_a_clear_error(tiny_network, tmp_path):
    head_dir, _, _ = save_head(tmp_path / "run", "relu7", 10)
    with pytest.raises(ModelFileError, match=r"takes 10 inputs .* 'relu7' descriptor has 16 dimensions"):
        export(tiny_network, tmp_path / "c.onnx", head=head_dir)
    assert not (tmp_path / "c.onnx").exists()


def test_head_for_another_descriptor_or_weights_is_an_error(tiny_network, tmp_path):
    head_dir, _, _ = save_head(tmp_path / "run", "pool5", 8)
    with pytest.raises(ModelFileError, match="trained on descriptor 'pool5', not 'relu7'"):
        export(tiny_network, tmp_path / "c.onnx", descriptor="relu7", head=head_dir)
    other, _, _ = save_head(tmp_path / "run2", "relu7", 16, backbone_sha256="1" * 64)
    net = tiny_network.truncated("prob")
    net.source_sha256 = "2" * 64
    with pytest.raises(ModelFileError, match="train a head on this network"):
        export(net, tmp_path / "c.onnx", head=other)


def test_unknown_precision_descriptor_and_missing_calibration(tiny_network, tmp_path):
    with pytest.raises(GenderCliError, match="unknown precision 'bf16'"):
        export(tiny_network, tmp_path / "x.onnx", precision="bf16")
    with pytest.raises(GenderCliError, match="unknown descriptor 'fc7'"):
        export(tiny_network, tmp_path / "x.onnx", descriptor="fc7")
    with pytest.raises(GenderCliError, match="int8 export needs calibration images"):
        export(tiny_network, tmp_path / "x.onnx", precision="int8")


def test_unsupported_layer_names_layer_and_supported_types(tiny_network, tmp_path):
    net = tiny_network.truncated("prob")
    net.layers = list(net.layers)
    net.layers[3] = type(net.layers[3])(name="bnorm1", type="bnorm")
    with pytest.raises(ModelFileError, match=r"layer 4 'bnorm1' has type 'bnorm'; supported types: conv"):
        export(net, tmp_path / "x.onnx")


# -- CLI ---------------------------------------------------------------------------------


@pytest.fixture
def converted(tiny_network, workspace):
    tiny_network.save(workspace_network := workspace / "converted" / "network")
    return workspace_network


def test_cli_backbone_when_no_head_with_note(converted):
    result = CliRunner().invoke(cli, ["export", "-q"])
    assert result.exit_code == 0, result.output
    assert "no trained head" in result.stderr and "backbone only" in result.stderr
    path = workspace.backbone_path("relu7")
    assert path.is_file() and str(path) in result.stdout
    assert "kind backbone, precision fp32, descriptor relu7 (16-d), outputs descriptor" in result.stdout
    assert "STAND-IN" in result.stderr


def test_cli_classifier_from_latest_head_takes_its_descriptor(converted):
    run_dir = workspace.new_run_dir()
    save_head(run_dir, "pool5", 8)
    result = CliRunner().invoke(cli, ["export", "--precision", "fp16"])
    assert result.exit_code == 0, result.output
    path = workspace.classifier_path("fp16")
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert meta[Meta.DESCRIPTOR] == "pool5" and meta[Meta.KIND] == "classifier"
    assert "fp16 vs fp32 on synthetic images" in result.stdout and "label_agreement" in result.stdout


def test_cli_option_errors(converted, tmp_path):
    run_dir = workspace.new_run_dir()
    save_head(run_dir, "relu7", 16)
    runner = CliRunner()
    r = runner.invoke(cli, ["export", "--descriptor", "pool5"])
    assert r.exit_code == 2 and "trained on 'relu7'" in r.output
    r = runner.invoke(cli, ["export", "--precision", "int8"])
    assert r.exit_code == 2 and "--calibration" in r.output
    r = runner.invoke(cli, ["export", "--head", str(run_dir), "--backbone-only"])
    assert r.exit_code == 2 and "exclude each other" in r.output
    bad = tmp_path / "bad"
    save_head(bad, "relu7", 12)
    r = runner.invoke(cli, ["export", "--head", str(bad), "-o", str(tmp_path / "x.onnx")])
    assert r.exit_code == 1 and r.output.count("\n") == 1 and "Error: the head in" in r.output


def test_cli_without_converted_model_names_convert(workspace):
    r = CliRunner().invoke(cli, ["export", "--backbone-only"])
    assert r.exit_code == 1 and "gender-cli convert" in r.output


TF_BLOCKED = (
    "import sys\n"
    "sys.modules['tensorflow'] = None\n"  # any 'import tensorflow' now raises ImportError
    "sys.modules['tf2onnx'] = None\n"
    "from gender_cli.cli.main import main\n"
    "try:\n"
    "    main(sys.argv[1:], standalone_mode=False)\n"
    "finally:\n"
    "    print('HEAVY', sorted(m for m in ('keras', 'tensorflow', 'tf2onnx') if sys.modules.get(m)))\n"
)


@pytest.mark.parametrize("source", ["mat", "folder"])
def test_export_runs_where_tensorflow_cannot_be_imported(tiny_network, tmp_path, source):
    if source == "mat":
        from gender_cli.convert.standin import make_standin

        model = make_standin(tmp_path / "vgg_face.mat", size="tiny", seed=0)
    else:
        model = tmp_path / "converted"
        tiny_network.save(model / "network")
    out = tmp_path / "out" / "model.onnx"
    proc = subprocess.run(
        [sys.executable, "-c", TF_BLOCKED, "export", str(model), "--backbone-only", "-o", str(out), "-q"],
        capture_output=True, text=True, timeout=300,
        env={**__import__("os").environ, "GENDER_CLI_HOME": str(tmp_path / "home")},
    )
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout
    assert out.is_file()
    onnx.checker.check_model(str(out))


def test_importing_export_modules_does_not_import_tensorflow():
    code = (
        "import importlib, pkgutil, sys\n"
        "import gender_cli.export as e\n"
        "for m in pkgutil.iter_modules(e.__path__): importlib.import_module('gender_cli.export.' + m.name)\n"
        "import gender_cli.cli.cmd_export\n"
        "print(sorted(m for m in ('tensorflow', 'keras', 'tf2onnx', 'scipy', 'h5py') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_the_default_classifier_is_chosen_not_the_newest(converted, tmp_path):
    """Exporting fp16 after fp32 leaves classify on fp32; --set-default moves it."""
    from helpers_export import write_image_folder

    run_dir = workspace.new_run_dir()
    save_head(run_dir, "relu7", 16)
    images = write_image_folder(tmp_path / "images", 3)
    runner = CliRunner()
    assert runner.invoke(cli, ["export"]).exit_code == 0
    assert runner.invoke(cli, ["export", "--precision", "fp16"]).exit_code == 0
    assert workspace.classifier_path("fp16").stat().st_mtime >= workspace.classifier_path("fp32").stat().st_mtime
    classify = runner.invoke(cli, ["classify", str(images), "-o", str(tmp_path / "a.csv")])
    assert classify.exit_code == 0 and f"Using {workspace.classifier_path('fp32')} (fp32)" in classify.stderr

    r = runner.invoke(cli, ["export", "--precision", "fp16", "--set-default"])
    assert r.exit_code == 0 and "default classifier:" in r.stdout
    assert workspace.default_classifier() == workspace.classifier_path("fp16")
    classify = runner.invoke(cli, ["classify", str(images), "-o", str(tmp_path / "b.csv")])
    assert classify.exit_code == 0 and f"Using {workspace.classifier_path('fp16')} (fp16)" in classify.stderr

    workspace.classifier_path("fp16").unlink()
    classify = runner.invoke(cli, ["classify", str(images), "-o", str(tmp_path / "c.csv")])
    assert classify.exit_code == 1 and "names 'classifier-fp16.onnx'" in classify.output
    assert "--set-default" in classify.output


def test_without_fp32_or_a_choice_there_is_no_default(converted):
    from helpers_infer import write_tiny_classifier

    write_tiny_classifier(workspace.classifier_path("int8"), precision="int8")
    with pytest.raises(GenderCliError, match=r"no default classifier .* \(it holds classifier-int8.onnx\)"):
        workspace.default_classifier()
    r = CliRunner().invoke(cli, ["export", "--backbone-only", "--set-default"])
    assert r.exit_code == 2 and "needs a classifier" in r.output


def test_cli_says_which_run_s_heads_it_used(converted):
    run_dir = workspace.new_run_dir()
    save_head(run_dir, "relu7", 16)
    result = CliRunner().invoke(cli, ["export", "-q"])
    assert result.exit_code == 0, result.output
    assert f"using the heads of the latest training run, {run_dir}" in result.stderr


def test_a_graph_that_misses_its_goal_exits_4_and_is_not_made_the_default(converted, monkeypatch):
    """A script must be able to tell: exit status 4, and --set-default leaves the default alone."""
    from gender_cli.export import export as export_module

    real = export_module.compare

    def missing(*args, **kwargs):
        return {**real(*args, **kwargs), "meets_goal": False}

    monkeypatch.setattr(export_module, "compare", missing)
    save_head(workspace.new_run_dir(), "relu7", 16)
    result = CliRunner().invoke(cli, ["export", "--precision", "fp16", "--set-default"])
    assert result.exit_code == 4, result.output
    assert "MISSES the goal" in result.stdout and "Not made the default classifier" in result.stderr
    assert workspace.classifier_path("fp16").is_file() and not workspace.default_pointer().exists()
