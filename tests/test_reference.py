"""The NumPy oracle against hand-computed values and independent loop implementations."""

from __future__ import annotations

import numpy as np
import pytest

from gender_cli.convert import reference
from gender_cli.convert.kinds import conv, dropout, lrn, pool, relu, softmax
from gender_cli.convert.network import Layer, Network
from gender_cli.errors import ModelFileError, UnsupportedLayerError


def conv_by_loops(x, w, b, stride, pad, dilate):
    """vl_nnconv written as the textbook sum, with out-of-image taps read as zero."""
    n, h, wd, _ = x.shape
    kh, kw, cin, cout = w.shape
    top, bottom, left, right = pad
    ho = (h + top + bottom - ((kh - 1) * dilate[0] + 1)) // stride[0] + 1
    wo = (wd + left + right - ((kw - 1) * dilate[1] + 1)) // stride[1] + 1
    y = np.zeros((n, ho, wo, cout))
    for i in range(ho):
        for j in range(wo):
            for u in range(kh):
                for v in range(kw):
                    r = i * stride[0] - top + u * dilate[0]
                    c = j * stride[1] - left + v * dilate[1]
                    if 0 <= r < h and 0 <= c < wd:
                        y[:, i, j, :] += x[:, r, c, :] @ w[u, v]
    return y + b


@pytest.mark.parametrize(
    "size, kernel, stride, before, after, dilate, expected",
    [
        (224, 3, 1, 1, 1, 1, 224),
        (224, 2, 2, 0, 0, 1, 112),
        (7, 7, 1, 0, 0, 1, 1),
        (37, 3, 2, 0, 1, 1, 18),  # floor(35 / 2) + 1
        (29, 3, 2, 2, 0, 1, 15),  # floor(28 / 2) + 1
        (10, 3, 1, 0, 0, 2, 6),  # dilated kernel spans 5
        (10, 3, 3, 1, 0, 3, 2),  # spans 7: floor(4 / 3) + 1
    ],
)
def test_output_size_formula(size, kernel, stride, before, after, dilate, expected):
    assert reference.output_size(size, kernel, stride, before, after, dilate) == expected


def test_window_larger_than_input_is_an_error():
    with pytest.raises(ModelFileError, match="smaller than the window"):
        reference.output_size(4, 7, 1, 0, 0)


@pytest.mark.parametrize(
    "stride, pad, dilate",
    [((1, 1), (1, 1, 1, 1), (1, 1)), ((2, 1), (0, 1, 2, 0), (1, 2)), ((2, 3), (2, 0, 0, 1), (2, 1))],
)
def test_conv_matches_explicit_loops(stride, pad, dilate):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 9, 8, 3))
    w = rng.standard_normal((3, 2, 3, 4)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    layer = Layer("c", "conv", weights=w, bias=b, stride=stride, pad=pad, dilate=dilate)
    got = conv.reference(layer, x)
    np.testing.assert_allclose(got, conv_by_loops(x, w, b, stride, pad, dilate), rtol=1e-12, atol=1e-12)


def test_conv_single_tap_by_hand():
    # 1x1 input channel, 2x2 kernel of ones with bias 10: each output is a 2x2 window sum + 10.
    x = np.arange(9, dtype=float).reshape(1, 3, 3, 1)
    layer = Layer("c", "conv", weights=np.ones((2, 2, 1, 1), np.float32), bias=np.array([10.0], np.float32))
    got = conv.reference(layer, x)[0, :, :, 0]
    np.testing.assert_array_equal(got, [[0 + 1 + 3 + 4 + 10, 1 + 2 + 4 + 5 + 10], [3 + 4 + 6 + 7 + 10, 4 + 5 + 7 + 8 + 10]])


def test_conv_rejects_wrong_channel_count():
    layer = Layer("c", "conv", weights=np.ones((1, 1, 2, 1), np.float32), bias=np.zeros(1, np.float32))
    with pytest.raises(ModelFileError, match="2 input channels"):
        conv.reference(layer, np.zeros((1, 3, 3, 3)))


GRID = np.arange(16, dtype=float).reshape(1, 4, 4, 1)
PADDED_POOL = dict(pool=(2, 2), stride=(2, 2), pad=(1, 1, 1, 1))


def test_max_pool_with_padding_by_hand():
    got = pool.reference(Layer("p", "pool", method="max", **PADDED_POOL), GRID)[0, :, :, 0]
    np.testing.assert_array_equal(got, [[0, 2, 3], [8, 10, 11], [12, 14, 15]])


def test_max_pool_padding_never_wins_on_negative_input():
    got = pool.reference(Layer("p", "pool", method="max", **PADDED_POOL), -1 - GRID)[0, :, :, 0]
    np.testing.assert_array_equal(got, [[-1, -2, -4], [-5, -6, -8], [-13, -14, -16]])


def test_avg_pool_with_padding_divides_by_cells_inside_the_image():
    # MatConvNet pooling_cpu.cpp clips the window to the image before averaging.
    got = pool.reference(Layer("p", "pool", method="avg", **PADDED_POOL), GRID)[0, :, :, 0]
    expected = [
        [0, (1 + 2) / 2, 3],
        [(4 + 8) / 2, (5 + 6 + 9 + 10) / 4, (7 + 11) / 2],
        [12, (13 + 14) / 2, 15],
    ]
    np.testing.assert_allclose(got, expected, rtol=1e-15)


def test_pools_without_padding_and_asymmetric_padding():
    layer = Layer("p", "pool", method="avg", pool=(3, 2), stride=(1, 1), pad=(0, 2, 0, 1))
    got = pool.reference(layer, GRID)[0, :, :, 0]
    # windows start at rows 0..3 (floor((4 + 2 - 3) / 1) + 1 = 4) and cols 0..3
    assert got.shape == (4, 4)
    assert got[0, 0] == np.mean([0, 1, 4, 5, 8, 9])
    assert got[3, 3] == 15  # only cell (3, 3) is inside the image
    assert got[2, 3] == (11 + 15) / 2
    plain = pool.reference(Layer("p", "pool", method="max", pool=(2, 2), stride=(2, 2)), GRID)
    np.testing.assert_array_equal(plain[0, :, :, 0], [[5, 7], [13, 15]])


def test_pool_padding_as_large_as_window_is_rejected():
    with pytest.raises(ModelFileError, match="smaller than the pool window"):
        pool.reference(Layer("p", "pool", method="avg", pool=(2, 2), pad=(2, 0, 0, 0)), GRID)


def test_relu_dropout_softmax():
    x = np.array([[[[-1.0, 0.0, 2.0]]]])
    np.testing.assert_array_equal(relu.reference(Layer("r", "relu"), x), [[[[0, 0, 2]]]])
    np.testing.assert_array_equal(dropout.reference(Layer("d", "dropout"), x), x)
    p = softmax.reference(Layer("s", "softmax"), x + 1000.0)  # stable for large inputs
    np.testing.assert_allclose(p[0, 0, 0], np.exp([-1, 0, 2]) / np.exp([-1, 0, 2]).sum(), rtol=1e-14)


@pytest.mark.parametrize("depth", [3, 4, 5])
def test_lrn_matches_matconvnet_definition(depth):
    kappa, alpha, beta = 2.0, 1e-2, 0.75
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 2, 3, 7)) * 3
    got = lrn.reference(Layer("n", "lrn", lrn=(depth, kappa, alpha, beta)), x)
    m1 = (depth - 1) // 2
    m2 = depth - m1 - 1
    expected = np.empty_like(x)
    for t in range(7):
        window = range(max(0, t - m1), min(7, t + m2 + 1))
        total = sum(x[..., q] ** 2 for q in window)
        expected[..., t] = x[..., t] / (kappa + alpha * total) ** beta
    np.testing.assert_allclose(got, expected, rtol=1e-14)


def network(layers, mean=(0.0, 0.0, 0.0), input_size=(5, 4, 3)):
    return Network(layers=layers, input_size=input_size, mean=np.asarray(mean, np.float32))


def test_forward_subtracts_mean_and_accepts_uint8():
    net = network([Layer("r", "relu")], mean=(100.0, 50.0, 0.0))
    images = np.full((2, 5, 4, 3), 80, np.uint8)
    out = reference.forward(net, images)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[0, 0, 0], [0.0, 30.0, 80.0])
    np.testing.assert_array_equal(reference.forward(net, images.astype(np.float32)), out)


def test_forward_upto_and_errors():
    w = np.ones((1, 1, 3, 2), np.float32)
    net = network([Layer("c", "conv", weights=w, bias=np.zeros(2, np.float32)), Layer("s", "softmax")])
    images = np.zeros((1, 5, 4, 3))
    images[..., 0] = 2.0
    np.testing.assert_array_equal(reference.forward(net, images, upto="c")[0, 0, 0], [2.0, 2.0])
    np.testing.assert_allclose(reference.forward(net, images)[0, 0, 0], [0.5, 0.5])
    with pytest.raises(ModelFileError, match="no layer named 'nope'"):
        reference.forward(net, images, upto="nope")
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        reference.forward(net, images[0])
    bad = network([Layer("b", "bnorm")])
    with pytest.raises(UnsupportedLayerError, match="'b' has type 'bnorm'; supported types: conv, relu"):
        reference.forward(bad, images)


def test_tiny_vgg_face_shapes_and_descriptors(tiny_network):
    images = np.random.default_rng(0).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    prob = reference.forward(tiny_network, images)
    assert prob.shape == (2, 1, 1, 2622)
    np.testing.assert_allclose(prob.sum(axis=3), 1.0, rtol=1e-5)
    assert reference.forward(tiny_network, images, upto="pool5").shape == (2, 7, 7, 8)
    relu7 = reference.descriptor(tiny_network, images, "relu7")
    assert relu7.shape == (2, 16) and (relu7 >= 0).all()
    fc8 = reference.descriptor(tiny_network, images, "fc8")
    np.testing.assert_array_equal(fc8, reference.forward(tiny_network, images, upto="fc8").reshape(2, -1))
    pool5 = reference.descriptor(tiny_network, images, "pool5")
    maps = reference.forward(tiny_network, images, upto="pool5")
    np.testing.assert_allclose(pool5, maps.mean(axis=(1, 2)), rtol=1e-6)
    assert pool5.shape == (2, 8)


def test_descriptor_errors(tiny_network):
    small = np.zeros((1, 288, 288, 3), np.uint8)  # pool5 is 9x9, so fc7 maps are 3x3
    with pytest.raises(ModelFileError, match="expected 1x1"):
        reference.descriptor(tiny_network, small, "relu7")
    with pytest.raises(ValueError, match="relu7, fc8, pool5"):
        reference.descriptor(tiny_network, small, "fc7")
