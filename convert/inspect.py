"""What a MatConvNet file holds, as data: the report behind ``gender-cli inspect``.

Built on :func:`matfile.read_raw`, not :func:`read_mat`, so a file with layers that
``convert`` cannot handle is still listed in full: such layers show their type and a
``problem`` instead of stopping the report.
"""

from __future__ import annotations

import numpy as np

from gender_cli.convert.layer_registry import (
    CONVERTERS,
    conv_arrays,
    convert_layer,
    raw_name,
    raw_type,
    supported_types,
)
from gender_cli.convert.matfile import check_channels, read_raw
from gender_cli.convert.network import Layer
from gender_cli.errors import ModelFileError, UnsupportedLayerError


def inspect(path) -> dict:
    """Describe a MAT-file's network.

    Layers of unsupported types are listed with a ``problem``; an unreadable file or a
    malformed layer of a supported type (wrong weight shapes) raises ModelFileError.
    """
    raw = read_raw(path)
    layers = []
    channels = raw.input_size[2]  # None once a layer of unknown effect has been passed
    for index, raw_layer in enumerate(raw.layers, start=1):
        try:
            row, layer = _describe(raw_layer, index)
        except ModelFileError as exc:
            raise ModelFileError(f"{raw.path}: {exc}") from None
        if layer is None:
            channels = None
        elif channels is not None:
            channels = check_channels(layer, channels, raw_layer, index, raw.path)
        layers.append(row)
    problems = [f"layer {row['index']} {row['name']!r}: {row['problem']}" for row in layers if row["problem"]]
    return {
        "path": raw.path,
        "sha256": raw.sha256,
        "mat_version": raw.mat_version,
        "layout": raw.layout,
        "standin": raw.standin,
        "standin_note": raw.standin_note,
        "input_size": list(raw.input_size),
        "mean": [float(str(x)) for x in raw.mean],  # float32 digits, not binary noise
        "num_classes": len(raw.class_names),
        "num_params": sum(row["params"] for row in layers),
        "num_layers": len(layers),
        "convertible": not problems,
        "problems": problems,
        "notes": list(raw.notes),
        "supported_types": list(supported_types()),
        "layers": layers,
    }


def _describe(raw: dict, index: int) -> tuple[dict, Layer | None]:
    """(table row, converted layer or None); a malformed layer of a known type raises."""
    row = {
        "index": index,
        "name": raw_name(raw, index) if isinstance(raw, dict) else f"layer{index}",
        "type": raw_type(raw) if isinstance(raw, dict) else "",
        "kernel": None,
        "stride": None,
        "pad": None,
        "pool": None,
        "method": None,
        "params": 0,
        "problem": None,
    }
    try:
        layer = convert_layer(raw, index)
    except UnsupportedLayerError as exc:
        row["problem"] = _without_label(str(exc))
        if row["type"] not in CONVERTERS:
            row["params"] = _loose_param_count(raw)
        return row, None
    row["params"] = layer.num_params
    _fill(row, layer)
    return row, layer


def _fill(row: dict, layer: Layer) -> None:
    if layer.type == "conv":
        row["kernel"] = list(layer.weights.shape)
    if layer.type in ("conv", "pool"):
        row["stride"] = list(layer.stride)
        row["pad"] = list(layer.pad)
    if layer.type == "pool":
        row["pool"] = list(layer.pool)
        row["method"] = layer.method


def _without_label(message: str) -> str:
    # convert_layer's messages start with "layer N 'name' (type): "; the row already says so.
    head, sep, rest = message.partition("): ")
    return rest if sep and head.startswith("layer ") else message


def _loose_param_count(raw: dict) -> int:
    """Numeric arrays under weights/filters/biases of a layer gender-cli cannot convert."""
    try:
        weights, bias = conv_arrays(raw, "")
        return int(weights.size + bias.size)
    except ModelFileError:
        pass
    total = 0
    for key in ("weights", "filters", "biases"):
        value = raw.get(key)
        items = value if isinstance(value, list) else [value]
        total += sum(int(item.size) for item in items if isinstance(item, np.ndarray) and item.dtype.kind in "fiu")
    return total
