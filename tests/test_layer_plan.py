"""One layer plan: shapes computed once from the kinds' shape rules, agreeing with the reference."""

from __future__ import annotations

import numpy as np
import pytest

from gender_cli.convert import reference
from gender_cli.convert.layer_plan import descriptor_plan, plan
from gender_cli.convert.network import Layer, Network
from gender_cli.errors import ModelFileError, UnsupportedLayerError


def test_plan_of_vgg_face_gives_each_layer_its_shape(tiny_network):
    steps = {step.layer.name: step for step in plan(tiny_network)}
    assert steps["conv1_1"].input_shape == (3, 224, 224) and steps["conv1_1"].output_shape == (4, 224, 224)
    assert steps["pool1"].output_shape == (4, 112, 112)
    assert steps["pool5"].output_shape == (8, 7, 7)
    assert steps["fc6"].fully_connected and steps["fc6"].output_shape == (16,)
    assert steps["fc7"].fully_connected and steps["fc8"].output_shape == (2622,)
    assert not steps["conv5_3"].fully_connected


@pytest.mark.parametrize("descriptor, dim, gap, flatten", [("relu7", 16, False, False), ("pool5", 8, True, False)])
def test_descriptor_plan_agrees_with_the_reference(tiny_network, descriptor, dim, gap, flatten):
    planned = descriptor_plan(tiny_network, descriptor)
    assert (planned.dim, planned.global_average_pool, planned.flatten) == (dim, gap, flatten)
    images = np.random.default_rng(0).integers(0, 256, (1, 224, 224, 3), dtype=np.uint8)
    assert reference.descriptor(tiny_network, images, descriptor).shape == (1, dim)


def test_plan_matches_the_reference_on_odd_sizes_pads_strides_and_dilation():
    rng = np.random.default_rng(1)
    layers = [
        Layer("c1", "conv", rng.standard_normal((3, 3, 3, 4), np.float32), np.zeros(4, np.float32),
              stride=(2, 1), pad=(1, 0, 2, 1), dilate=(1, 2)),
        Layer("p1", "pool", pool=(3, 2), stride=(2, 2), pad=(1, 1, 0, 1), method="avg"),
        Layer("n1", "lrn", lrn=(3, 1.0, 1e-3, 0.75)),
    ]
    network = Network(layers=layers, input_size=(37, 29, 3))
    images = rng.integers(0, 256, (1, 37, 29, 3), dtype=np.uint8)
    for step in plan(network):
        maps = reference.forward(network, images, upto=step.layer.name)
        assert step.output_shape == (maps.shape[3], maps.shape[1], maps.shape[2]), step.layer.name


def test_unsupported_type_is_named_with_its_index():
    network = Network(layers=[Layer("odd", "bnorm")], input_size=(8, 8, 3))
    with pytest.raises(UnsupportedLayerError, match=r"layer 1 'odd' has type 'bnorm'; supported types: conv"):
        plan(network)


def test_channel_mismatch_is_an_error():
    layers = [Layer("c1", "conv", np.zeros((3, 3, 5, 2), np.float32), np.zeros(2, np.float32))]
    with pytest.raises(ModelFileError, match="filters expect 5 input channels, got 3"):
        plan(Network(layers=layers, input_size=(8, 8, 3)))
