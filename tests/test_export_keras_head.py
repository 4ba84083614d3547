"""``export --head FILE.keras``: any Keras head through tf2onnx, joined to the one graph."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from click.testing import CliRunner

from gender_cli import contract
from gender_cli.cli.main import cli
from gender_cli.contract import Meta
from gender_cli.errors import ModelFileError
from gender_cli.export.export import export
from gender_cli.head_spec import HeadSpec
from gender_cli.tf_quiet import import_keras
from gender_cli.train.head_model import save_keras_head

from helpers_export import save_head  # noqa: E402

DIM = 16  # the tiny stand-in's relu7


def _images(n: int = 12, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 224, 224, 3), dtype=np.uint8)


def _run(path, images) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {contract.INPUT_NAME: images})))


def test_tf2onnx_route_gives_the_built_in_probabilities(tiny_network, tmp_path):
    run_dir, kernels, biases = save_head(tmp_path / "run", "relu7", DIM, hidden=(8, 8), threshold=0.42)
    spec, _, _ = HeadSpec.load(run_dir)
    keras_file = save_keras_head(run_dir / "head.keras", spec, kernels, biases)  # as train writes it
    built_in = export(tiny_network, tmp_path / "built-in.onnx", head=run_dir)
    converted = export(tiny_network, tmp_path / "tf2onnx.onnx", head=keras_file)
    images = _images()
    a, b = _run(built_in.path, images), _run(converted.path, images)
    assert np.abs(a["probabilities"] - b["probabilities"]).max() < 1e-5
    np.testing.assert_array_equal(a["descriptor"], b["descriptor"])
    # the head.json beside the file supplies labels, threshold and metrics: same contract
    assert converted.metadata == built_in.metadata
    assert float(converted.metadata[Meta.THRESHOLD]) == pytest.approx(0.42)
    model = onnx.load(str(converted.path))
    assert [i.name for i in model.graph.input] == [contract.INPUT_NAME]
    assert [o.name for o in model.graph.output] == [contract.PROBABILITIES, contract.DESCRIPTOR]


def _batchnorm_head(path):
    keras = import_keras()
    keras.utils.set_random_seed(0)
    inputs = keras.Input((DIM,), name="descriptor")
    x = keras.layers.Dense(8)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Activation("tanh")(x)
    x = keras.layers.Dropout(0.3)(x)
    outputs = keras.layers.Dense(2, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile("adam", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    model.fit(rng.gamma(1.0, 1.0, (64, DIM)).astype(np.float32), rng.integers(0, 2, 64), epochs=3, verbose=0)
    model.save(path)
    return model


def test_a_non_dense_head_exports_and_matches_keras(tiny_network, tmp_path):
    keras_model = _batchnorm_head(tmp_path / "bn.keras")
    result = runner_export(tmp_path, "--head", tmp_path / "bn.keras", "-o", tmp_path / "bn.onnx")
    assert result.exit_code == 0, result.output
    outputs = _run(tmp_path / "bn.onnx", _images())
    expected = np.asarray(keras_model(outputs["descriptor"], training=False))
    assert np.abs(outputs["probabilities"] - expected).max() < 1e-5
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "bn.onnx")).metadata_props}
    assert meta[Meta.KIND] == "classifier" and meta[Meta.LABELS] == '["male", "female"]'
    assert meta[Meta.THRESHOLD] == "0.5" and meta[Meta.DESCRIPTOR] == "relu7"
    nodes = onnx.load(str(tmp_path / "bn.onnx")).graph.node
    assert any(n.op_type in ("BatchNormalization", "Tanh") and n.name.startswith("head_") for n in nodes)


def runner_export(tmp_path, *args):
    tiny = tmp_path / "converted"
    from gender_cli.convert.vgg_face import vgg_face_network

    vgg_face_network("tiny", seed=0).save(tiny / "network")
    return CliRunner().invoke(cli, ["export", str(tiny), *[str(a) for a in args]])


def test_a_head_that_does_not_give_probabilities_is_refused(tiny_network, tmp_path):
    keras = import_keras()
    inputs = keras.Input((DIM,))
    keras.Model(inputs, keras.layers.Dense(2)(inputs)).save(tmp_path / "logits.keras")
    with pytest.raises(ModelFileError, match="does not output probabilities.*softmax"):
        export(tiny_network, tmp_path / "x.onnx", head=tmp_path / "logits.keras")
    inputs = keras.Input((DIM + 1,))
    keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs)).save(tmp_path / "wide.keras")
    result = runner_export(tmp_path, "--head", tmp_path / "wide.keras", "-o", tmp_path / "y.onnx")
    assert result.exit_code == 1 and result.output.count("\n") == 1 and "(None, 16)" in result.output
    (tmp_path / "notes.txt").write_text("hello")
    result = runner_export(tmp_path, "--head", tmp_path / "notes.txt", "-o", tmp_path / "z.onnx")
    assert result.exit_code == 1 and "neither a 'gender-cli train' run folder nor a Keras model file" in result.output
