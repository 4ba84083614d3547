"""One record per layer kind: every kind complete, every backend computing what the reference computes."""

from __future__ import annotations

import ast
import importlib.util
import inspect
from pathlib import Path

import numpy as np
import pytest

from gender_cli.convert import reference
from gender_cli.convert.kinds import KINDS, PARTS
from gender_cli.convert.layer_plan import plan
from gender_cli.convert.network import Layer, Network
from gender_cli.errors import ModelFileError

from helpers_export import odd_network, residual_network

ROOT = Path(__file__).resolve().parents[1]
NETWORKS = {"odd": odd_network, "residual": residual_network}


def _arity(function) -> int:
    parameters = list(inspect.signature(function).parameters.values())
    return len(parameters)


def test_every_kind_has_every_part_with_its_arity():
    for name, kind in KINDS.items():
        assert kind.name == name
        for part in PARTS:
            assert callable(getattr(kind, part)), f"{name} has no {part}"
        # shape(layer, *shapes), reference(layer, *arrays), onnx(g, step, dtype, *tensors), keras(layer, *tensors)
        assert _arity(kind.shape) - 1 == kind.arity, name
        assert _arity(kind.reference) - 1 == kind.arity, name
        assert _arity(kind.onnx) - 3 == kind.arity, name
        assert _arity(kind.keras) - 1 == kind.arity, name
        if kind.from_mat is not None:  # a MatConvNet kind: its stand-in fields exist in both layouts
            assert callable(kind.mat_values) and set(kind.mat_fields) == {"release", "zoo"}, name


def test_the_pytorch_port_builds_every_kind():
    # read, not imported: torch is not an install requirement
    tree = ast.parse((ROOT / "bench" / "torch_port.py").read_text())
    keys = next(
        {key.value for key in node.value.keys}
        for node in tree.body
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Dict)
        and any(getattr(t, "id", None) == "BUILDERS" for t in ([node.target] if isinstance(node, ast.AnnAssign) else node.targets))
    )
    assert keys == set(KINDS)


def test_a_join_of_different_sizes_extends_the_smaller_with_zeros():
    a = np.arange(2 * 3 * 3 * 6, dtype=np.float64).reshape(2, 3, 3, 6)
    b = np.ones((2, 4, 4, 4))
    out = KINDS["add"].reference(Layer("j", "add", inputs=("a", "b")), a, b)
    assert out.shape == (2, 4, 4, 6)
    np.testing.assert_array_equal(out[:, :3, :3, :4], a[..., :4] + 1)
    np.testing.assert_array_equal(out[:, :3, :3, 4:], a[..., 4:])  # channels only a has
    np.testing.assert_array_equal(out[:, 3, :, :4], 1)  # the row only b has
    np.testing.assert_array_equal(out[:, 3, :, 4:], 0)  # neither has it


def test_affine_is_a_per_channel_scale_and_shift():
    x = np.random.default_rng(0).standard_normal((1, 2, 2, 3))
    layer = Layer("a", "affine", weights=np.array([1.0, 2.0, -1.0], np.float32), bias=np.array([0.0, 1.0, 3.0], np.float32))
    np.testing.assert_allclose(KINDS["affine"].reference(layer, x), x * [1, 2, -1] + [0, 1, 3])
    with pytest.raises(ModelFileError, match="has 3 channels, its input 4"):
        plan(Network([layer], input_size=(2, 2, 4)))


def test_inputs_must_name_an_earlier_layer():
    layers = [Layer("j", "add", inputs=("later", "j")), Layer("later", "relu")]
    with pytest.raises(ModelFileError, match=r"layer 1 'j' takes 'later', 'j', which is not a layer before it"):
        plan(Network(layers, input_size=(4, 4, 3)))


def test_a_kind_given_the_wrong_number_of_inputs_is_refused():
    with pytest.raises(ModelFileError, match=r"'j' \(add\) takes 2 input\(s\), not 1"):
        plan(Network([Layer("j", "add")], input_size=(4, 4, 3)))


def _images(network: Network, n=3, seed=0) -> np.ndarray:
    h, w, _ = network.input_size
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def _every_output_by_onnx(network: Network, images: np.ndarray) -> dict[str, np.ndarray]:
    """Every layer's output of the ONNX graph, as NHWC (flat outputs as (N, 1, 1, D))."""
    import onnxruntime as ort

    from gender_cli.export.backbone_graph import emit_layers
    from gender_cli.export.graph_builder import GraphBuilder
    from gender_cli.export.preprocess_graph import emit_preprocess
    from gender_cli.export.proto_writer import write_model

    g = GraphBuilder()
    steps = plan(network)
    tensors = emit_layers(g, steps, emit_preprocess(g, network, np.dtype(np.float32)), np.float32)
    from onnx import ValueInfoProto

    names = {}
    for step in steps:
        if tensors[step.index] not in names.values():
            names[step.layer.name] = tensors[step.index]
            g.outputs.append(ValueInfoProto(name=tensors[step.index]))
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "graph.onnx"
        write_model(g, path, {}, external_data=False)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        values = session.run(list(names.values()), {"images": images})
    out = {}
    for name, value in zip(names, values):
        out[name] = value.transpose(0, 2, 3, 1) if value.ndim == 4 else value[:, None, None, :]
    return out


@pytest.mark.parametrize("which", sorted(NETWORKS))
def test_onnx_gives_the_reference_at_every_layer(which):
    network = NETWORKS[which]()
    images = _images(network)
    outputs = _every_output_by_onnx(network, images)
    assert {KINDS[layer.type].name for layer in network.layers if layer.name in outputs} <= set(KINDS)
    for layer in network.layers:
        if layer.name not in outputs:
            continue  # dropout: the identity, no node of its own
        expected = reference.forward(network, images, upto=layer.name)
        np.testing.assert_allclose(outputs[layer.name], expected, rtol=1e-5, atol=1e-4, err_msg=layer.name)


def test_the_two_networks_cover_every_kind():
    covered = {layer.type for make in NETWORKS.values() for layer in make().layers}
    assert covered == set(KINDS)


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="Keras needs the [train] extra")
@pytest.mark.parametrize("which", sorted(NETWORKS))
def test_keras_gives_the_reference(which):
    from gender_cli.convert.keras_model import build_keras_model

    network = NETWORKS[which]()
    images = _images(network)
    got = build_keras_model(network).predict(images.astype(np.float32), verbose=0)
    expected = reference.forward(network, images)
    np.testing.assert_allclose(got.reshape(expected.shape), expected, rtol=1e-5, atol=1e-4)


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
@pytest.mark.parametrize("which", sorted(NETWORKS))
def test_the_pytorch_port_gives_the_reference(which):
    from gender_cli.bench.torch_port import forward_numpy

    network = NETWORKS[which]()
    images = _images(network)
    expected = reference.forward(network, images)
    np.testing.assert_allclose(forward_numpy(network, images), expected, rtol=1e-5, atol=1e-4)


def test_export_folds_each_scale_and_shift_into_the_conv_before_it():
    """The residual network's three conv + affine pairs become three convs; the table
    is unchanged, and a conv whose output has another reader keeps its affine."""
    from dataclasses import replace

    from gender_cli.export.fold import fold_affine

    network = residual_network()
    folded = fold_affine(network)
    assert [l.type for l in network.layers].count("affine") == 3
    assert [l.type for l in folded.layers].count("affine") == 0 and len(folded.layers) == len(network.layers) - 3
    images = _images(network)
    np.testing.assert_allclose(reference.forward(folded, images), reference.forward(network, images), rtol=1e-5, atol=1e-5)
    shared = replace(network, layers=network.layers + [Layer("also", "relu", inputs=("block_conv2",))])
    assert "block_affine2" in {l.name for l in fold_affine(shared).layers}  # block_conv2 has two readers now
    assert "block_affine1" not in {l.name for l in fold_affine(shared).layers}
    assert fold_affine(network, keep={"stem_affine"}).layers[1].name == "stem_affine"
