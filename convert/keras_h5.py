"""Read Keras HDF5 VGG-Face files (keras-vggface, deepface, deepface's gender model).

The legacy Keras 2 layout, as ``model.save_weights('x.h5')`` and ``model.save('x.h5')``
write it: the root (or a ``model_weights`` group, in whole-model files) lists
``layer_names``; each layer's group lists its ``weight_names``, datasets under those
names. The file is matched against the layer sequences of :mod:`keras_layouts` by the
order and shapes of its weighted layers (names are Keras-generated in deepface's files),
then mapped onto the VGG-Face layer plan: Conv2D kernels are HWIO already, a Dense
kernel ``[H*W*C, out]`` (rows in channels-last order) is the ``H x W x C x out`` conv
kernel reshaped. deepface's gender model becomes the backbone up to relu7 plus a head
(its 1x1 conv of 2 filters), columns in the contract's label order (male, female).

The stand-in marker is the root attribute ``gender_cli_standin``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gender_cli import contract
from gender_cli.convert.bounds import Budget
from gender_cli.convert.keras_layouts import (
    CANDIDATES, DEEPFACE_GENDER_LABELS, LABEL_NAMES, KerasLayer, sequence, weighted,
)
from gender_cli.convert.network import Layer
from gender_cli.convert.source_file import Head, LayerEntry, SourceFile, check_channels
from gender_cli.convert.vgg_face import GENDER_HEAD_ON, INPUT_SIZE, NUM_CLASSES, layer_plan
from gender_cli.errors import ModelFileError

STANDIN_ATTRIBUTE = "gender_cli_standin"
GENDER_CLASSES = 2
_NAMES = {"keras-vggface": "keras-vggface", "deepface": "deepface's VGG-Face", "deepface-gender": "deepface's gender model"}


@dataclass
class StoredLayer:
    """A layer of the file that holds weights."""

    position: int  # 1-based, in the file's layer_names
    name: str
    class_name: str  # from model_config when the file has one, else ""
    kernel: np.ndarray
    bias: np.ndarray | None

    @property
    def label(self) -> str:
        kind = self.class_name or f"kernel {'x'.join(map(str, self.kernel.shape))}"
        return f"layer {self.position} {self.name!r} ({kind})"


def _attribute_list(group, name: str) -> list[str] | None:
    """A string-list attribute, also in Keras's chunked form (name0, name1, ...)."""
    if name in group.attrs:
        values = group.attrs[name]
    elif f"{name}0" in group.attrs:
        values, chunk = [], 0
        while f"{name}{chunk}" in group.attrs:
            values.extend(group.attrs[f"{name}{chunk}"])
            chunk += 1
    else:
        return None
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in np.asarray(values).reshape(-1)]


def _text_attribute(group, name: str) -> str | None:
    if name not in group.attrs:
        return None
    value = group.attrs[name]
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0] if value.size else ""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _class_names(handle) -> dict[str, str]:
    config = _text_attribute(handle, "model_config")
    if not config:
        return {}
    try:
        layers = json.loads(config).get("config", {}).get("layers", [])
    except (ValueError, AttributeError):
        return {}
    names = {}
    for layer in layers if isinstance(layers, list) else []:
        if isinstance(layer, dict):
            name = (layer.get("config") or {}).get("name")
            if isinstance(name, str):
                names[name] = str(layer.get("class_name", ""))
    return names


def _stored_layers(handle, path: Path) -> tuple[list[StoredLayer], str]:
    root = handle
    layout = "weights"
    if _attribute_list(handle, "layer_names") is None and "model_weights" in handle:
        root, layout = handle["model_weights"], "model"
    names = _attribute_list(root, "layer_names")
    if names is None:
        raise ModelFileError(
            f"{path}: an HDF5 file without Keras weights (no 'layer_names' attribute); "
            "gender-cli reads Keras 2 HDF5 files (model.save_weights('x.h5') or model.save('x.h5'))"
        )
    classes = _class_names(handle)
    budget = Budget(path)
    stored = []
    for position, name in enumerate(names, start=1):
        if name not in root:
            raise ModelFileError(f"{path}: layer {position} {name!r} is listed but missing (truncated file?)")
        group = root[name]
        weight_names = _attribute_list(group, "weight_names") or []
        if not weight_names:
            continue
        arrays = {}
        for weight_name in weight_names:
            if weight_name not in group:
                raise ModelFileError(f"{path}: layer {position} {name!r}: weight {weight_name!r} is missing")
            budget.take_dataset(group[weight_name], f"layer {position} {name!r}: weight {weight_name!r}")
            arrays[weight_name] = np.asarray(group[weight_name], dtype=np.float32)
        kernel = next((a for n, a in arrays.items() if n.split(":")[0].endswith("kernel")), None)
        bias = next((a for n, a in arrays.items() if n.split(":")[0].endswith("bias")), None)
        if kernel is None:
            values = list(arrays.values())
            kernel, bias = values[0], (values[1] if len(values) > 1 else None)
        stored.append(StoredLayer(position, name, classes.get(name, ""), kernel, bias))
    return stored, layout


# -- matching -----------------------------------------------------------------------------


def _expected(slot: KerasLayer, spec: dict, cin: int) -> str:
    kh, kw = spec["shape"][:2] if spec else (1, 1)
    out = {"fc8": str(NUM_CLASSES), "head": str(GENDER_CLASSES)}.get(slot.table, "N")
    if slot.dense:
        return f"Dense kernel {kh * kw * cin}x{out}"
    return f"Conv2D kernel {kh}x{kw}x{cin}x{out}"


def _match(stored: list[StoredLayer], library: str, top: bool):
    """(weighted layers that match, the first that does not or None, what was expected there)."""
    slots = weighted(sequence(library, "full", top))
    specs = {spec["name"]: spec for spec in layer_plan("full")}
    cin = 3
    for i, slot in enumerate(slots):
        spec = specs.get(slot.table)
        if i >= len(stored):
            return i, None, f"{len(slots)} weighted layers"
        layer = stored[i]
        kernel = layer.kernel
        kh, kw = spec["shape"][:2] if spec else (1, 1)
        if slot.dense:
            ok = kernel.ndim == 2 and kernel.shape[0] == kh * kw * cin
        else:
            ok = kernel.ndim == 4 and kernel.shape[:3] == (kh, kw, cin)
        cout = int(kernel.shape[-1]) if kernel.ndim else 0
        fixed = {"fc8": NUM_CLASSES, "head": GENDER_CLASSES}.get(slot.table)
        ok = ok and (fixed is None or cout == fixed)
        ok = ok and (layer.bias is None or layer.bias.shape == (cout,))
        if not ok:
            return i, layer, f"a {_expected(slot, spec, cin)}"
        cin = cout
    if len(stored) > len(slots):
        return len(slots), stored[len(slots)], f"{len(slots)} weighted layers, no more"
    return len(slots), None, None


def match_library(stored: list[StoredLayer], path: Path) -> tuple[str, bool]:
    """(library, top) of the first candidate whose sequence the file follows exactly.

    Otherwise the error names the file's first layer where the closest candidates part
    from it, and what each of them has there.
    """
    results = []
    for library, top in CANDIDATES:
        matched, layer, expected = _match(stored, library, top)
        if expected is None:
            return library, top
        results.append((matched, library, top, layer, expected))
    best = max(r[0] for r in results)
    closest = [r for r in results if r[0] == best]
    layer = closest[0][3]
    if layer is None:
        where = f"the file ends after {len(stored)} weighted layers"
    else:  # the label shows the kernel itself when the file does not say the layer's class
        where = layer.label + (f": kernel {'x'.join(map(str, layer.kernel.shape))}" if layer.class_name else "")
    theirs = "; ".join(
        f"{_NAMES[library]}{'' if top else ' (no top)'} has {expected}" for _, library, top, _, expected in closest
    )
    raise ModelFileError(
        f"{path}: the layers match no VGG-Face layer sequence gender-cli knows: {where}, where {theirs} "
        "(known: keras-vggface VGG16, deepface's VGG-Face, deepface's gender model)"
    )


# -- the table -----------------------------------------------------------------------------


def _table_layers(stored: list[StoredLayer], library: str, top: bool) -> tuple[list[LayerEntry], Head | None]:
    slots = weighted(sequence(library, "full", top))
    weights = {slot.table: layer for slot, layer in zip(slots, stored)}
    classes = {slot.table: slot.class_name for slot in slots}
    entries, head = [], None
    index = 0
    for spec in layer_plan("full"):
        if library == "deepface-gender" and spec["name"] == "fc8":
            break
        if not top and spec["name"] == "fc6":
            break
        index += 1
        name, kind = spec["name"], spec["type"]
        if kind == "conv":
            source = weights[name]
            kernel = source.kernel
            if kernel.ndim == 2:  # Dense [H*W*C, out], rows in H,W,C order
                kh, kw = spec["shape"][:2]
                kernel = kernel.reshape(kh, kw, -1, kernel.shape[1])
            layer = Layer(name, "conv", weights=kernel, bias=source.bias,
                          stride=(spec["stride"],) * 2, pad=(spec["pad"],) * 4)
            entry = LayerEntry(index, name, source.class_name or classes[name], layer, params=layer.num_params)
            entry_source = source.name
        elif kind == "pool":
            layer = Layer(name, "pool", pool=(spec["pool"],) * 2, stride=(spec["stride"],) * 2,
                          pad=(spec["pad"],) * 4, method=spec["method"])
            entry, entry_source = LayerEntry(index, name, "MaxPooling2D", layer), None
        elif kind == "dropout":
            entry, entry_source = LayerEntry(index, name, "Dropout", Layer(name, "dropout", rate=spec["rate"])), None
        else:
            entry, entry_source = LayerEntry(index, name, kind, Layer(name, kind)), None
        if entry_source and entry_source != name:
            entry.type = f"{entry.type} {entry_source!r}"
        entries.append(entry)
    if library == "deepface-gender":
        source = weights["head"]
        # deepface's output order is Woman, Man; the graph's is contract.LABELS (male, female)
        source_name = {ours: theirs for theirs, ours in LABEL_NAMES.items()}
        order = [DEEPFACE_GENDER_LABELS.index(source_name[label]) for label in contract.LABELS]
        kernel = source.kernel.reshape(-1, GENDER_CLASSES)[:, order]
        bias = (source.bias if source.bias is not None else np.zeros(GENDER_CLASSES, np.float32))[order]
        head = Head(GENDER_HEAD_ON, [np.ascontiguousarray(kernel)], [np.ascontiguousarray(bias)],
                    list(contract.LABELS), list(DEEPFACE_GENDER_LABELS))
    return entries, head


def read_source(path) -> SourceFile:
    import h5py

    from gender_cli.convert.matfile import sha256_file
    from gender_cli.convert.preprocessing import CONVENTIONS

    path = Path(path)
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        detail = " ".join(str(exc).split())
        raise ModelFileError(f"{path}: cannot open the HDF5 file (truncated or corrupt?): {detail}") from None
    try:
        with handle:
            stored, layout = _stored_layers(handle, path)
            keras_version = _text_attribute(handle, "keras_version") or "unknown"
            marker = _text_attribute(handle, STANDIN_ATTRIBUTE)
    except (OSError, KeyError, RuntimeError) as exc:  # h5py raises these for damaged files
        detail = " ".join(str(exc).split())
        raise ModelFileError(f"{path}: cannot read the HDF5 file (truncated or corrupt?): {detail}") from None
    if not stored:
        raise ModelFileError(f"{path}: a Keras HDF5 file without weights")
    library, top = match_library(stored, path)
    entries, head = _table_layers(stored, library, top)
    check_channels(entries, 3, path)
    notes = [f"layers matched by order and shape to {_NAMES[library]}" + ("" if top else " (no top: up to pool5)")]
    if head is not None:
        notes.append(f"ready classifier on {head.descriptor}: outputs {', '.join(head.source_labels)} "
                     f"-> labels {', '.join(head.labels)}")
    kind = "whole-model file" if layout == "model" else "weights"
    return SourceFile(
        path=str(path),
        sha256=sha256_file(path),
        format=library,
        detail=f"Keras HDF5 {kind} (Keras {keras_version})",
        entries=entries,
        input_size=INPUT_SIZE,
        mean=CONVENTIONS[library].mean_rgb(),
        standin_note=marker or None,
        notes=notes,
        layout=layout,
        head=head,
    )
