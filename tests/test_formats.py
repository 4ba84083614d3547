"""Every format gives the same graph: the stand-in in each layout, converted and exported, against the NumPy reference."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from gender_cli.cli.main import cli
from gender_cli.contract import Meta
from gender_cli.convert import reference
from gender_cli.convert.formats import FORMATS, read_network, read_source
from gender_cli.convert.standin import STANDIN_LAYOUTS, make_standin
from gender_cli.convert.vgg_face import standin_gender_head, vgg_face_network

from helpers_formats import images_uint8, onnx_run, opencv_forward, relative_error  # noqa: E402

SEED = 4
# VGG-Face in every form it comes in (dlib's network has its own tests: test_dlib.py)
VGG_FORMATS = [fmt for fmt in STANDIN_LAYOUTS if FORMATS[fmt].network == "VGG-Face"]
CASES = [(fmt, layout) for fmt in VGG_FORMATS for layout in STANDIN_LAYOUTS[fmt]]
SCALED = ("deepface", "deepface-gender")  # BGR / 255, no mean


@pytest.fixture(scope="module")
def standins(tmp_path_factory):
    folder = tmp_path_factory.mktemp("standins")
    return {
        (fmt, layout): make_standin(folder / f"{layout}-{FORMATS[fmt].default_file}", "tiny", layout, seed=SEED, format=fmt)
        for fmt, layout in CASES
    }


def oracle(fmt: str, images: np.ndarray, upto: str) -> np.ndarray:
    """What the source library computes, in NumPy float64, from the generator's weights.

    BGR input through BGR-ordered filters equals RGB input through the RGB filters, so
    the oracle needs no channel swap; deepface feeds pixels / 255 and no mean.
    """
    network = vgg_face_network("tiny", SEED)
    x = images.astype(np.float64)
    if fmt in SCALED:
        network.mean = np.zeros(3, np.float32)
        x = x / 255.0
    return reference.forward(network, x, upto=upto).reshape(len(images), -1)


@pytest.mark.parametrize("fmt,layout", CASES)
def test_every_layout_gives_the_reference_numbers(standins, fmt, layout, tmp_path):
    images = images_uint8(2, seed=11)
    network, head = read_network(standins[fmt, layout])
    assert network.standin and network.source_format == fmt  # the stand-in mark survives conversion
    if fmt == "deepface-gender":
        from gender_cli.convert.convert import convert

        convert(standins[fmt, layout], tmp_path / "converted")
        outputs = onnx_run(network, images, tmp_path, "relu7", head_dir=tmp_path / "converted" / "head")
        relu7 = oracle(fmt, images, "relu7")
        assert relative_error(outputs["descriptor"], relu7) < 1e-5
        kernel, bias = standin_gender_head("tiny", SEED)  # deepface order: Woman, Man
        logits = relu7 @ kernel.astype(np.float64) + bias
        woman_man = np.exp(logits - logits.max(1, keepdims=True))
        woman_man /= woman_man.sum(1, keepdims=True)
        assert json.loads(outputs["metadata"][Meta.LABELS]) == ["male", "female"]
        np.testing.assert_allclose(outputs["probabilities"], woman_man[:, ::-1], atol=1e-5)
        assert "gender_model_weights.h5" in outputs["metadata"][Meta.HEAD_SOURCE]
    else:
        outputs = onnx_run(network, images, tmp_path, "fc8")
        assert relative_error(outputs["descriptor"], oracle(fmt, images, "fc8")) < 1e-5
    meta = outputs["metadata"]
    assert meta[Meta.STANDIN] == "true" and meta[Meta.SOURCE_FORMAT] == fmt
    source = json.loads(meta[Meta.SOURCE_PREPROCESSING])
    assert source["channel_order"] == ("RGB" if fmt == "mat" else "BGR")
    assert source["scale"] == pytest.approx(1 / 255 if fmt in SCALED else 1.0)


def test_the_same_weights_in_every_unscaled_format_give_one_table(standins):
    tables = {case: read_network(path)[0] for case, path in standins.items() if case[0] not in SCALED}
    (first_case, first), *rest = tables.items()
    for case, table in rest:
        assert len(table.layers) == len(first.layers), case
        np.testing.assert_array_equal(table.mean, first.mean)
        for a, b in zip(table.layers, first.layers):
            assert (a.type, a.stride, a.pad, a.pool) == (b.type, b.stride, b.pad, b.pool), (case, a.name)
            if a.weights is not None:
                np.testing.assert_array_equal(a.weights, b.weights)


@pytest.mark.parametrize("fmt", VGG_FORMATS)
def test_inspect_reads_every_format(standins, fmt):
    path = standins[fmt, STANDIN_LAYOUTS[fmt][0]]
    result = CliRunner().invoke(cli, ["inspect", str(path)])
    assert result.exit_code == 0, result.output
    assert f"format:      {fmt} (" in result.output and "STAND-IN" in result.output
    assert "conv1_1" in result.output and "pool5" in result.output
    if fmt == "deepface-gender":
        assert "outputs Woman, Man -> labels male, female" in result.output
    report = json.loads(CliRunner().invoke(cli, ["inspect", "--json", str(path)]).output)
    assert report["convertible"] and report["format"] == fmt and report["standin"]


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("content", [b"", b"\x00\x01\x02 random bytes \xff\xfe", b"hello, plain text\n",
                                     b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"])
def test_a_file_in_no_format(tmp_path, content):
    path = tmp_path / "weights.bin"
    path.write_bytes(content)
    for verb in (["convert", "-q"], ["inspect"]):
        result = CliRunner().invoke(cli, [*verb, str(path)])
        assert_one_line_error(result, str(path))
        assert "not a weights file gender-cli reads" in result.output or "empty file" in result.output


def test_a_prototxt_given_as_the_weights(tmp_path):
    path = tmp_path / "deploy.prototxt"
    path.write_text('name: "x"\nlayer { name: "conv1" type: "Convolution" }\n')
    assert_one_line_error(CliRunner().invoke(cli, ["convert", "-q", str(path)]),
                          "a text .prototxt", "--prototxt deploy.prototxt")


def test_prototxt_option_is_for_caffe_files(standins, tmp_path):
    deploy = tmp_path / "deploy.prototxt"
    deploy.write_text('name: "x"\n')
    result = CliRunner().invoke(cli, ["convert", "-q", str(standins["mat", "release"]), "--prototxt", str(deploy)])
    assert_one_line_error(result, "--prototxt is for Caffe files", "MATLAB")


def test_every_format_has_a_default_name_and_a_standin():
    assert set(FORMATS) == set(STANDIN_LAYOUTS)
    assert len({f.default_file for f in FORMATS.values()}) == len(FORMATS)


def test_read_source_lists_entries_in_source_order(standins):
    source = read_source(standins["caffe", "layer"])
    assert [e.index for e in source.entries] == list(range(2, 41))  # layer 1 is the Input layer
    assert source.entries[0].label == "layer 2 'conv1_1' (Convolution)"


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["caffe", "keras-vggface", "deepface", "deepface-gender"])
def test_full_size_files_of_every_format(tmp_path, fmt):
    path = make_standin(tmp_path / FORMATS[fmt].default_file, "full", seed=0, format=fmt)
    network, head = read_network(path)
    full = vgg_face_network("full", 0)
    assert network.standin and network.source_format == fmt and network.input_size == (224, 224, 3)
    scale = np.float32(1 / 255) if fmt in SCALED else np.float32(1)
    np.testing.assert_array_equal(network.layers[0].weights, full.layers[0].weights * scale)
    for name in ("conv3_1", "conv5_3", "fc6", "fc7", "fc8"):
        if fmt == "deepface-gender" and name == "fc8":
            assert head is not None and head.kernels[0].shape == (4096, 2)
            continue
        i = full.layer_index(name)
        np.testing.assert_array_equal(network.layers[i].weights, full.layers[i].weights)
        np.testing.assert_array_equal(network.layers[i].bias, full.layers[i].bias)
    if fmt == "caffe":  # OpenCV's importer on the full-size file, against our graph
        from gender_cli.convert.preprocessing import VGG_FACE_MEAN_BGR

        images = images_uint8(1, seed=6)
        expected = opencv_forward(path, images, VGG_FACE_MEAN_BGR, "fc8").reshape(1, -1)
        assert relative_error(onnx_run(network, images, tmp_path)["descriptor"], expected) < 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["caffe", "deepface-gender"])
def test_demo_runs_from_another_format(tmp_path, fmt):
    result = CliRunner().invoke(cli, ["demo", "-o", str(tmp_path / "demo"), "--format", fmt])
    assert result.exit_code == 0, result.output
    assert f"STAND-IN weights from {fmt}" in result.output
    assert (tmp_path / "demo" / FORMATS[fmt].default_file).is_file()
    trained = "n/a (a ready classifier: not trained here)" not in result.output
    assert trained == (fmt != "deepface-gender")
    assert "files classified / failed" in result.output and "40 / 3" in result.output


def test_make_standin_in_every_format_through_the_cli(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["make-standin", "--format", "caffe", "--size", "tiny", "--layout", "layer", "-q"])
    assert result.exit_code == 0, result.output
    assert "wrote VGG_FACE.caffemodel" in result.output and "wrote VGG_FACE_deploy.prototxt" in result.output
    assert read_source(tmp_path / "VGG_FACE.caffemodel").layout == "layer"
    again = CliRunner().invoke(cli, ["make-standin", "--format", "caffe", "--size", "tiny", "-q"])
    assert again.exit_code == 1 and "already exists; pass --force" in again.output
    for argv, hint in ((["--format", "deepface", "--layout", "zoo"], "not a deepface layout"),
                       (["--format", "keras-vggface", "--mat-version", "7.3"], "applies to --format mat only")):
        result = CliRunner().invoke(cli, ["make-standin", "--size", "tiny", *argv])
        assert result.exit_code == 2 and hint in result.output, result.output
    result = CliRunner().invoke(cli, ["make-standin", "--format", "deepface-gender", "--size", "tiny", "-q"])
    assert result.exit_code == 0 and "wrote gender_model_weights.h5" in result.output
    assert read_source(tmp_path / "gender_model_weights.h5").format == "deepface-gender"
