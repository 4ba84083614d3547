"""One small converter per MatConvNet layer type: raw layer struct -> :class:`Layer`.

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

from gender_cli.convert.network import SUPPORTED_TYPES, Layer
from gender_cli.errors import ModelFileError, UnsupportedLayerError

Converter = Callable[[dict, str, str], Layer]  # (raw, name, label)
CONVERTERS: dict[str, Converter] = {}


def register(layer_type: str):
    """Register the decorated function as the converter of MatConvNet ``layer_type``."""

    def decorator(fn: Converter) -> Converter:
        CONVERTERS[layer_type] = fn
        return fn

    return decorator


def supported_types() -> tuple[str, ...]:
    return tuple(CONVERTERS)


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
    converter = CONVERTERS.get(layer_type)
    if converter is None:
        raise UnsupportedLayerError(
            f"{label}: layer type {layer_type!r} is not supported; "
            f"supported types: {', '.join(supported_types())}"
        )
    return converter(raw, raw_name(raw, index), label)


# -- field parsing ----------------------------------------------------------------------


def _numbers(raw: dict, field: str, label: str) -> np.ndarray | None:
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
    flat = _numbers(raw, field, label)
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


def _positive(values: tuple, field: str, label: str) -> tuple:
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


# -- converters -------------------------------------------------------------------------


@register("conv")
def _conv(raw: dict, name: str, label: str) -> Layer:
    weights, bias = conv_arrays(raw, label)
    return Layer(
        name=name,
        type="conv",
        weights=weights,
        bias=bias,
        stride=_positive(pair(raw, "stride", label, (1, 1)), "stride", label),
        pad=pad4(raw, label),
        dilate=_positive(pair(raw, "dilate", label, (1, 1)), "dilate", label),
    )


@register("relu")
def _relu(raw: dict, name: str, label: str) -> Layer:
    leak = _numbers(raw, "leak", label)
    if leak is not None and np.any(leak != 0):
        raise UnsupportedLayerError(
            f"{label}: leaky ReLU (leak={leak.tolist()}) is not supported; only leak = 0"
        )
    return Layer(name=name, type="relu")


POOL_METHODS = ("max", "avg")


@register("pool")
def _pool(raw: dict, name: str, label: str) -> Layer:
    method = raw.get("method")
    if method is None or (isinstance(method, str) and not method):
        method = "max"  # vl_simplenn_tidy's default
    if method not in POOL_METHODS:
        raise UnsupportedLayerError(
            f"{label}: pool method {method!r} is not supported; supported: {', '.join(POOL_METHODS)}"
        )
    window = pair(raw, "pool", label, None)
    if window is None:
        raise ModelFileError(f"{label}: pool layer has no 'pool' window size")
    return Layer(
        name=name,
        type="pool",
        pool=_positive(window, "pool", label),
        stride=_positive(pair(raw, "stride", label, (1, 1)), "stride", label),
        pad=pad4(raw, label),
        method=method,
    )


@register("dropout")
def _dropout(raw: dict, name: str, label: str) -> Layer:
    rate = _numbers(raw, "rate", label)
    return Layer(name=name, type="dropout", rate=0.5 if rate is None else float(rate[0]))


@register("softmax")
def _softmax(raw: dict, name: str, label: str) -> Layer:
    return Layer(name=name, type="softmax")


@register("lrn")
def _lrn(raw: dict, name: str, label: str) -> Layer:
    param = _numbers(raw, "param", label)
    if param is None or param.size != 4:
        raise ModelFileError(f"{label}: lrn 'param' must be [depth kappa alpha beta]")
    depth, kappa, alpha, beta = param.tolist()
    return Layer(name=name, type="lrn", lrn=(int(depth), kappa, alpha, beta))


if set(CONVERTERS) != set(SUPPORTED_TYPES):  # pragma: no cover - a programming error
    raise RuntimeError("layer_registry and network.SUPPORTED_TYPES disagree")
