"""float16 export: the dtype switch points of a natively fp16 graph.

Weights are written as float16 and the backbone computes in float16; the contract's
uint8 input, mean subtraction, head, softmax and outputs stay float32. The casts sit
right after the mean subtraction and right before the descriptor output.
"""

from __future__ import annotations

import numpy as np

from gender_cli.export.graph_builder import GraphBuilder, helper

FP16_MAX = float(np.finfo(np.float16).max)  # 65504


def cast_to(g: GraphBuilder, tensor: str, dtype: np.dtype, name: str) -> str:
    """Cast ``tensor`` (float32) to ``dtype`` unless it is float32 already."""
    if np.dtype(dtype) == np.float32:
        return tensor
    return g.node("Cast", [tensor], name, to=helper.np_dtype_to_tensor_dtype(np.dtype(dtype)))


def cast_to_float32(g: GraphBuilder, tensor: str, dtype: np.dtype, name: str) -> str:
    if np.dtype(dtype) == np.float32:
        return tensor
    return g.node("Cast", [tensor], name, to=helper.np_dtype_to_tensor_dtype(np.dtype(np.float32)))
