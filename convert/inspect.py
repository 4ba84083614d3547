"""What a weights file holds, as data: the report behind ``gender-cli inspect``.

Built on the format readers' layer entries (:mod:`formats`), not on the finished layer
table, so a file with layers that ``convert`` cannot handle is still listed in full:
such layers show their type and a ``problem`` instead of stopping the report, and a
file without a mean says "none".
"""

from __future__ import annotations

from gender_cli.convert.formats import read_source
from gender_cli.convert.source_file import LayerEntry


def inspect(path, prototxt=None) -> dict:
    """Describe any supported weights file (MAT, Caffe, Keras HDF5).

    Layers of unsupported types are listed with a ``problem``; an unreadable file or a
    malformed layer of a supported type (wrong weight shapes) raises ModelFileError.
    """
    source = read_source(path, prototxt)
    layers = [_row(entry) for entry in source.entries]
    head = source.head
    return {
        "path": source.path,
        "sha256": source.sha256,
        "format": source.format,
        "detail": source.detail,
        "mat_version": source.mat_version,
        "layout": source.layout,
        "standin": source.standin,
        "standin_note": source.standin_note,
        "input_size": list(source.input_size),
        "mean": None if source.mean is None else [float(str(x)) for x in source.mean],  # float32 digits
        "num_classes": len(source.class_names),
        "num_params": sum(row["params"] for row in layers)
        + (sum(int(k.size + b.size) for k, b in zip(head.kernels, head.biases)) if head else 0),
        "num_layers": len(layers),
        "convertible": not source.problems,
        "problems": source.problems,
        "notes": list(source.notes),
        "supported_types": _supported_types(source.format),
        "head": None if head is None else {
            "descriptor": head.descriptor,
            "shape": [list(k.shape) for k in head.kernels],
            "labels": list(head.labels),
            "source_labels": list(head.source_labels),
        },
        "layers": layers,
    }


def _supported_types(format_name: str) -> list[str]:
    if format_name == "caffe":
        from gender_cli.convert.caffe_reader import CONVERTERS

        return list(CONVERTERS)
    if format_name == "dlib":
        from gender_cli.convert.dlib_reader import SUPPORTED_TYPES

        return list(SUPPORTED_TYPES)
    from gender_cli.convert.layer_registry import supported_types

    return list(supported_types())


def _row(entry: LayerEntry) -> dict:
    layer = entry.layer
    row = {
        "index": entry.index,
        "name": entry.name,
        "type": entry.type,
        "kernel": None,
        "stride": None,
        "pad": None,
        "pool": None,
        "method": None,
        "params": entry.params,
        "problem": entry.problem,
        "inputs": None,  # the layers it takes, where not the one before it (a residual join)
    }
    if layer is None:
        return row
    if layer.inputs:
        row["inputs"] = list(layer.inputs)
    if layer.type == "conv":
        row["kernel"] = list(layer.weights.shape)
    if layer.type in ("conv", "pool"):
        row["stride"] = list(layer.stride)
        row["pad"] = list(layer.pad)
    if layer.type == "pool":
        row["pool"] = list(layer.pool)
        row["method"] = layer.method
    return row
