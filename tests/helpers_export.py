"""Shared pieces of the export tests: heads, a NumPy head forward, calibration folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gender_cli.convert.network import Layer, Network
from gender_cli.head_spec import AgeHeadSpec, HeadSpec


def save_head(run_dir: Path, descriptor: str, input_dim: int, hidden=(8,), seed=0, **spec_fields):
    """A random head (scaled to the descriptor's magnitude) saved as train would save it."""
    rng = np.random.default_rng(seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    widths = [input_dim, *hidden, 2]
    kernels = [rng.normal(0, 1 / np.sqrt(a), (a, b)).astype(np.float32) for a, b in zip(widths, widths[1:])]
    biases = [rng.normal(0, 0.1, b).astype(np.float32) for b in widths[1:]]
    fields = dict(
        descriptor=descriptor, input_dim=input_dim, hidden=list(hidden), dropout=0.3,
        labels=["male", "female"], threshold=0.5, standin=True,
        metrics={"accuracy": 0.5, "auc": 0.5},
    )
    fields.update(spec_fields)
    HeadSpec(**fields).save(run_dir, kernels, biases)
    return run_dir, kernels, biases


def save_age_head(run_dir: Path, descriptor: str, input_dim: int, hidden=(8,), seed=1, **spec_fields):
    """A random age head (softmax over the ages 0-100) saved as train would save it."""
    rng = np.random.default_rng(seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    spec = AgeHeadSpec(descriptor=descriptor, input_dim=input_dim, hidden=list(hidden), dropout=0.2, standin=True,
                       metrics={"test_mae": 9.5}, **spec_fields)
    widths = [input_dim, *hidden, len(spec.age_values())]
    kernels = [rng.normal(0, 3 / np.sqrt(a), (a, b)).astype(np.float32) for a, b in zip(widths, widths[1:])]
    biases = [rng.normal(0, 0.5, b).astype(np.float32) for b in widths[1:]]
    spec.save(run_dir, kernels, biases)
    return run_dir, kernels, biases


def numpy_age(descriptors: np.ndarray, kernels, biases) -> np.ndarray:
    """DEX's estimate in float64: the expected value of the softmax over the ages 0-100."""
    return numpy_head(descriptors, kernels, biases) @ np.arange(101, dtype=np.float64)


def numpy_head(descriptors: np.ndarray, kernels, biases) -> np.ndarray:
    x = descriptors.astype(np.float64)
    for i, (k, b) in enumerate(zip(kernels, biases)):
        x = x @ k.astype(np.float64) + b
        if i < len(kernels) - 1:
            x = np.maximum(x, 0)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def write_image_folder(folder: Path, count: int, size=(224, 224), seed=7) -> Path:
    from PIL import Image

    from gender_cli.export.calibration import synthetic_images

    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(synthetic_images(size, count, seed).images):
        Image.fromarray(image).save(folder / f"face_{i:03d}.png")
    return folder


def odd_network(seed=0) -> Network:
    """Every layer type and awkward geometry export supports, with descriptor layers.

    Non-square input, stride 2, asymmetric pads, dilation, LRN, average pooling with
    padding (MatConvNet excludes padded cells), max pooling with padding, an fc6 that
    covers its whole input, and names relu7/fc8/pool5 so all descriptors exist.
    """
    rng = np.random.default_rng(seed)

    def conv(name, shape, **kw):
        w = rng.standard_normal(shape).astype(np.float32) * np.float32(np.sqrt(2 / np.prod(shape[:3])))
        return Layer(name=name, type="conv", weights=w, bias=rng.normal(0, 0.1, shape[3]).astype(np.float32), **kw)

    layers = [
        conv("conv_a", (3, 3, 3, 6), stride=(2, 1), pad=(1, 0, 2, 1)),
        Layer(name="relu_a", type="relu"),
        Layer(name="norm_a", type="lrn", lrn=(5, 2.0, 1e-4, 0.75)),
        Layer(name="pool_a", type="pool", pool=(3, 2), stride=(2, 1), pad=(1, 1, 0, 1), method="avg"),
        conv("conv_b", (3, 3, 6, 5), pad=(2, 2, 2, 2), dilate=(2, 2)),
        Layer(name="relu_b", type="relu"),
        Layer(name="pool5", type="pool", pool=(2, 2), stride=(2, 2), pad=(0, 1, 0, 1), method="max"),
    ]
    net = Network(layers=layers, input_size=(21, 17, 3), mean=np.array([120.0, 110.0, 100.0], np.float32))
    from gender_cli.convert import reference

    _, h, w, c = reference.forward(net, np.zeros((1, 21, 17, 3), np.uint8), upto="pool5").shape
    net.layers += [
        conv("fc6", (h, w, c, 7)),
        Layer(name="relu6", type="relu"),
        Layer(name="dropout6", type="dropout"),
        conv("fc7", (1, 1, 7, 6)),
        Layer(name="relu7", type="relu"),
        conv("fc8", (1, 1, 6, 4)),
        Layer(name="prob", type="softmax"),
    ]
    return net


def residual_network(seed=0) -> Network:
    """A small graph with every kind dlib's face network uses, in its awkward corners.

    A stem (conv, affine, relu), a strided residual block whose 3x3 output with 6
    channels meets its average-pooled 4x4 shortcut with 4 channels (the join extends
    the smaller with zeros), a padded max pool, the global average and a fully
    connected ``fc`` (descriptors ``embedding`` and ``pooled`` exist).
    """
    rng = np.random.default_rng(seed)

    def conv(name, shape, **kw):
        w = rng.standard_normal(shape).astype(np.float32) * np.float32(np.sqrt(2 / np.prod(shape[:3])))
        return Layer(name=name, type="conv", weights=w, bias=rng.normal(0, 0.1, shape[3]).astype(np.float32), **kw)

    def affine(name, channels, **kw):
        return Layer(name=name, type="affine", weights=rng.uniform(0.5, 1.5, channels).astype(np.float32),
                     bias=rng.normal(0, 0.2, channels).astype(np.float32), **kw)

    layers = [
        conv("stem", (3, 3, 3, 4), stride=(2, 2)),
        affine("stem_affine", 4),
        Layer(name="stem_relu", type="relu"),
        conv("block_conv1", (3, 3, 4, 6), stride=(2, 2)),
        affine("block_affine1", 6),
        Layer(name="block_relu1", type="relu"),
        conv("block_conv2", (3, 3, 6, 6), pad=(1, 1, 1, 1)),
        affine("block_affine2", 6),
        Layer(name="shortcut", type="pool", pool=(2, 2), stride=(2, 2), method="avg", inputs=("stem_relu",)),
        Layer(name="join", type="add", inputs=("block_affine2", "shortcut")),
        Layer(name="join_relu", type="relu"),
        Layer(name="pool", type="pool", pool=(3, 3), stride=(2, 2), pad=(1, 1, 1, 1), method="max"),
        Layer(name="global_pool", type="global_pool"),
        Layer(name="fc", type="conv", weights=rng.standard_normal((1, 1, 6, 5)).astype(np.float32) * 0.4,
              bias=np.zeros(5, np.float32)),
    ]
    return Network(layers=layers, input_size=(17, 23, 3), mean=np.array([122.8, 117.0, 104.3], np.float32))
