"""Keras models built from the layer table agree with the NumPy reference."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")

import keras  # noqa: E402

from gender_cli.convert import reference  # noqa: E402
from gender_cli.convert.keras_model import build_keras_model, keras_descriptor_model  # noqa: E402
from gender_cli.convert.network import Layer, Network  # noqa: E402
from gender_cli.errors import ModelFileError, UnsupportedLayerError  # noqa: E402

MEAN = (129.1863, 104.7624, 93.5940)


def conv(name, rng, kh, kw, cin, cout, **kw_args):
    weights = (rng.standard_normal((kh, kw, cin, cout)) * np.sqrt(2.0 / (kh * kw * cin))).astype(np.float32)
    bias = rng.standard_normal(cout).astype(np.float32)
    return Layer(name, "conv", weights=weights, bias=bias, **kw_args)


def make_network(layers, size=(37, 29)):
    return Network(layers=layers, input_size=(*size, 3), mean=np.asarray(MEAN, np.float32))


def images_for(network, n=3, seed=0):
    h, w, _ = network.input_size
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3)).astype(np.float32)


def assert_matches_reference(network, images, upto=None, model=None):
    expected = reference.forward(network, images, upto=upto)
    model = model or build_keras_model(network, upto=upto)
    got = np.asarray(model(images, training=False))
    assert got.shape == expected.shape
    scale = float(np.abs(expected).max())
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * scale)
    return got


def case_networks():
    rng = np.random.default_rng(7)
    return {
        "asymmetric-pad-stride2-conv": [conv("c1", rng, 3, 3, 3, 5, stride=(2, 2), pad=(0, 1, 2, 0)), Layer("r1", "relu")],
        "stride-x-only-conv": [conv("c1", rng, 3, 2, 3, 4, stride=(1, 3), pad=(1, 0, 0, 1))],
        "dilated-conv": [conv("c1", rng, 3, 3, 3, 4, dilate=(2, 3), pad=(2, 2, 3, 3))],
        "dilated-strided-conv": [conv("c1", rng, 3, 3, 3, 4, dilate=(2, 1), stride=(2, 3), pad=(1, 0, 0, 2))],
        "max-pool-padded-negative": [
            conv("c1", rng, 1, 1, 3, 4),  # no relu: the padded max must ignore padding
            Layer("p1", "pool", pool=(3, 3), stride=(2, 2), pad=(1, 0, 0, 1), method="max"),
        ],
        "avg-pool-padded": [
            conv("c1", rng, 3, 3, 3, 4, pad=(1, 1, 1, 1)),
            Layer("p1", "pool", pool=(3, 2), stride=(2, 2), pad=(2, 1, 1, 0), method="avg"),
        ],
        "plain-pools": [
            conv("c1", rng, 3, 3, 3, 4),
            Layer("p1", "pool", pool=(2, 2), stride=(2, 2), method="max"),
            Layer("p2", "pool", pool=(3, 3), stride=(1, 2), method="avg"),
        ],
        "lrn-odd-and-even": [
            conv("c1", rng, 3, 3, 3, 6, pad=(1, 1, 1, 1)),
            Layer("n1", "lrn", lrn=(5, 2.0, 1e-4, 0.75)),
            Layer("n2", "lrn", lrn=(4, 1.0, 1e-3, 0.5)),
        ],
        "chain-with-fc-and-softmax": [
            conv("c1", rng, 3, 3, 3, 6, stride=(2, 2), pad=(1, 1, 1, 1)),
            Layer("r1", "relu"),
            Layer("p1", "pool", pool=(3, 3), stride=(2, 2), pad=(0, 1, 0, 1), method="max"),
            conv("fc", rng, 9, 7, 6, 5),  # 9x7 maps: a fully-connected layer as a full-size conv
            Layer("d", "dropout", rate=0.5),
            Layer("prob", "softmax"),
        ],
    }


CASES = case_networks()


@pytest.mark.parametrize("case", sorted(CASES))
def test_keras_matches_reference(case):
    net = make_network(CASES[case])
    assert_matches_reference(net, images_for(net))


def test_chain_reaches_1x1_and_probabilities_sum_to_one():
    net = make_network(CASES["chain-with-fc-and-softmax"])
    got = assert_matches_reference(net, images_for(net))
    assert got.shape == (3, 1, 1, 5)
    np.testing.assert_allclose(got.sum(axis=-1), 1.0, rtol=1e-6)


def test_upto_and_size_agnostic_input():
    net = make_network(CASES["chain-with-fc-and-softmax"])
    assert_matches_reference(net, images_for(net), upto="p1")
    anysize = build_keras_model(net, upto="p1", input_size=(None, None))
    other = np.random.default_rng(3).integers(0, 256, (2, 41, 33, 3)).astype(np.float32)
    assert_matches_reference(net, other, upto="p1", model=anysize)


def test_tiny_vgg_face_and_descriptors(tiny_network):
    images = images_for(tiny_network, n=2)
    assert_matches_reference(tiny_network, images)
    for name, dim in (("relu7", 16), ("fc8", 2622), ("pool5", 8)):
        model = keras_descriptor_model(tiny_network, name)
        got = np.asarray(model(images, training=False))
        expected = reference.descriptor(tiny_network, images, name)
        assert got.shape == (2, dim)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


def test_weights_are_the_layer_table_untransposed(tiny_network):
    model = build_keras_model(tiny_network)
    for layer in tiny_network.layers:
        if layer.type == "conv":
            kernel, bias = model.get_layer(layer.name).get_weights()
            np.testing.assert_array_equal(kernel, layer.weights)
            np.testing.assert_array_equal(bias, layer.bias)
    assert model.count_params() == tiny_network.num_params


def test_saved_model_reloads_with_identical_outputs(tmp_path):
    layers = CASES["dilated-strided-conv"] + CASES["avg-pool-padded"][1:] + CASES["lrn-odd-and-even"][1:2]
    layers[-1] = Layer("n1", "lrn", lrn=(3, 2.0, 1e-4, 0.75))
    net = make_network(layers + [Layer("p9", "pool", pool=(2, 2), pad=(1, 0, 1, 0), method="max")])
    model = build_keras_model(net)
    images = images_for(net)
    before = assert_matches_reference(net, images, model=model)
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(np.asarray(reloaded(images, training=False)), before)


def test_descriptor_model_errors(tiny_network):
    with pytest.raises(ModelFileError, match="expected 1x1"):
        keras_descriptor_model(tiny_network, "relu7", input_size=(288, 288))
    with pytest.raises(ValueError, match="choose from relu7, fc8, pool5"):
        keras_descriptor_model(tiny_network, "fc7")


def test_unsupported_and_invalid_layers():
    with pytest.raises(UnsupportedLayerError, match="'b' has type 'bnorm'"):
        build_keras_model(make_network([Layer("b", "bnorm")]))
    with pytest.raises(ModelFileError, match="smaller than the pool window"):
        build_keras_model(make_network([Layer("p", "pool", pool=(2, 2), pad=(2, 0, 0, 0))]))
