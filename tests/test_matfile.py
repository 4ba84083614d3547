"""read_mat: both layouts x both MAT versions, vl_simplenn_tidy's old forms, bad files."""

from __future__ import annotations

import hashlib

import h5py
import numpy as np
import pytest

from gender_cli.convert.mat_writer import write_mat
from gender_cli.convert.matfile import read_mat, read_raw
from gender_cli.convert.source_file import c_order_float32
from gender_cli.convert.standin import standin_param_count, make_standin
from gender_cli.convert.vgg_face import vgg_face_network
from gender_cli.errors import ModelFileError, UnsupportedLayerError

from helpers_mat import (  # noqa: E402
    layer_named,
    layers_of,
    normalization_of,
    single_channel_variables,
    tiny_variables,
    write,
)

LAYOUTS = ("release", "zoo")
VERSIONS = ("5", "7.3")
FIELDS = ("name", "type", "stride", "pad", "dilate", "pool", "method", "rate", "lrn")


def assert_same_network(read, expected) -> None:
    assert len(read.layers) == len(expected.layers) == 39
    for got, want in zip(read.layers, expected.layers):
        for attr in FIELDS:
            assert getattr(got, attr) == getattr(want, attr), (want.name, attr)
        if want.weights is None:
            assert got.weights is None and got.bias is None
            continue
        assert got.weights.dtype == np.float32 and got.weights.flags.c_contiguous
        assert got.weights.shape == want.weights.shape
        assert got.bias.shape == want.bias.shape
        # bit-exact, not merely close
        assert got.weights.tobytes() == want.weights.tobytes(), want.name
        assert got.bias.tobytes() == want.bias.tobytes(), want.name


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_standin_round_trip(tmp_path, layout, version):
    path = make_standin(tmp_path / "vgg_face.mat", "tiny", layout, version, seed=7)
    network = read_mat(path)
    expected = vgg_face_network("tiny", seed=7)
    assert_same_network(network, expected)
    assert network.mean.dtype == np.float32
    assert network.mean.tobytes() == expected.mean.tobytes()
    assert network.class_names == expected.class_names and len(network.class_names) == 2622
    assert network.input_size == (224, 224, 3)
    assert network.standin is True
    assert (network.layout, network.mat_version) == (layout, version)
    assert network.source_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert network.source_path == str(path.resolve())
    assert network.num_params == standin_param_count("tiny")


def test_file_without_marker_is_not_standin(tmp_path):
    network = read_mat(write(tmp_path, tiny_variables("zoo")))
    assert network.standin is False


def test_v73_file_is_matlab_shaped(tmp_path):
    path = write(tmp_path, tiny_variables("release"), "7.3")
    with open(path, "rb") as stream:
        header = stream.read(128)
    assert header.startswith(b"MATLAB 7.3 MAT-file, Platform: ")
    assert b"HDF5 schema 1.00 ." in header[:116]
    assert header[124:128] == b"\x00\x02IM"
    with h5py.File(path, "r") as handle:
        net = handle["net"]
        assert net.attrs["MATLAB_class"] == b"struct"
        layers = net["layers"]
        assert layers.attrs["MATLAB_class"] == b"cell" and layers.shape == (39, 1)
        fc6 = handle[layers[31, 0]]
        assert fc6.attrs["MATLAB_class"] == b"struct"
        weights_cell = fc6["weights"]
        w = handle[weights_cell[0, 0]]
        b = handle[weights_cell[1, 0]]
        # column-major: MATLAB 7x7x8x16 single is stored reversed
        assert w.shape == (16, 8, 7, 7) and w.attrs["MATLAB_class"] == b"single"
        assert b.shape == (1, 16) and b.attrs["MATLAB_class"] == b"single"  # MATLAB 16x1
        name = fc6["name"]
        assert name.attrs["MATLAB_class"] == b"char" and name.attrs["MATLAB_int_decode"] == 2
        assert "".join(map(chr, name[()].ravel())) == "fc6"
        opts = fc6["opts"]
        assert opts.attrs["MATLAB_empty"] == 1 and opts.attrs["MATLAB_class"] == b"cell"
        assert list(opts[()]) == [0, 0]
        assert "#refs#" in handle


def test_v5_weights_stay_4d_single_and_bias_column(tmp_path):
    import scipy.io

    path = make_standin(tmp_path / "v5.mat", "tiny", "zoo", "5", seed=1)
    contents = scipy.io.loadmat(str(path), squeeze_me=False)
    fc7 = contents["layers"][0, 34][0, 0]
    w, b = fc7["weights"][0, 0], fc7["weights"][0, 1]
    assert (w.shape, w.dtype, b.shape, b.dtype) == ((1, 1, 16, 16), np.float32, (16, 1), np.float32)


# -- what vl_simplenn_tidy upgrades ---------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_old_filters_biases_fields(tmp_path, version):
    variables = tiny_variables("release")
    for layer in layers_of(variables):
        if layer["type"] == "conv":
            w, b = layer.pop("weights")
            layer["filters"], layer["biases"] = w, b
    network = read_mat(write(tmp_path, variables, version))
    assert_same_network(network, vgg_face_network("tiny", seed=0))


@pytest.mark.parametrize("version", VERSIONS)
def test_pad_stride_dilate_forms(tmp_path, version):
    variables = tiny_variables("zoo")
    layer_named(variables, "conv1_1").update(pad=1.0, stride=np.array([[1.0, 2.0]]), dilate=2.0)
    layer_named(variables, "conv1_2").update(pad=np.array([[1.0, 1.0, 1.0, 1.0]]), dilate=np.array([[1.0, 3.0]]))
    layer_named(variables, "pool1").update(pad=np.array([[0.0, 1.0, 0.0, 1.0]]), stride=np.array([[2.0, 1.0]]), pool=3.0)
    layer_named(variables, "pool2").update(pad=0.0, stride=2.0, pool=np.array([[2.0, 3.0]]))
    network = read_mat(write(tmp_path, variables, version))
    by_name = {layer.name: layer for layer in network.layers}
    assert by_name["conv1_1"].pad == (1, 1, 1, 1)
    assert by_name["conv1_1"].stride == (1, 2)
    assert by_name["conv1_1"].dilate == (2, 2)
    assert by_name["conv1_2"].pad == (1, 1, 1, 1)
    assert by_name["conv1_2"].dilate == (1, 3)
    assert by_name["pool1"].pad == (0, 1, 0, 1)  # top bottom left right
    assert by_name["pool1"].stride == (2, 1)  # y x
    assert by_name["pool1"].pool == (3, 3)
    assert by_name["pool2"].pad == (0, 0, 0, 0)
    assert by_name["pool2"].stride == (2, 2)
    assert by_name["pool2"].pool == (2, 3)


def test_pool_method_missing_means_max_and_avg_is_kept(tmp_path):
    variables = tiny_variables("release")
    del layer_named(variables, "pool1")["method"]
    layer_named(variables, "pool2")["method"] = "avg"
    network = read_mat(write(tmp_path, variables))
    by_name = {layer.name: layer for layer in network.layers}
    assert by_name["pool1"].method == "max"
    assert by_name["pool2"].method == "avg"


@pytest.mark.parametrize("version", VERSIONS)
def test_bias_as_row_flat_or_empty(tmp_path, version):
    variables = tiny_variables("release")
    reference = vgg_face_network("tiny", seed=0)
    layer_named(variables, "conv1_1")["weights"][1] = np.arange(4, dtype=np.float32).reshape(1, 4)
    layer_named(variables, "conv1_2")["weights"][1] = np.arange(4, dtype=np.float32)  # written as 1x4
    layer_named(variables, "fc7")["weights"][1] = np.zeros((0, 0), np.float32)  # no bias
    network = read_mat(write(tmp_path, variables, version))
    by_name = {layer.name: layer for layer in network.layers}
    np.testing.assert_array_equal(by_name["conv1_1"].bias, np.arange(4, dtype=np.float32))
    np.testing.assert_array_equal(by_name["conv1_2"].bias, np.arange(4, dtype=np.float32))
    assert by_name["fc7"].bias.shape == (16,) and not by_name["fc7"].bias.any()
    assert by_name["fc7"].weights.tobytes() == reference.layers[34].weights.tobytes()


@pytest.mark.parametrize("version", VERSIONS)
def test_average_image_as_image_is_reduced_to_channel_mean(tmp_path, version):
    variables = tiny_variables("release")
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 255, size=(6, 5, 3)).astype(np.float32)
    normalization_of(variables)["averageImage"] = image
    path = write(tmp_path, variables, version)
    network = read_mat(path)
    np.testing.assert_allclose(network.mean, image.mean(axis=(0, 1)), rtol=1e-6)
    assert network.mean.shape == (3,) and network.mean.dtype == np.float32
    assert any("reduced to its per-channel mean" in note for note in read_raw(path).notes)


@pytest.mark.parametrize("shape", [(3,), (3, 1), (1, 3), (1, 1, 3)])
def test_average_image_vector_shapes(tmp_path, shape):
    variables = tiny_variables("zoo")
    normalization_of(variables)["averageImage"] = np.array([10.0, 20.0, 30.0]).reshape(shape)
    network = read_mat(write(tmp_path, variables))
    np.testing.assert_array_equal(network.mean, [10, 20, 30])


@pytest.mark.parametrize("version", VERSIONS)
def test_squeezed_conv_weights_become_4d(tmp_path, version):
    # MATLAB drops trailing singleton dims: 3x3x1x1 is stored as 3x3
    weights = np.arange(9, dtype=np.float32).reshape(3, 3)
    path = write(tmp_path, single_channel_variables(weights, np.float32([[0.5]])), version)
    conv = read_mat(path).layers[0]
    assert conv.weights.shape == (3, 3, 1, 1)
    np.testing.assert_array_equal(conv.weights[:, :, 0, 0], weights)
    assert conv.bias.tolist() == [0.5]
    assert read_mat(path).input_size == (8, 8, 1)


def test_lrn_and_leak_free_relu(tmp_path):
    variables = tiny_variables("zoo")
    layers = layers_of(variables)
    layers.insert(1, {"name": "norm1", "type": "lrn", "param": np.array([[5.0, 1.0, 2e-5, 0.75]])})
    network = read_mat(write(tmp_path, variables))
    assert network.layers[1].type == "lrn"
    assert network.layers[1].lrn == (5, 1.0, 2e-5, 0.75)
    assert network.layers[2].type == "relu"


def test_field_order_does_not_matter(tmp_path):
    variables = tiny_variables("zoo")
    layers = layers_of(variables)
    for i, layer in enumerate(layers):
        layers[i] = dict(reversed(list(layer.items())))
    assert_same_network(read_mat(write(tmp_path, variables)), vgg_face_network("tiny", seed=0))


@pytest.mark.parametrize("shape", [(7, 7, 37, 300), (1, 1, 70, 33), (3, 3, 3, 5), (2, 3, 1, 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_c_order_copy_of_column_major_weights(shape, dtype):
    column_major = np.asfortranarray(np.random.default_rng(1).standard_normal(shape).astype(dtype))
    copy = c_order_float32(column_major, block_elements=512, block_out=16)  # many partial blocks
    assert copy.flags.c_contiguous and copy.dtype == np.float32
    np.testing.assert_array_equal(copy, column_major.astype(np.float32))
    assert not np.shares_memory(copy, column_major)


# -- bad files --------------------------------------------------------------------------


def test_not_a_mat_file(tmp_path):
    path = tmp_path / "notes.mat"
    path.write_text("hello, this is not MATLAB\n")
    with pytest.raises(ModelFileError, match="not a MATLAB v5 or v7.3 MAT-file"):
        read_mat(path)


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="no such file"):
        read_mat(tmp_path / "absent.mat")


@pytest.mark.parametrize("version", VERSIONS)
def test_truncated_file(tmp_path, version):
    path = write(tmp_path, tiny_variables("release"), version)
    cut = tmp_path / "cut.mat"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ModelFileError) as info:
        read_mat(cut)
    message = str(info.value)
    assert "\n" not in message and "cut.mat" in message
    said = message.split("cut.mat: ", 1)[1]  # the temporary folder's name holds 'truncated' too
    assert "truncated" in said
    if version == "5":  # where the file ends: the variable walk names the layer
        assert "the file ends inside net.layers{" in said


def test_no_layers(tmp_path):
    path = write_mat(tmp_path / "other.mat", {"weights": np.ones((2, 2)), "meta": {"x": 1.0}})
    with pytest.raises(ModelFileError, match=r"no MatConvNet network.*variables found: meta, weights"):
        read_mat(path)


def test_net_struct_without_layers(tmp_path):
    variables = tiny_variables("release")
    del variables["net"]["layers"]
    with pytest.raises(ModelFileError, match="'net' struct has no 'layers' field"):
        read_mat(write(tmp_path, variables))


@pytest.mark.parametrize("version", VERSIONS)
def test_bias_length_differs_from_output_channels(tmp_path, version):
    variables = tiny_variables("release")
    layer_named(variables, "fc7")["weights"][1] = np.zeros((15, 1), np.float32)
    with pytest.raises(ModelFileError) as info:
        read_mat(write(tmp_path, variables, version))
    assert not isinstance(info.value, UnsupportedLayerError)
    message = str(info.value)
    assert "layer 35 'fc7' (conv)" in message and "bias has shape 15x1" in message and "16 output channels" in message


def test_weights_not_4d(tmp_path):
    variables = tiny_variables("release")
    layer_named(variables, "conv2_1")["weights"][0] = np.zeros((3, 3, 4, 4, 2), np.float32)
    with pytest.raises(ModelFileError, match=r"layer 6 'conv2_1' \(conv\): conv weights have shape 3x3x4x4x2; expected 4-D"):
        read_mat(write(tmp_path, variables))


def test_input_channels_must_match_previous_layer(tmp_path):
    variables = tiny_variables("zoo")
    layer_named(variables, "fc6")["weights"][0] = np.zeros((7, 7, 5, 16), np.float32)
    with pytest.raises(ModelFileError, match=r"layer 32 'fc6' \(conv\).*take 5 input channels but the layers before it give 8"):
        read_mat(write(tmp_path, variables))


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("layer_type", ["SubP", "concat", "custom", "softmaxloss"])
def test_unsupported_layer_type(tmp_path, version, layer_type):
    if version == "7.3" and layer_type != "SubP":
        pytest.skip("one v7.3 case is enough")
    variables = tiny_variables("release")
    layer = layer_named(variables, "relu3_2")
    layer["type"] = layer_type
    layer["name"] = "odd14"
    with pytest.raises(UnsupportedLayerError) as info:
        read_mat(write(tmp_path, variables, version))
    message = str(info.value)
    assert f"layer 14 'odd14' ({layer_type})" in message
    assert "supported types: conv, relu, pool, dropout, softmax, lrn" in message
    assert "\n" not in message


def test_unsupported_pool_method_and_leaky_relu(tmp_path):
    variables = tiny_variables("release")
    layer_named(variables, "pool3")["method"] = "median"
    with pytest.raises(UnsupportedLayerError, match=r"layer 17 'pool3' \(pool\): pool method 'median'"):
        read_mat(write(tmp_path, variables))
    variables = tiny_variables("release")
    layer_named(variables, "relu1_1")["leak"] = 0.1
    with pytest.raises(UnsupportedLayerError, match=r"layer 2 'relu1_1' \(relu\): leaky ReLU"):
        read_mat(write(tmp_path, variables))


def test_bad_pad_length(tmp_path):
    variables = tiny_variables("release")
    layer_named(variables, "conv1_1")["pad"] = np.array([[1.0, 1.0, 1.0]])
    with pytest.raises(ModelFileError, match=r"layer 1 'conv1_1' \(conv\): pad = \[1.0, 1.0, 1.0\] must be 1 or 4"):
        read_mat(write(tmp_path, variables))


def test_missing_average_image(tmp_path):
    variables = tiny_variables("release")
    del normalization_of(variables)["averageImage"]
    with pytest.raises(ModelFileError, match="no normalization.averageImage"):
        read_mat(write(tmp_path, variables))


def test_failed_write_leaves_no_file(tmp_path):
    with pytest.raises(TypeError):
        write_mat(tmp_path / "x.mat", {"bad": object()}, "7.3")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_full_size_v5_release_round_trip(tmp_path):
    path = make_standin(tmp_path / "vgg_face.mat", "full", "release", "5", seed=0)
    network = read_mat(path)
    assert network.num_params == 145_002_878 == standin_param_count("full")
    shapes = {layer.name: layer.weights.shape for layer in network.layers if layer.type == "conv"}
    assert shapes["fc6"] == (7, 7, 512, 4096)
    assert shapes["fc7"] == (1, 1, 4096, 4096)
    assert shapes["fc8"] == (1, 1, 4096, 2622)
    assert shapes["conv1_1"] == (3, 3, 3, 64)
    expected = vgg_face_network("full", seed=0)
    for name in ("conv1_1", "conv5_3", "fc8"):
        got = network.layers[network.layer_index(name)]
        want = expected.layers[expected.layer_index(name)]
        assert got.weights.tobytes() == want.weights.tobytes(), name
        assert got.stride == want.stride and got.pad == want.pad
    assert network.standin and len(network.class_names) == 2622
    assert network.source_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    path.unlink()  # 580 MB; pytest keeps the last runs' tmp folders
