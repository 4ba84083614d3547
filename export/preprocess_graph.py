"""The in-graph preprocessing: uint8 NHWC RGB images -> mean-subtracted NCHW floats.

Callers feed decoded, resized uint8 pixels and nothing else; the mean lives in the
graph (and in the metadata), so no caller can forget or double-apply it.
"""

from __future__ import annotations

import numpy as np

from gender_cli import contract
from gender_cli.convert.network import Network
from gender_cli.export.graph_builder import FLOAT, UINT8, GraphBuilder
from gender_cli.export.precision_fp16 import cast_to


def emit_preprocess(g: GraphBuilder, network: Network, dtype: np.dtype) -> str:
    """Add the ``images`` input and Cast -> Sub(mean) -> [Cast] -> Transpose; returns NCHW."""
    h, w, c = (int(s) for s in network.input_size)
    if c != 3:
        raise ValueError(f"the network takes {c} channels; the contract input is RGB (3)")
    images = g.add_input(contract.INPUT_NAME, UINT8, ["N", h, w, 3])
    as_float = g.node("Cast", [images], "images_float", to=FLOAT)
    mean = g.constant("mean_rgb", np.asarray(network.mean, np.float32).reshape(1, 1, 1, 3))
    centred = g.node("Sub", [as_float, mean], "images_centred")
    centred = cast_to(g, centred, np.dtype(dtype), "images_compute")
    return g.node("Transpose", [centred], "images_nchw", perm=[0, 3, 1, 2])
