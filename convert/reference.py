"""NumPy forward pass of the layer graph: the oracle that Keras, ONNX and PyTorch are tested against.

Each kind's arithmetic is its record's ``reference`` (:mod:`gender_cli.convert.kinds`),
written from the source framework's own definition (MatConvNet ``vl_simplenn`` at test
time, dlib's ``dnn`` layers) with nothing but NumPy, so that it shares no code and no
framework with what it checks; this module walks the graph. Arithmetic is float64
throughout; results are returned as float32.

Input images are ``(N, H, W, 3)`` RGB in 0..255 (uint8 or float); ``network.mean`` is
subtracted first (a source's channel order and scale are already folded into the first
convolution, :mod:`gender_cli.convert.preprocessing`).
"""

from __future__ import annotations

import numpy as np

from gender_cli import contract
from gender_cli.convert.kinds import kind_of
from gender_cli.convert.kinds.geometry import window_positions as output_size  # noqa: F401  (the reference's own)
from gender_cli.convert.network import Network
from gender_cli.errors import ModelFileError

COMPUTE_DTYPE = np.float64


def _check_images(network: Network, images) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[3] != 3:
        raise ValueError(f"images must be (N, H, W, 3) RGB, got shape {images.shape}")
    mean = np.asarray(network.mean, dtype=COMPUTE_DTYPE).reshape(1, 1, 1, -1)
    return images.astype(COMPUTE_DTYPE) - mean


def forward(network: Network, images, upto: str | None = None) -> np.ndarray:
    """Run ``network`` on ``images`` (N, H, W, 3) RGB 0..255; return layer ``upto``'s output.

    ``upto`` is a layer name (default: the last layer). The result is (N, H', W', C)
    float32 (a fully connected layer gives (N, 1, 1, D)), computed in float64. Each
    output is kept only until the last layer that takes it has run.
    """
    last = len(network.layers) - 1 if upto is None else network.layer_index(upto)
    inputs = network.inputs_of()[: last + 1]
    last_use = {}
    for index, taken in enumerate(inputs):
        for i in taken:
            last_use[i] = index
    values = {-1: _check_images(network, images)}
    for index, layer in enumerate(network.layers[: last + 1]):
        kind = kind_of(layer, index)
        if len(inputs[index]) != kind.arity:
            raise ModelFileError(f"layer {index + 1} {layer.name!r} takes {kind.arity} input(s)")
        values[index] = kind.reference(layer, *(values[i] for i in inputs[index]))
        for i in inputs[index]:
            if last_use.get(i) == index:
                del values[i]
    return values[last].astype(np.float32)


def descriptor(network: Network, images, name: str) -> np.ndarray:
    """The (N, D) descriptor ``name`` (a ``contract.DESCRIPTORS`` key) of ``images``."""
    spec = contract.descriptor_spec(name)
    maps = forward(network, images, upto=spec.layer)
    if spec.global_average_pool:
        return maps.astype(COMPUTE_DTYPE).mean(axis=(1, 2)).astype(np.float32)
    if maps.shape[1:3] != (1, 1):
        raise ModelFileError(
            f"descriptor {name!r}: layer {spec.layer!r} gives {maps.shape[1]}x{maps.shape[2]} "
            "maps, expected 1x1 (is the input the network's input size?)"
        )
    return maps.reshape(maps.shape[0], -1)
