"""Descriptor extraction: backbone graph reuse and cache keys."""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from helpers_train import write_colour_dataset  # noqa: E402

from gender_cli.convert.reference import descriptor as reference_descriptor
from gender_cli.infer.images import load_image
from gender_cli.train.descriptors import extract_descriptors, image_key


def test_backbone_reused_per_source_and_cache_keyed_by_weights_and_layer(tmp_path, tiny_network, workspace):
    write_colour_dataset(tmp_path / "data", per_class=3)
    paths = sorted((tmp_path / "data").rglob("*.png"))
    net = dataclasses.replace(tiny_network, source_sha256="ab" * 32)
    kwargs = dict(batch_size=4, device="cpu", progress=False, workers=1)

    first = extract_descriptors(paths, net, "relu7", **kwargs)
    assert first.backbone_exported and first.backbone_path == workspace / "models" / "backbone-relu7.onnx"
    assert first.extracted == 6 and first.cached == 0
    second = extract_descriptors(paths, net, "relu7", **kwargs)
    assert not second.backbone_exported and second.cached == 6 and second.extracted == 0
    np.testing.assert_array_equal(first.descriptors, second.descriptors)

    # the graph computes the NumPy reference's descriptor
    images = np.stack([load_image(p) for p in paths])
    np.testing.assert_allclose(first.descriptors, reference_descriptor(net, images, "relu7"), rtol=1e-3, atol=1e-3)

    other = dataclasses.replace(tiny_network, source_sha256="cd" * 32)
    third = extract_descriptors(paths, other, "relu7", **kwargs)
    assert third.backbone_exported and third.cached == 0 and third.cache_dir != first.cache_dir
    pool5 = extract_descriptors(paths, other, "pool5", **kwargs)
    assert pool5.descriptors.shape == (6, 8) and pool5.cache_dir != third.cache_dir


def test_image_key_follows_content_changes(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(b"x")
    key = image_key(path)
    assert key == image_key(tmp_path / "." / "a.png")  # the resolved path counts
    os.utime(path, ns=(1, 1))
    assert image_key(path) != key
    assert image_key(tmp_path / "missing.png") is None
