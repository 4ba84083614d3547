"""Read Caffe ``.caffemodel`` weights (and a deploy ``.prototxt``) into layer entries.

Both ways Caffe stores a net are read: the old V1 ``layers`` field with enum layer types
(the 2015 VGG-Face release) and the current ``layer`` field; a ``BlobProto`` with
``shape`` or the legacy num/channels/height/width, ``data`` (float) or ``double_data``.

The binary is walked over a memory map (:mod:`protowire`): each layer's small fields are
parsed by the protobuf runtime (:mod:`caffe_proto`), its blobs become zero-copy views.
A deploy ``.prototxt`` (``--prototxt``) gives the layer order and parameters when the
binary lacks them, and is cross-checked against the binary when both have them.

Conversion to the layer table (HWIO weights, MatConvNet geometry), one converter per
Caffe type (``CONVERTERS``):

* Convolution: OIHW weights, symmetric pads, dilation; groups are not supported.
* InnerProduct: its input is flattened in C,H,W order, so on H x W x C maps it is an
  H x W convolution with weights ``(O, C, H, W)`` transposed to ``(H, W, C, O)``.
* Pooling: Caffe rounds the output size up (and drops a last window that would start
  in the padding); the table's floor rule gets the same size from extra bottom/right
  padding, which max pooling ignores. Average pooling with explicit padding divides by
  padded cells in Caffe, unlike the table, and is refused.
* LRN: Caffe divides alpha by local_size, the table (MatConvNet) does not.
* ReLU (no negative slope), Dropout (identity), Softmax over channels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from gender_cli.convert import caffe_proto, protowire
from gender_cli.convert.layer_plan import next_shape
from gender_cli.convert.network import Layer
from gender_cli.convert.preprocessing import VGG_FACE_MEAN_BGR
from gender_cli.convert.source_file import LayerEntry, SourceFile, check_channels, map_file
from gender_cli.convert.vgg_face import INPUT_SIZE, matches_plan
from gender_cli.errors import ModelFileError

INPUT_TYPES = ("Input", "Data", "ImageData", "MemoryData", "DummyData", "HDF5Data", "WindowData")
PROTOTXT_OPTION = "--prototxt"


class NotCaffeError(ModelFileError):
    """Bytes that do not parse as a Caffe NetParameter with layers."""


class _Unsupported(Exception):
    """A layer gender-cli cannot convert: the message becomes the entry's problem."""


@dataclass
class Blob:
    shape: tuple[int, ...]
    data: np.ndarray  # flat view into the file, float32 or float64


@dataclass
class CaffeLayer:
    message: object  # LayerParameter or V1LayerParameter (without its blobs)
    blobs: list[Blob] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.message.name

    @property
    def type(self) -> str:
        return caffe_proto.layer_type_name(self.message)


@dataclass
class CaffeModel:
    """What the binary holds: its header fields and its layers (V1 or current)."""

    header: object  # NetParameter without layers
    layers: list[CaffeLayer]
    field: str  # "layers" (V1) or "layer"


# -- the binary ---------------------------------------------------------------------------


def read_caffemodel(path) -> CaffeModel:
    """Walk a binary NetParameter; ModelFileError for anything that is not one."""
    path = Path(path)
    buffer = map_file(path)
    try:
        model = _walk(buffer)
    except (protowire.WireError, _DecodeError) as exc:
        raise NotCaffeError(f"{path}: not a complete Caffe binary protobuf (truncated or corrupt?): {exc}") from None
    if not model.layers:
        raise NotCaffeError(f"{path}: a protobuf message without Caffe layers")
    return model


class _DecodeError(Exception):
    pass


def _parse(name: str, data: bytes):
    from google.protobuf.message import DecodeError

    message = caffe_proto.message_class(name)()
    try:
        message.ParseFromString(data)
    except DecodeError as exc:
        raise _DecodeError(f"{name}: {exc}") from None
    return message


def _walk(buffer) -> CaffeModel:
    header_bytes = bytearray()
    found: dict[str, list] = {"layer": [], "layers": []}
    for f in protowire.iter_fields(buffer):
        kind = caffe_proto.NET_LAYER_FIELDS.get(f.number)
        if kind and f.wire_type == protowire.LENGTH_DELIMITED:
            found[kind].append(f)
        else:
            header_bytes += f.bytes_of(buffer)
    header = _parse("NetParameter", bytes(header_bytes))
    if found["layer"] and found["layers"]:
        raise _DecodeError("the net has both V1 'layers' and current 'layer' fields")
    kind = "layers" if found["layers"] else "layer"
    message_name = "V1LayerParameter" if kind == "layers" else "LayerParameter"
    blobs_field = caffe_proto.LAYER_BLOBS_FIELD[kind]
    layers = []
    for layer_field in found[kind]:
        rest, blobs = bytearray(), []
        for f in protowire.iter_fields(buffer, layer_field.value_start, layer_field.end):
            if f.number == blobs_field and f.wire_type == protowire.LENGTH_DELIMITED:
                blobs.append(_blob(buffer, f))
            else:
                rest += f.bytes_of(buffer)
        layers.append(CaffeLayer(_parse(message_name, bytes(rest)), blobs))
    return CaffeModel(header, layers, kind)


def _blob(buffer, blob_field) -> Blob:
    numbers = caffe_proto.BLOB_FIELDS
    legacy = {}
    shape = None
    data = {"data": [], "double_data": []}
    for f in protowire.iter_fields(buffer, blob_field.value_start, blob_field.end):
        if f.number in (numbers["num"], numbers["channels"], numbers["height"], numbers["width"]):
            legacy[f.number] = f.value
        elif f.number == numbers["shape"]:
            shape = tuple(int(d) for d in _parse("BlobShape", bytes(buffer[f.value_start : f.end])).dim)
        elif f.number in (numbers["data"], numbers["double_data"]):
            kind, dtype = ("data", "<f4") if f.number == numbers["data"] else ("double_data", "<f8")
            if f.wire_type == protowire.LENGTH_DELIMITED:
                data[kind].append(protowire.floats(buffer, f, dtype))
            else:  # unpacked: one element per field (legal, and rare)
                data[kind].append(np.frombuffer(buffer, dtype, 1, f.value_start))
    values = data["data"] or data["double_data"]
    array = values[0] if len(values) == 1 else (np.concatenate(values) if values else np.zeros(0, np.float32))
    if shape is None:
        dims = [legacy.get(numbers[k], 0) for k in ("num", "channels", "height", "width")]
        shape = tuple(int(d) for d in dims) if any(dims) else (array.size,)
    return Blob(shape, array)


# -- the deploy file ------------------------------------------------------------------------


def read_prototxt(path):
    """A text NetParameter; fields outside the declared subset are skipped."""
    from google.protobuf import text_format

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ModelFileError(f"{path}: not a text .prototxt (binary content)") from None
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    message = caffe_proto.message_class("NetParameter")()
    try:
        text_format.Parse(text, message, allow_unknown_field=True)
    except text_format.ParseError as exc:
        raise ModelFileError(f"{path}: not a Caffe text .prototxt: {' '.join(str(exc).split())}") from None
    if not message.layer and not message.layers:
        raise ModelFileError(f"{path}: a .prototxt without layers")
    return message


# -- geometry of one layer -----------------------------------------------------------------


def _pair(repeated, h, w, has_h, default: int, what: str, label: str) -> tuple[int, int]:
    if has_h:
        return int(h), int(w)
    values = [int(v) for v in repeated]
    if not values:
        return default, default
    if len(values) == 1:
        return values[0], values[0]
    if len(values) == 2:
        return values[0], values[1]
    raise _Bad(f"{label}: {what} has {len(values)} values; a 2-D layer takes 1 or 2")


class _Bad(Exception):
    """A malformed layer of a known type: a ModelFileError naming the layer."""


def conv_geometry(message, label: str) -> dict:
    p = message.convolution_param
    return {
        "num_output": int(p.num_output) if p.HasField("num_output") else None,
        "kernel": _pair(p.kernel_size, p.kernel_h, p.kernel_w, p.HasField("kernel_h"), 0, "kernel_size", label),
        "stride": _pair(p.stride, p.stride_h, p.stride_w, p.HasField("stride_h"), 1, "stride", label),
        "pad": _pair(p.pad, p.pad_h, p.pad_w, p.HasField("pad_h"), 0, "pad", label),
        "dilation": _pair(p.dilation, 1, 1, False, 1, "dilation", label),
        "group": int(p.group),
        "bias_term": bool(p.bias_term),
        "axis": int(p.axis),
    }


def pool_geometry(message, label: str) -> dict:
    p = message.pooling_param
    enum = p.DESCRIPTOR.fields_by_name
    return {
        "method": enum["pool"].enum_type.values_by_number[p.pool].name,
        "global": bool(p.global_pooling),
        "kernel": _pair([p.kernel_size] if p.HasField("kernel_size") else [], p.kernel_h, p.kernel_w,
                        p.HasField("kernel_h"), 0, "kernel_size", label),
        "stride": _pair([p.stride], p.stride_h, p.stride_w, p.HasField("stride_h"), 1, "stride", label),
        "pad": _pair([p.pad], p.pad_h, p.pad_w, p.HasField("pad_h") or p.HasField("pad_w"), 0, "pad", label),
        "round": enum["round_mode"].enum_type.values_by_number[p.round_mode].name,
    }


def inner_product_geometry(message, label: str) -> dict:
    p = message.inner_product_param
    return {
        "num_output": int(p.num_output) if p.HasField("num_output") else None,
        "bias_term": bool(p.bias_term),
        "axis": int(p.axis),
        "transpose": bool(p.transpose),
    }


def lrn_geometry(message, label: str) -> dict:
    p = message.lrn_param
    region = p.DESCRIPTOR.fields_by_name["norm_region"].enum_type.values_by_number[p.norm_region].name
    return {"local_size": int(p.local_size), "alpha": float(p.alpha), "beta": float(p.beta),
            "k": float(p.k), "region": region}


def relu_geometry(message, label: str) -> dict:
    return {"negative_slope": float(message.relu_param.negative_slope)}


def softmax_geometry(message, label: str) -> dict:
    return {"axis": int(message.softmax_param.axis)}


def dropout_geometry(message, label: str) -> dict:
    return {"rate": float(message.dropout_param.dropout_ratio)}


# -- converters: (CaffeLayer, input shape, label) -> Layer ------------------------------------

Shape = tuple  # per image, as layer_plan has it: (C, H, W) maps or (D,) after a fully connected layer


def _hwc(shape: Shape) -> tuple[int, int, int]:
    return (1, 1, shape[0]) if len(shape) == 1 else (shape[1], shape[2], shape[0])


def _weights_blobs(layer: CaffeLayer, bias_term: bool, label: str) -> tuple[Blob, Blob | None]:
    wanted = 2 if bias_term else 1
    if len(layer.blobs) != wanted:
        raise _Bad(f"{label}: has {len(layer.blobs)} weight blobs; expected {wanted} "
                   f"({'weights and bias' if bias_term else 'weights'})")
    weights, bias = layer.blobs[0], (layer.blobs[1] if bias_term else None)
    if weights.data.size != math.prod(weights.shape) or weights.data.size == 0:
        raise _Bad(f"{label}: weight blob of shape {_dims(weights.shape)} holds {weights.data.size} values")
    return weights, bias


def _bias(bias: Blob | None, outputs: int, label: str) -> np.ndarray | None:
    if bias is None:
        return None
    if bias.data.size != outputs:
        raise _Bad(f"{label}: bias blob holds {bias.data.size} values for {outputs} outputs")
    return bias.data


def _dims(shape) -> str:
    return "x".join(str(d) for d in shape)


def _conv(layer: CaffeLayer, shape: Shape | None, label: str) -> Layer:
    g = conv_geometry(layer.message, label)
    if g["group"] != 1:
        raise _Unsupported(f"grouped convolution (group {g['group']}) is not supported")
    if g["axis"] != 1:
        raise _Unsupported(f"convolution over axis {g['axis']} is not supported (only 1, channels)")
    weights, bias = _weights_blobs(layer, g["bias_term"], label)
    dims = weights.shape
    if len(dims) != 4:
        raise _Bad(f"{label}: weight blob of shape {_dims(weights.shape)}; expected 4-D (outputs, inputs, kh, kw)")
    cout, cin, kh, kw = dims
    if g["kernel"] != (0, 0) and g["kernel"] != (kh, kw):
        raise _Bad(f"{label}: kernel_size {g['kernel']} but the weight blob is {_dims(dims)}")
    if g["num_output"] is not None and g["num_output"] != cout:
        raise _Bad(f"{label}: num_output {g['num_output']} but the weight blob is {_dims(dims)}")
    oihw = weights.data.reshape(cout, cin, kh, kw)
    (ph, pw), (sy, sx), (dy, dx) = g["pad"], g["stride"], g["dilation"]
    return Layer(
        name=layer.name, type="conv", weights=oihw.transpose(2, 3, 1, 0),
        bias=_bias(bias, cout, label), stride=(sy, sx), pad=(ph, ph, pw, pw), dilate=(dy, dx),
    )


def _inner_product(layer: CaffeLayer, shape: Shape | None, label: str) -> Layer:
    g = inner_product_geometry(layer.message, label)
    if g["axis"] != 1:
        raise _Unsupported(f"inner product over axis {g['axis']} is not supported (only 1)")
    weights, bias = _weights_blobs(layer, g["bias_term"], label)
    if shape is None:
        raise _Unsupported("its input shape is unknown (it follows a layer gender-cli cannot convert)")
    height, width, channels = _hwc(shape)
    inputs = height * width * channels
    matrix = weights.data.reshape(-1, inputs) if not g["transpose"] else weights.data.reshape(inputs, -1).T
    outputs = matrix.shape[0]
    if matrix.size != weights.data.size or g["num_output"] not in (None, outputs):
        raise _Bad(f"{label}: weight blob {_dims(weights.shape)} does not map its {height}x{width}x{channels} "
                   f"input ({inputs} values) to num_output {g['num_output']}")
    # Caffe flattens (C, H, W): row o of the matrix is an (C, H, W) filter.
    kernel = matrix.reshape(outputs, channels, height, width).transpose(2, 3, 1, 0)
    return Layer(name=layer.name, type="conv", weights=kernel, bias=_bias(bias, outputs, label))


def _output_length(size: int, kernel: int, stride: int, pad: int, round_mode: str) -> int:
    """Caffe's PoolingLayer::Reshape (ceil by default, last window inside image + pad)."""
    span = size + 2 * pad - kernel
    if round_mode == "FLOOR":
        return span // stride + 1
    length = -(-span // stride) + 1
    if pad and (length - 1) * stride >= size + pad:
        length -= 1
    return length


def _pooling(layer: CaffeLayer, shape: Shape | None, label: str) -> Layer:
    g = pool_geometry(layer.message, label)
    if g["method"] == "STOCHASTIC":
        raise _Unsupported("stochastic pooling is not supported (only MAX and AVE)")
    if shape is None:
        raise _Unsupported("its input shape is unknown (it follows a layer gender-cli cannot convert)")
    if len(shape) == 1:
        raise _Unsupported("pooling after a fully connected layer is not supported")
    _, height, width = shape
    if g["global"]:
        (kh, kw), (sy, sx), (ph, pw) = (height, width), (1, 1), (0, 0)
    else:
        (kh, kw), (sy, sx), (ph, pw) = g["kernel"], g["stride"], g["pad"]
    if min(kh, kw) < 1:
        raise _Bad(f"{label}: pooling without a kernel size")
    if g["method"] == "AVE" and (ph or pw):
        raise _Unsupported("average pooling with padding (Caffe counts padded cells; gender-cli's table does not)")
    if ph >= kh or pw >= kw:
        raise _Bad(f"{label}: pad {ph, pw} must be smaller than the kernel {kh, kw}")
    out_h = _output_length(height, kh, sy, ph, g["round"])
    out_w = _output_length(width, kw, sx, pw, g["round"])
    extra_h = max(0, (out_h - 1) * sy + kh - (height + 2 * ph))
    extra_w = max(0, (out_w - 1) * sx + kw - (width + 2 * pw))
    return Layer(
        name=layer.name, type="pool", pool=(kh, kw), stride=(sy, sx),
        pad=(ph, ph + extra_h, pw, pw + extra_w), method="max" if g["method"] == "MAX" else "avg",
    )


def _relu(layer: CaffeLayer, shape: Shape | None, label: str) -> Layer:
    slope = relu_geometry(layer.message, label)["negative_slope"]
    if slope != 0:
        raise _Unsupported(f"leaky ReLU (negative_slope {slope:g}) is not supported; only 0")
    return Layer(name=layer.name, type="relu")


def _lrn(layer: CaffeLayer, shape: Shape | None, label: str) -> Layer:
    g = lrn_geometry(layer.message, label)
    if g["region"] != "ACROSS_CHANNELS":
        raise _Unsupported(f"LRN {g['region']} is not supported (only ACROSS_CHANNELS)")
    if g["local_size"] % 2 == 0:
        raise _Bad(f"{label}: LRN local_size {g['local_size']} is even; Caffe only takes odd sizes")
    size = g["local_size"]
    return Layer(name=layer.name, type="lrn", lrn=(size, g["k"], g["alpha"] / size, g["beta"]))


def _dropout(layer: CaffeLayer, shape: Shape | None, label: str) -> Layer:
    return Layer(name=layer.name, type="dropout", rate=dropout_geometry(layer.message, label)["rate"])


def _softmax(layer: CaffeLayer, shape: Shape | None, label: str) -> Layer:
    axis = softmax_geometry(layer.message, label)["axis"]
    if axis != 1:
        raise _Unsupported(f"softmax over axis {axis} is not supported (only 1, channels)")
    return Layer(name=layer.name, type="softmax")


Converter = Callable[[CaffeLayer, "Shape | None", str], Layer]
CONVERTERS: dict[str, Converter] = {
    "Convolution": _conv,
    "InnerProduct": _inner_product,
    "Pooling": _pooling,
    "ReLU": _relu,
    "LRN": _lrn,
    "Dropout": _dropout,
    "Softmax": _softmax,
}
# What each type's parameters are, for the prototxt/binary cross-check.
GEOMETRY = {
    "Convolution": ("convolution_param", conv_geometry),
    "InnerProduct": ("inner_product_param", inner_product_geometry),
    "Pooling": ("pooling_param", pool_geometry),
    "ReLU": ("relu_param", relu_geometry),
    "LRN": ("lrn_param", lrn_geometry),
    "Softmax": ("softmax_param", softmax_geometry),
}
# A binary layer of these types without its parameter message cannot be converted alone.
NEEDS_PARAMETERS = {"Convolution": "convolution_param", "Pooling": "pooling_param"}


# -- the whole file ---------------------------------------------------------------------------


def read_source(path, prototxt=None) -> SourceFile:
    """Every layer of a Caffe net, converted where gender-cli knows its type."""
    from gender_cli.convert.matfile import sha256_file

    path = Path(path)
    model = read_caffemodel(path)
    notes: list[str] = []
    if prototxt is not None:
        definition = read_prototxt(prototxt)
        layers = _with_binary_blobs(definition, model, path, Path(prototxt))
        net = definition
        detail_source = f"layer parameters from {Path(prototxt).name}"
    else:
        _require_parameters(model, path)
        layers, net = model.layers, model.header
        detail_source = "layer parameters from the binary"
    entries, input_size, mean_bgr = _entries(net, layers, path, notes)
    table = [e.layer for e in entries if e.layer is not None]
    mean = None
    if mean_bgr is not None:
        mean = np.asarray(mean_bgr[::-1], np.float32)
    elif not any(e.problem for e in entries) and matches_plan(table):
        mean = np.asarray(VGG_FACE_MEAN_BGR[::-1], np.float32)
        notes.append("no mean in the file: the layers are VGG-Face's, so its training mean "
                     f"(BGR {', '.join(map(str, VGG_FACE_MEAN_BGR))}) is used")
    else:
        notes.append("no mean in the file: convert needs --mean R,G,B")
    check_channels(entries, input_size[2], path)
    marker = getattr(model.header, caffe_proto.STANDIN_FIELD)
    version = "V1 'layers'" if model.field == "layers" else "current 'layer'"
    return SourceFile(
        path=str(path),
        sha256=sha256_file(path),
        format="caffe",
        detail=f"Caffe binary protobuf, {version} field, {detail_source}",
        entries=entries,
        input_size=input_size,
        mean=mean,
        standin_note=marker or None,
        notes=notes,
        layout="v1" if model.field == "layers" else "layer",
    )


def _require_parameters(model: CaffeModel, path: Path) -> None:
    for index, layer in enumerate(model.layers, start=1):
        needed = NEEDS_PARAMETERS.get(layer.type)
        if not layer.type or (needed and not layer.message.HasField(needed)):
            what = f"its {needed}" if layer.type else "its type"
            raise ModelFileError(
                f"{path}: layer {index} {layer.name!r} ({layer.type or 'no type'}): the binary lacks {what}; "
                f"give the deploy file with {PROTOTXT_OPTION} FILE (e.g. VGG_FACE_deploy.prototxt)"
            )


def _with_binary_blobs(definition, model: CaffeModel, path: Path, prototxt: Path) -> list[CaffeLayer]:
    """The prototxt's layers, each with the binary's blobs, cross-checked where both say."""
    by_name = {layer.name: layer for layer in model.layers}
    deploy_layers = list(definition.layer or definition.layers)
    layers = []
    for index, message in enumerate(deploy_layers, start=1):
        layer = CaffeLayer(message)
        label = f"layer {index} {layer.name!r} ({layer.type or 'no type'})"
        stored = by_name.get(layer.name)
        if stored is not None:
            if stored.type and stored.type != layer.type:
                raise ModelFileError(
                    f"{path}: {label}: the prototxt says type {layer.type}, the caffemodel says {stored.type}"
                )
            _cross_check(layer, stored, label, path, prototxt)
            layer.blobs = stored.blobs
        elif layer.type in ("Convolution", "InnerProduct"):
            raise ModelFileError(f"{path}: {label}: no weights for this layer in the caffemodel "
                                 f"(is {prototxt.name} its deploy file?)")
        layers.append(layer)
    return layers


def _cross_check(layer: CaffeLayer, stored: CaffeLayer, label: str, path: Path, prototxt: Path) -> None:
    param, geometry = GEOMETRY.get(layer.type, (None, None))
    if param is None or not stored.message.HasField(param) or not layer.message.HasField(param):
        return
    try:
        mine, theirs = geometry(layer.message, label), geometry(stored.message, label)
    except _Bad as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    for key, value in mine.items():
        if theirs[key] != value:
            raise ModelFileError(
                f"{path}: {label}: {prototxt.name} says {key} {value}, the caffemodel says {theirs[key]}"
            )


def _input(net, layers: list[CaffeLayer]):
    """(input blob name, (H, W, C) or None, BGR mean or None) from the net's input fields."""
    if net.input_shape:
        dims = list(net.input_shape[0].dim)
    else:
        dims = list(net.input_dim[:4])
    name = net.input[0] if net.input else None
    mean = None
    for layer in layers:
        if layer.type not in INPUT_TYPES:
            continue
        name = layer.message.top[0] if layer.message.top else layer.name
        if layer.type == "Input" and layer.message.HasField("input_param") and layer.message.input_param.shape:
            dims = list(layer.message.input_param.shape[0].dim)
        transform = layer.message.transform_param
        if len(transform.mean_value) == 3:
            mean = tuple(float(v) for v in transform.mean_value)
        if transform.crop_size and not dims:
            dims = [1, 3, int(transform.crop_size), int(transform.crop_size)]
        break
    if len(dims) == 4:
        return name, (int(dims[2]), int(dims[3]), int(dims[1])), mean
    return name, None, mean


def _entries(net, layers: list[CaffeLayer], path: Path, notes: list[str]):
    input_name, input_size, mean = _input(net, layers)
    if input_size is None:
        input_size = INPUT_SIZE
        notes.append(f"no input size in the file: assumed {'x'.join(map(str, INPUT_SIZE))} (VGG-Face's)")
    height, width, channels = input_size
    shape: Shape | None = (channels, height, width)
    current = input_name
    entries: list[LayerEntry] = []
    for index, layer in enumerate(layers, start=1):
        message = layer.message
        if layer.type in INPUT_TYPES:
            continue
        if any(rule.HasField("phase") and rule.phase == 0 for rule in message.include):
            notes.append(f"layer {index} {layer.name!r} ({layer.type}) runs in training only: skipped")
            continue
        entry = LayerEntry(index, layer.name, layer.type, None,
                           params=sum(int(b.data.size) for b in layer.blobs))
        label = entry.label
        try:
            _check_chain(message, current, label)
            converter = CONVERTERS.get(layer.type)
            if converter is None:
                raise _Unsupported(
                    f"layer type {layer.type or 'without a type'!r} is not supported; "
                    f"supported Caffe types: {', '.join(CONVERTERS)}"
                )
            entry.layer = converter(layer, shape, label)
            shape = next_shape(entry.layer, shape) if shape is not None else None
        except _Unsupported as exc:
            entry.problem, shape = str(exc), None
        except _Bad as exc:
            raise ModelFileError(f"{path}: {exc}") from None
        except ModelFileError as exc:
            raise ModelFileError(f"{path}: {label}: {exc}") from None
        if message.top:
            current = message.top[0]
        entries.append(entry)
    return entries, input_size, mean


def _check_chain(message, current: str | None, label: str) -> None:
    bottoms = list(message.bottom)
    if len(bottoms) > 1:
        raise _Unsupported(f"takes {len(bottoms)} inputs ({', '.join(bottoms)}); gender-cli reads one chain of layers")
    if bottoms and current is not None and bottoms[0] != current:
        raise _Unsupported(
            f"its input {bottoms[0]!r} is not the previous layer's output {current!r} "
            "(a branching network); gender-cli reads one chain of layers"
        )
