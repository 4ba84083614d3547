"""MatConvNet layer structs -> :class:`Layer`: the field parsing, and the dispatch to
each kind's converter (``from_mat`` of its record in :mod:`gender_cli.convert.kinds`).

A raw layer is the plain dict that :mod:`gender_cli.convert.matfile` reads from a
``.mat`` file (field name -> value; a cell is a list, a char array a str, numbers are
arrays in MATLAB's own shape). Fields are always looked up by name, because their
order differs between files and between the layers of one file.

Each converter also accepts what MatConvNet's ``vl_simplenn_tidy`` upgrades: old
``filters``/``biases`` fields, scalar or 4-vector ``pad``, scalar or ``[y x]``
``stride``/``dilate``/``pool``, a missing pool ``method``, ``(K,1)`` or ``(1,K)`` biases
and conv weights whose trailing singleton dimensions MATLAB dropped.

Converters never copy weight arrays; :func:`read_mat` makes the one contiguous
float32 copy, so ``inspect`` can describe layers cheaply.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from gender_cli.convert.network import Layer
from gender_cli.errors import ModelFileError, UnsupportedLayerError

Converter = Callable[[dict, str, str], Layer]  # (raw, name, label)


def converters() -> dict[str, Converter]:
    """MatConvNet layer type -> its kind's converter, for the kinds MatConvNet has."""
    from gender_cli.convert.kinds import KINDS

    return {name: kind.from_mat for name, kind in KINDS.items() if kind.from_mat is not None}


def supported_types() -> tuple[str, ...]:
    return tuple(converters())


def layer_label(raw: dict, index: int) -> str:
    """``layer 12 'conv4_1' (conv)``: how every message names a layer (1-based index)."""
    return f"layer {index} {raw_name(raw, index)!r} ({raw_type(raw) or 'no type'})"


def raw_name(raw: dict, index: int) -> str:
    name = raw.get("name")
    return name if isinstance(name, str) and name else f"layer{index}"


def raw_type(raw: dict) -> str:
    layer_type = raw.get("type")
    return layer_type if isinstance(layer_type, str) else ""


def convert_layer(raw: dict, index: int) -> Layer:
    """Convert raw layer number ``index`` (1-based); unknown types raise UnsupportedLayerError."""
    if not isinstance(raw, dict):
        raise ModelFileError(f"layer {index} is not a struct (found {type(raw).__name__})")
    layer_type = raw_type(raw)
    label = layer_label(raw, index)
    if not layer_type:
        raise ModelFileError(f"{label} has no 'type' field")
    converter = converters().get(layer_type)
    if converter is None:
        raise UnsupportedLayerError(
            f"{label}: layer type {layer_type!r} is not supported; "
            f"supported types: {', '.join(supported_types())}"
        )
    return converter(raw, raw_name(raw, index), label)


# -- field parsing ----------------------------------------------------------------------


def numbers(raw: dict, field: str, label: str) -> np.ndarray | None:
    """The field as a flat float64 vector, or None when absent or empty."""
    value = raw.get(field)
    if value is None:
        return None
    try:
        flat = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ModelFileError(f"{label}: field {field!r} is not numeric") from None
    return flat if flat.size else None


def _ints(raw: dict, field: str, label: str, allowed_lengths: tuple[int, ...], default) -> tuple:
    flat = numbers(raw, field, label)
    if flat is None:
        return default
    if flat.size not in allowed_lengths or not np.all(flat == np.round(flat)) or np.any(flat < 0):
        raise ModelFileError(
            f"{label}: {field} = {flat.tolist()} must be {' or '.join(map(str, allowed_lengths))} "
            "non-negative integer(s)"
        )
    return tuple(int(x) for x in flat)


def pair(raw: dict, field: str, label: str, default: tuple[int, int]) -> tuple[int, int]:
    """Scalar or ``[y x]`` (stride, dilate, pool) -> (y, x)."""
    values = _ints(raw, field, label, (1, 2), default)
    return (values[0], values[0]) if len(values) == 1 else values


def pad4(raw: dict, label: str) -> tuple[int, int, int, int]:
    """Scalar or ``[top bottom left right]`` -> (top, bottom, left, right)."""
    values = _ints(raw, "pad", label, (1, 4), (0, 0, 0, 0))
    return values * 4 if len(values) == 1 else values


def positive(values: tuple, field: str, label: str) -> tuple:
    if any(v < 1 for v in values):
        raise ModelFileError(f"{label}: {field} must be at least 1, got {list(values)}")
    return values


def conv_arrays(raw: dict, label: str) -> tuple[np.ndarray, np.ndarray]:
    """(W as H x W x Cin x Cout, bias as (Cout,)) without copying; validates shapes."""
    if "weights" in raw:
        pair_ = raw["weights"]
        if not isinstance(pair_, list) or len(pair_) not in (1, 2):
            raise ModelFileError(f"{label}: 'weights' must be a cell {{W, b}}")
        weights, bias = pair_[0], (pair_[1] if len(pair_) == 2 else None)
    elif "filters" in raw:
        weights, bias = raw["filters"], raw.get("biases")
    else:
        raise ModelFileError(f"{label}: conv layer has neither 'weights' nor 'filters'")
    if not isinstance(weights, np.ndarray) or weights.dtype.kind not in "fiu" or weights.size == 0:
        raise ModelFileError(f"{label}: conv weights are not a numeric array")
    shape = weights.shape
    # MATLAB drops trailing singleton dimensions: H x W x Cin x 1 is stored as H x W x Cin.
    if weights.ndim in (2, 3):
        weights = weights.reshape(shape + (1,) * (4 - weights.ndim))
    elif weights.ndim != 4:
        raise ModelFileError(
            f"{label}: conv weights have shape {_dims(shape)}; expected 4-D H x W x Cin x Cout"
        )
    cout = weights.shape[3]
    if bias is None or (isinstance(bias, (list, np.ndarray)) and np.size(bias) == 0):
        bias = np.zeros(cout, np.float32)
    if not isinstance(bias, np.ndarray) or bias.dtype.kind not in "fiu":
        raise ModelFileError(f"{label}: conv bias is not a numeric array")
    if bias.ndim > 2 or (bias.ndim == 2 and 1 not in bias.shape) or bias.size != cout:
        raise ModelFileError(
            f"{label}: bias has shape {_dims(bias.shape)} but the weights "
            f"{_dims(weights.shape)} have {cout} output channels (expected {cout}x1)"
        )
    return weights, bias.reshape(-1)


def _dims(shape: tuple) -> str:
    return "x".join(str(d) for d in shape)
