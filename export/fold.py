"""Fold each scale-and-shift layer into the convolution before it, for the exported graph.

A convolution followed by an ``affine`` layer (dlib's frozen batch normalisation) is
one convolution: ``W' = W * gamma`` and ``b' = b * gamma + beta`` per output channel.
onnxruntime makes that fusion itself in a float graph, so fp32 and fp16 outputs do not
change; its static quantizer does not, and an int8 graph would keep a float Mul and Add
behind a dequantize/quantize pair after every convolution (measured on dlib's network:
int8 at 54 img/s unfolded, 151 folded, in one run; docs/decisions.md). The layer table
itself keeps the affine layers: this is the export's own optimisation, checked against
the NumPy reference of the unfolded table like every graph.

A pair is folded only when the convolution's output feeds the affine layer and nothing
else, and neither is a layer the caller must keep (the descriptor's).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import numpy as np

from gender_cli.convert.network import Network

INPUT = -1


def fold_affine(network: Network, keep: set[str] = frozenset()) -> Network:
    """``network`` with every foldable conv + affine pair as one conv (a new table; the
    arrays of the layers not folded are shared, never copied)."""
    layers, inputs = network.layers, network.inputs_of()
    readers = Counter(i for taken in inputs for i in taken)
    folded: dict[int, int] = {}  # affine index -> conv index
    for index, (layer, taken) in enumerate(zip(layers, inputs)):
        if layer.type != "affine" or len(taken) != 1 or layer.name in keep:
            continue
        source = taken[0]
        if source != INPUT and layers[source].type == "conv" and readers[source] == 1 and layers[source].name not in keep:
            folded[index] = source
    if not folded:
        return network
    merged = {conv: _merged(layers[conv], layers[affine]) for affine, conv in folded.items()}
    alias = {layers[affine].name: layers[conv].name for affine, conv in folded.items()}
    kept, previous = [], None
    for index, (layer, taken) in enumerate(zip(layers, inputs)):
        if index in folded:
            continue
        names = tuple(alias.get(layers[i].name, layers[i].name) if i != INPUT else None for i in taken)
        layer = merged.get(index, layer)
        if names == (previous,) or (names == (None,) and previous is None):
            layer = replace(layer, inputs=())  # the layer before it, as a chain says
        else:
            layer = replace(layer, inputs=tuple(n for n in names if n is not None))
        kept.append(layer)
        previous = layer.name
    return replace(network, layers=kept)


def _merged(conv, affine):
    gamma = np.asarray(affine.weights, np.float64)
    beta = np.asarray(affine.bias, np.float64)
    bias = np.zeros_like(gamma) if conv.bias is None else np.asarray(conv.bias, np.float64)
    return replace(
        conv,
        weights=(np.asarray(conv.weights, np.float64) * gamma).astype(np.float32),
        bias=(bias * gamma + beta).astype(np.float32),
    )
