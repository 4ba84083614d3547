"""Caffe files: V1 and current layouts, checked by OpenCV's Caffe importer, round-up pooling, LRN, bad files."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from gender_cli.cli.main import cli
from gender_cli.convert import caffe_proto, reference
from gender_cli.convert.caffe_writer import prototxt_path, write_caffe
from gender_cli.convert.formats import read_network, read_source
from gender_cli.convert.layer_plan import next_shape
from gender_cli.convert.network import Layer, Network
from gender_cli.convert.preprocessing import VGG_FACE_MEAN_BGR
from gender_cli.convert.vgg_face import vgg_face_network
from gender_cli.errors import ModelFileError, UnsupportedLayerError

from helpers_formats import images_uint8, onnx_run, opencv_forward, relative_error  # noqa: E402

LAYOUTS = ("v1", "layer")


@pytest.mark.parametrize("layout", LAYOUTS)
def test_opencv_runs_our_vgg_face_caffe_files_like_our_graph(tmp_path, layout):
    network = vgg_face_network("tiny", 2)
    caffemodel, _ = write_caffe(network, tmp_path / "VGG_FACE.caffemodel", layout=layout)
    images = images_uint8(2, seed=5)
    expected = opencv_forward(caffemodel, images, VGG_FACE_MEAN_BGR, "fc8").reshape(2, -1)
    table, _ = read_network(caffemodel, prototxt_path(caffemodel))
    ours = onnx_run(table, images, tmp_path)["descriptor"]
    assert relative_error(ours, expected) < 1e-4
    assert relative_error(ours, reference.forward(network, images, upto="fc8").reshape(2, -1)) < 1e-5


@pytest.mark.parametrize("layout", LAYOUTS)
def test_caffe_standin_reads_back_as_the_mat_table(tmp_path, layout):
    network = vgg_face_network("tiny", 2)
    caffemodel, prototxt = write_caffe(network, tmp_path / "VGG_FACE.caffemodel", layout=layout,
                                       standin_note="stand-in, seed 2")
    binary_only, _ = read_network(caffemodel)
    with_deploy, _ = read_network(caffemodel, prototxt)
    for table in (binary_only, with_deploy):
        assert table.standin and table.layout == layout and table.input_size == (224, 224, 3)
        np.testing.assert_allclose(table.mean, network.mean)  # VGG-Face's, known by its structure
        for ours, theirs in zip(table.layers, network.layers):
            assert (ours.type, tuple(ours.pad), tuple(ours.stride)) == (theirs.type, theirs.pad, theirs.stride)
            if theirs.weights is not None:
                np.testing.assert_array_equal(ours.weights, theirs.weights)
                np.testing.assert_array_equal(ours.bias, theirs.bias)
    assert "# stand-in, seed 2" in prototxt.read_text()
    assert "gender_cli_standin" not in prototxt.read_text()  # OpenCV's text parser would refuse it


def odd_caffe_network(lrn_k: float = 1.0) -> Network:
    """13x13 input: pool1 (2x2/2) gives 7 under Caffe's round-up, 6 under floor; pool2 has a pad
    and Caffe drops its last window (it would start in the padding); LRN; an InnerProduct on 4x4 maps."""
    rng = np.random.default_rng(9)

    def conv(name, shape, pad=0):
        w = (rng.standard_normal(shape) * np.sqrt(2 / np.prod(shape[:3]))).astype(np.float32)
        return Layer(name, "conv", weights=w, bias=rng.normal(0, 0.1, shape[3]).astype(np.float32), pad=(pad,) * 4)

    layers = [
        conv("conv1", (3, 3, 3, 6), pad=1),
        Layer("relu1", "relu"),
        Layer("pool1", "pool", pool=(2, 2), stride=(2, 2)),
        Layer("norm1", "lrn", lrn=(5, lrn_k, 1e-2 / 5, 0.75)),
        conv("conv2", (3, 3, 6, 5), pad=1),
        Layer("relu2", "relu"),
        Layer("pool2", "pool", pool=(2, 2), stride=(2, 2), pad=(1, 1, 1, 1)),
        conv("fc8", (4, 4, 5, 7)),
        Layer("prob", "softmax"),
    ]
    return Network(layers, input_size=(13, 13, 3), mean=np.array([120.0, 110.0, 100.0], np.float32))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_round_up_pooling_at_an_odd_size_against_opencv(tmp_path, layout):
    network = odd_caffe_network()
    caffemodel, _ = write_caffe(network, tmp_path / "odd.caffemodel", layout=layout)
    table, _ = read_network(caffemodel, mean=network.mean)
    pool1, pool2 = table.layers[2], table.layers[6]
    assert pool1.pad == (0, 1, 0, 1)  # 13 -> 7: the extra bottom/right row and column
    assert next_shape(pool1, (6, 13, 13)) == (6, 7, 7)
    assert pool2.pad == (1, 1, 1, 1) and next_shape(pool2, (5, 7, 7)) == (5, 4, 4)
    images = images_uint8(3, size=(13, 13), seed=2)
    expected = opencv_forward(caffemodel, images, network.mean[::-1], "fc8").reshape(3, -1)
    ours = reference.forward(table, images, upto="fc8").reshape(3, -1)
    assert relative_error(ours, expected) < 1e-4
    probabilities = opencv_forward(caffemodel, images, network.mean[::-1], "prob").reshape(3, -1)
    np.testing.assert_allclose(reference.forward(table, images).reshape(3, -1), probabilities, atol=1e-5)


def caffe_lrn(x: np.ndarray, size: int, alpha: float, beta: float, k: float) -> np.ndarray:
    """Caffe's LRNLayer (ACROSS_CHANNELS), written from lrn_layer.cpp: alpha is divided by size."""
    pre = (size - 1) // 2
    squares = np.pad(x.astype(np.float64) ** 2, ((0, 0), (0, 0), (0, 0), (pre, size - pre - 1)))
    window = sum(squares[..., q : q + x.shape[3]] for q in range(size))
    return x * (k + alpha / size * window) ** -beta


def test_lrn_k_other_than_one_against_caffe_formula(tmp_path):
    # OpenCV ignores LRN's k, so k != 1 is checked against Caffe's formula in NumPy only.
    network = odd_caffe_network(lrn_k=2.0)
    caffemodel, prototxt = write_caffe(network, tmp_path / "lrn.caffemodel", layout="layer")
    assert "k: 2" in prototxt.read_text() and "alpha: 0.01" in prototxt.read_text()
    table, _ = read_network(caffemodel, mean=network.mean)
    images = images_uint8(2, size=(13, 13), seed=4)
    pooled = reference.forward(table, images, upto="pool1").astype(np.float64)
    expected = caffe_lrn(pooled, 5, 1e-2, 0.75, 2.0)
    np.testing.assert_allclose(reference.forward(table, images, upto="norm1"), expected, rtol=1e-5)


def test_binary_without_parameters_needs_the_deploy_file(tmp_path):
    network = vgg_face_network("tiny", 1)
    caffemodel, prototxt = write_caffe(network, tmp_path / "VGG_FACE.caffemodel", with_parameters=False)
    with pytest.raises(ModelFileError, match=r"layer 1 'conv1_1' \(Convolution\): the binary lacks its "
                                             r"convolution_param; give the deploy file with --prototxt"):
        read_network(caffemodel)
    table, _ = read_network(caffemodel, prototxt)
    np.testing.assert_array_equal(table.layers[0].weights, network.layers[0].weights)


def test_deploy_file_that_disagrees_with_the_binary(tmp_path):
    caffemodel, prototxt = write_caffe(vgg_face_network("tiny", 1), tmp_path / "VGG_FACE.caffemodel")
    text = prototxt.read_text().replace("kernel_size: 2\n    stride: 2", "kernel_size: 2\n    stride: 1", 1)
    prototxt.write_text(text)
    with pytest.raises(ModelFileError, match=r"layer 5 'pool1' \(Pooling\): VGG_FACE_deploy.prototxt says "
                                             r"stride \(1, 1\), the caffemodel says \(2, 2\)"):
        read_network(caffemodel, prototxt)


def hand_made_caffemodel(path, layers, blobs, input_dims=(1, 3, 8, 8)):
    """A NetParameter built with the protobuf runtime directly (no gender-cli writer)."""
    net = caffe_proto.message_class("NetParameter")()
    net.input.append("data")
    net.input_dim.extend(input_dims)
    for text, layer_blobs in zip(layers, blobs):
        from google.protobuf import text_format

        layer = net.layer.add()
        text_format.Parse(text, layer)
        for dims, values, double in layer_blobs:
            blob = layer.blobs.add()
            blob.shape.dim.extend(dims)
            (blob.double_data if double else blob.data).extend(np.asarray(values).ravel().tolist())
    path.write_bytes(net.SerializeToString())
    return path


def test_double_data_blobs_and_mean_option(tmp_path):
    rng = np.random.default_rng(0)
    weights = rng.standard_normal((4, 3, 3, 3))
    bias = rng.standard_normal(4)
    path = hand_made_caffemodel(
        tmp_path / "small.caffemodel",
        ['name: "c1" type: "Convolution" bottom: "data" top: "c1" convolution_param { num_output: 4 kernel_size: 3 pad: 1 }',
         'name: "r1" type: "ReLU" bottom: "c1" top: "c1"'],
        [[((4, 3, 3, 3), weights, True), ((4,), bias, True)], []],
    )
    with pytest.raises(ModelFileError, match=r"the file has no mean .* --mean R,G,B"):
        read_network(path)
    table, _ = read_network(path, mean=np.array([1.0, 2.0, 3.0], np.float32))
    np.testing.assert_allclose(table.layers[0].weights, weights.transpose(2, 3, 1, 0)[:, :, ::-1, :], rtol=1e-7)
    assert table.input_size == (8, 8, 3)


def test_unsupported_and_branching_layers_are_named(tmp_path):
    rng = np.random.default_rng(0)
    conv = [((4, 3, 3, 3), rng.standard_normal((4, 3, 3, 3)), False), ((4,), np.zeros(4), False)]
    path = hand_made_caffemodel(
        tmp_path / "bn.caffemodel",
        ['name: "c1" type: "Convolution" bottom: "data" top: "c1" convolution_param { num_output: 4 kernel_size: 3 }',
         'name: "bn1" type: "BatchNorm" bottom: "c1" top: "c1"',
         'name: "cat" type: "Concat" bottom: "c1" bottom: "data" top: "cat"'],
        [conv, [], []],
    )
    source = read_source(path)
    problems = source.problems
    assert problems[0].startswith("layer 2 'bn1' (BatchNorm): layer type 'BatchNorm' is not supported")
    assert problems[1].startswith("layer 3 'cat' (Concat): takes 2 inputs")
    with pytest.raises(UnsupportedLayerError, match=r"layer 2 'bn1' \(BatchNorm\)"):
        read_network(path, mean=np.zeros(3))
    result = CliRunner().invoke(cli, ["inspect", str(path)])
    assert result.exit_code == 0 and "bn1" in result.output and "cannot handle" in result.output
    assert "supported layer types: Convolution, InnerProduct, Pooling, ReLU, LRN, Dropout, Softmax" in result.output


def test_truncated_caffemodel_is_one_line(tmp_path):
    caffemodel, _ = write_caffe(vgg_face_network("tiny", 1), tmp_path / "VGG_FACE.caffemodel")
    cut = tmp_path / "cut.caffemodel"
    cut.write_bytes(caffemodel.read_bytes()[: caffemodel.stat().st_size // 2])
    result = CliRunner().invoke(cli, ["convert", "-q", str(cut)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and str(cut) in lines[0] and "truncated" in lines[0]


def test_convert_cli_with_prototxt(tmp_path):
    caffemodel, prototxt = write_caffe(vgg_face_network("tiny", 1), tmp_path / "VGG_FACE.caffemodel",
                                       standin_note="stand-in")
    result = CliRunner().invoke(cli, ["convert", str(caffemodel), "--prototxt", str(prototxt), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "(caffe): 39 layers" in result.output
    assert "input: Caffe (VGG-Face release): BGR minus 93.594, 104.762, 129.186, scale 1 " in result.output
    assert "STAND-IN" in result.output
