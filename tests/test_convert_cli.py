"""``gender-cli convert`` and the library behind it: outputs, atomicity, messages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from gender_cli import workspace
from gender_cli.cli.main import cli
from gender_cli.convert import reference
from gender_cli.convert.kinds import softmax
from gender_cli.convert.network import Network
from gender_cli.convert.source import load_network
from gender_cli.errors import GenderCliError, MissingArtifactError, ModelFileError

pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def tiny_mat(tmp_path_factory) -> Path:
    from gender_cli.convert.standin import make_standin

    return make_standin(tmp_path_factory.mktemp("mat") / "vgg_face.mat", size="tiny", seed=0)


def images(n=2, size=224):
    return np.random.default_rng(5).integers(0, 256, (n, size, size, 3)).astype(np.float32)


def assert_same_network(a: Network, b: Network):
    assert [l.describe() for l in a.layers] == [l.describe() for l in b.layers]
    for la, lb in zip(a.layers, b.layers):
        for attr in ("weights", "bias"):
            if getattr(la, attr) is not None:
                np.testing.assert_array_equal(getattr(la, attr), getattr(lb, attr))
    np.testing.assert_array_equal(a.mean, b.mean)
    assert a.input_size == b.input_size and a.class_names == b.class_names


def test_round_trip_from_mat_into_the_workspace(tiny_mat, tiny_network):
    result = CliRunner().invoke(cli, ["convert", str(tiny_mat)])
    assert result.exit_code == 0, result.output
    out = workspace.converted_dir()
    assert sorted(p.name for p in out.iterdir()) == ["network"]  # model.keras only with --keras
    assert sorted(p.name for p in out.parent.iterdir()) == ["converted"]  # no staging left
    assert f"39 layers, {tiny_network.num_params:,} parameters" in result.output
    assert "output (1, 1, 2622)" in result.output
    assert "input: MatConvNet vl_simplenn: RGB minus 129.186, 104.762, 93.594, scale 1 (none)" in result.output
    assert "STAND-IN" in result.output

    table = load_network(None)  # the workspace default that export and train use
    assert_same_network(table, tiny_network)
    assert table.standin and table.source_sha256 and table.mat_version == "5"
    assert table.source_format == "mat" and table.preprocessing["channel_order"] == "RGB"


def test_keras_model_only_when_asked(tiny_mat, tiny_network):
    import keras

    from gender_cli.convert import keras_model  # noqa: F401  (registers the custom layers)

    result = CliRunner().invoke(cli, ["convert", str(tiny_mat), "--keras", "--quiet"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in workspace.converted_dir().iterdir()) == ["model.keras", "network"]
    assert f"Keras model: {workspace.keras_model_path()}" in result.output
    model = keras.saving.load_model(workspace.keras_model_path())
    batch = images()
    expected = reference.forward(tiny_network, batch)
    np.testing.assert_allclose(np.asarray(model(batch)), expected, rtol=1e-5, atol=1e-7)


def test_convert_from_a_converted_folder_and_summary(tmp_path, tiny_network):
    from gender_cli.convert.convert import convert

    tiny_network.save(tmp_path / "src" / "network")
    steps = []
    summary = convert(tmp_path / "src", tmp_path / "out", progress=steps.append)
    assert steps == ["reading weights", "saving layer table"]
    assert summary["params"] == tiny_network.num_params and summary["layers"] == 39
    assert summary["output_shape"] == [1, 1, 2622] and summary["standin"] is True
    assert summary["keras_model"] is None and summary["head_dir"] is None
    assert summary["disk_bytes"] == sum(p.stat().st_size for p in (tmp_path / "out").rglob("*") if p.is_file())
    steps.clear()
    summary = convert(tmp_path / "src", tmp_path / "out", progress=steps.append, keras=True)
    assert steps == ["reading weights", "saving layer table", "building Keras model", "saving Keras model"]
    assert Path(summary["keras_model"]).is_file()
    assert_same_network(load_network(tmp_path / "out"), tiny_network)
    assert_same_network(load_network(tmp_path / "out" / "network"), tiny_network)


def test_interrupted_convert_keeps_the_previous_output(tmp_path, tiny_network, monkeypatch):
    from gender_cli.convert import convert as convert_module

    tiny_network.save(tmp_path / "src" / "network")
    out = tmp_path / "out"
    convert_module.convert(tmp_path / "src", out, keras=True)
    before = {p.name: p.stat().st_mtime_ns for p in out.rglob("*")}

    def broken_save(model, path):
        Path(path).write_bytes(b"half a model")
        raise KeyboardInterrupt

    monkeypatch.setattr(convert_module, "save_keras_archive", broken_save)
    with pytest.raises(KeyboardInterrupt):
        convert_module.convert(tmp_path / "src", out, keras=True)
    assert {p.name: p.stat().st_mtime_ns for p in out.rglob("*")} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]


def test_refuses_to_replace_a_foreign_folder(tmp_path, tiny_network):
    tiny_network.save(tmp_path / "src" / "network")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    result = CliRunner().invoke(cli, ["convert", str(tmp_path / "src"), "-o", str(tmp_path / "mine")])
    assert result.exit_code == 1
    assert "holds other files (notes.txt)" in result.output
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_missing_default_source_says_where_to_get_weights(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["convert"])
    assert result.exit_code == 1
    assert "no weights file in the current folder" in result.output
    for name in ("vgg_face.mat", "VGG_FACE.caffemodel", "rcmalli_vggface_tf_vgg16.h5", "vgg_face_weights.h5",
                 "gender_model_weights.h5"):
        assert name in result.output
    assert "https://www.robots.ox.ac.uk/~vgg/software/vgg_face/" in result.output
    assert "gender-cli make-standin" in result.output
    assert not workspace.converted_dir().exists()


def test_several_default_sources_need_a_name(tmp_path, monkeypatch, tiny_mat):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "vgg_face.mat").write_bytes(tiny_mat.read_bytes())
    (tmp_path / "vgg_face_weights.h5").write_bytes(b"")
    result = CliRunner().invoke(cli, ["convert"])
    assert result.exit_code == 2 and "name the one to convert" in result.output
    assert "vgg_face.mat" in result.output and "vgg_face_weights.h5" in result.output


def test_default_source_is_used_when_present(tmp_path, monkeypatch, tiny_mat):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "vgg_face.mat").write_bytes(tiny_mat.read_bytes())
    result = CliRunner().invoke(cli, ["convert", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "reading weights" not in result.output  # progress silenced
    assert (workspace.network_dir() / "network.json").is_file()


def test_missing_and_broken_sources(tmp_path):
    result = CliRunner().invoke(cli, ["convert", str(tmp_path / "nope.mat")])
    assert result.exit_code == 2 and "does not exist" in result.output
    (tmp_path / "broken.mat").write_bytes(b"MATLAB 5.0 MAT-file, garbage")
    result = CliRunner().invoke(cli, ["convert", str(tmp_path / "broken.mat")])
    assert result.exit_code == 1
    assert f"Error: {tmp_path / 'broken.mat'}" in result.output  # one line naming the file
    assert "Traceback" not in result.output
    assert not workspace.converted_dir().exists()


def test_load_network_errors(tmp_path):
    with pytest.raises(MissingArtifactError, match="gender-cli convert"):
        load_network(None)
    with pytest.raises(MissingArtifactError, match="without a converted network"):
        load_network(tmp_path)
    with pytest.raises(ModelFileError, match="no such file"):
        load_network(tmp_path / "absent.mat")
    assert issubclass(MissingArtifactError, GenderCliError)


@pytest.mark.slow
def test_full_size_convert(tmp_path):
    from gender_cli.convert.convert import convert
    from gender_cli.convert.standin import make_standin
    from gender_cli.convert.vgg_face import vgg_face_network

    mat = make_standin(tmp_path / "vgg_face.mat", size="full", seed=0)
    summary = convert(mat, tmp_path / "out", keras=True)
    full = vgg_face_network("full", seed=0)
    assert summary["params"] == full.num_params == 145_002_878
    table = load_network(tmp_path / "out")
    for name in ("conv1_1", "fc6", "fc8"):
        i = table.layer_index(name)
        np.testing.assert_array_equal(table.layers[i].weights, full.layers[i].weights)
    import keras

    model = keras.saving.load_model(tmp_path / "out" / "model.keras")
    logits_model = keras.Model(model.input, model.get_layer("fc8").output)
    batch = images(n=1)
    expected = reference.forward(full, batch, upto="fc8")
    scale = float(np.abs(expected).max())
    # float32 sums over up to 25088 terms per layer, 16 layers deep, against float64
    np.testing.assert_allclose(np.asarray(logits_model(batch)), expected, rtol=1e-5, atol=1e-5 * scale)
    probabilities = np.asarray(model(batch))
    expected_probabilities = softmax.reference(full.layers[-1], expected.astype(np.float64))
    np.testing.assert_allclose(probabilities, expected_probabilities, atol=1e-3)


def test_tf_free_modules_do_not_import_tensorflow():
    import subprocess
    import sys

    code = (
        "import sys, gender_cli.cli.cmd_convert, gender_cli.convert.convert, "
        "gender_cli.convert.source, gender_cli.convert.reference; "
        "print([m for m in ('tensorflow', 'keras', 'scipy', 'h5py') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
