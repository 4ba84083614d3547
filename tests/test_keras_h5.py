"""Keras HDF5 files: checked by Keras itself (load_weights into each library's own model), bad files, the gender model end to end."""

from __future__ import annotations

import csv

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from gender_cli.cli.main import cli
from gender_cli.convert.formats import read_network
from gender_cli.convert.keras_h5_writer import write_keras_h5
from gender_cli.convert.standin import make_standin
from gender_cli.convert.vgg_face import CHANNELS, vgg_face_network
from gender_cli.errors import ModelFileError

from helpers_formats import images_uint8, onnx_run, relative_error  # noqa: E402

pytest.importorskip("tensorflow")
TINY = CHANNELS["tiny"]


@pytest.fixture(scope="module")
def peers():
    from gender_cli.bench import peer_keras

    return peer_keras


@pytest.mark.parametrize("layout", ["weights", "model"])
def test_keras_vggface_file_in_keras_vggface_model(peers, tmp_path, layout):
    path = make_standin(tmp_path / "vgg16.h5", "tiny", layout, seed=3, format="keras-vggface")
    model = peers.keras_vggface_vgg16(TINY)
    model.load_weights(str(path), by_name=True)  # how keras_vggface.VGG16 loads its file
    images = images_uint8(2, seed=8)
    logits = peers.keras.Model(model.input, model.get_layer("fc8").output)
    expected = np.asarray(logits(peers.keras_vggface_preprocess(images)))
    table, _ = read_network(path)
    assert relative_error(onnx_run(table, images, tmp_path)["descriptor"], expected) < 1e-4


@pytest.mark.parametrize("layout", ["weights", "model"])
def test_deepface_file_in_deepface_model(peers, tmp_path, layout):
    path = make_standin(tmp_path / "vgg_face_weights.h5", "tiny", layout, seed=3, format="deepface")
    model = peers.deepface_base(TINY)
    model.load_weights(str(path))  # how deepface's VGGFace.load_model loads it
    images = images_uint8(2, seed=8)
    fc8 = peers.keras.Model(model.inputs, model.layers[-3].output)  # before Flatten + softmax
    expected = np.asarray(fc8(peers.deepface_preprocess(images))).reshape(2, -1)
    table, _ = read_network(path)
    assert relative_error(onnx_run(table, images, tmp_path)["descriptor"], expected) < 1e-4


def test_deepface_gender_model_is_a_classifier_on_arrival(peers, tmp_path):
    path = make_standin(tmp_path / "gender_model_weights.h5", "tiny", seed=3, format="deepface-gender")
    model = peers.deepface_gender(TINY)
    model.load_weights(str(path))
    folder = tmp_path / "faces"
    folder.mkdir()
    from PIL import Image

    images = images_uint8(3, seed=12)
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"face{i}.png")
    (folder / "broken.jpg").write_bytes(b"not an image")
    # deepface's way: one face at a time, model(img, training=False)
    woman_man = np.concatenate([np.asarray(model(peers.deepface_preprocess(image[None]), training=False))
                                for image in images])

    runner = CliRunner()
    for argv in (["convert", "-q", str(path)], ["export", "-q"],
                 ["classify", str(folder), "-o", str(tmp_path / "out.csv"), "-q"]):
        result = runner.invoke(cli, argv)
        assert result.exit_code in (0, 3), (argv, result.output)
    assert "using the head that convert wrote" in runner.invoke(cli, ["export", "-q"]).output
    rows = {row["path"].rsplit("/", 1)[-1]: row for row in csv.DictReader(open(tmp_path / "out.csv"))}
    assert rows["broken.jpg"]["error"]
    for i in range(3):
        row = rows[f"face{i}.png"]
        p_male, p_female = float(row["p_male"]), float(row["p_female"])
        # lossless PNG, same size: our graph sees the same pixels as deepface's loop
        assert p_male == pytest.approx(woman_man[i, 1], abs=1e-4)
        assert p_female == pytest.approx(woman_man[i, 0], abs=1e-4)
        assert row["label"] == ("female" if p_female >= 0.5 else "male")


def test_keras_file_whose_layers_match_no_sequence(tmp_path):
    # deepface's age model has the gender model's backbone and 101 outputs
    network = vgg_face_network("tiny", 0).truncated("dropout7")
    path = write_keras_h5(network, tmp_path / "age_model_weights.h5", "deepface-gender",
                          head_kernel=np.zeros((16, 101), np.float32), head_bias=np.zeros(101, np.float32))
    with pytest.raises(ModelFileError) as info:
        read_network(path)
    message = str(info.value)
    assert "match no VGG-Face layer sequence" in message and "\n" not in message
    assert "layer 37 'predictions'" in message and "1x1x16x101" in message and "1x1x16x2" in message
    result = CliRunner().invoke(cli, ["convert", "-q", str(path)])
    assert result.exit_code == 1 and "Traceback" not in result.output and "layer 37 'predictions'" in result.output


def test_hdf5_without_keras_weights_and_truncated(tmp_path):
    other = tmp_path / "data.h5"
    with h5py.File(other, "w") as handle:
        handle["x"] = np.zeros(3)
    with pytest.raises(ModelFileError, match="without Keras weights .no 'layer_names' attribute"):
        read_network(other)
    path = make_standin(tmp_path / "vgg_face_weights.h5", "tiny", seed=0, format="deepface")
    cut = tmp_path / "cut.h5"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    result = CliRunner().invoke(cli, ["inspect", str(cut)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and str(cut) in lines[0] and "truncated or corrupt" in lines[0]


def test_dense_fc6_rows_follow_hwc_order(tmp_path):
    network = vgg_face_network("tiny", 5)
    path = write_keras_h5(network, tmp_path / "vgg16.h5", "keras-vggface")
    with h5py.File(path) as handle:
        dense = np.asarray(handle["fc6"]["fc6/kernel:0"])
    fc6 = network.layers[network.layer_index("fc6")].weights  # (7, 7, C, F)
    h, w, c = 3, 5, 6
    np.testing.assert_array_equal(dense[(h * 7 + w) * fc6.shape[2] + c], fc6[h, w, c])
