"""Write a layer table as Caffe files: a binary ``.caffemodel`` and a deploy ``.prototxt``.

The layout follows the VGG-Face release: BGR input (the first convolution's input
channels reversed), the fully connected layers as InnerProduct (weights
``(outputs, C*H*W)`` in Caffe's C,H,W flatten order), in-place ReLU and Dropout, the
2015 V1 ``layers`` field with enum types and legacy num/channels/height/width blob
dims (``layout="v1"``) or the current ``layer`` field with ``shape`` (``"layer"``).
Pooling is written with its window, stride and symmetric pad, so Caffe rounds its
output size up as Caffe does. The stand-in marker goes into the binary only
(``NetParameter.gender_cli_standin``).

The protobuf runtime serialises every message but the blobs' float arrays, which are
streamed to disk as packed fields (:mod:`protowire`), so no second copy of the weights
is built in memory.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from gender_cli.convert import caffe_proto, protowire
from gender_cli.atomic import atomic_path
from gender_cli.convert.layer_plan import plan
from gender_cli.convert.network import Layer, Network
from gender_cli.convert.preprocessing import CONVENTIONS, in_source_channel_order
from gender_cli.errors import GenderCliError

LAYOUTS = ("v1", "layer")
NET_NAME = "VGG_FACE_16_layers"
V1_TYPES = {"Convolution": "CONVOLUTION", "InnerProduct": "INNER_PRODUCT", "Pooling": "POOLING",
            "ReLU": "RELU", "LRN": "LRN", "Dropout": "DROPOUT", "Softmax": "SOFTMAX"}
CAFFE_NAMES = {"dropout6": "drop6", "dropout7": "drop7"}  # the release's names


def prototxt_path(caffemodel) -> Path:
    """``VGG_FACE.caffemodel`` -> ``VGG_FACE_deploy.prototxt`` beside it (the release's names)."""
    caffemodel = Path(caffemodel)
    return caffemodel.with_name(f"{caffemodel.stem}_deploy.prototxt")


def write_caffe(
    network: Network,
    caffemodel,
    layout: str = "v1",
    standin_note: str | None = None,
    with_parameters: bool = True,
    prototxt=None,
) -> tuple[Path, Path]:
    """Write ``network`` as ``caffemodel`` + deploy prototxt; returns both paths.

    ``with_parameters=False`` leaves the layer parameters (kernel, stride, pad, ...) out
    of the binary, as in files that need their deploy prototxt to be read.
    """
    if layout not in LAYOUTS:
        raise GenderCliError(f"unknown Caffe layout {layout!r}; choose from {', '.join(LAYOUTS)}")
    caffemodel = Path(caffemodel)
    prototxt = Path(prototxt) if prototxt is not None else prototxt_path(caffemodel)
    layers = in_source_channel_order(network.layers, CONVENTIONS["caffe"])
    messages = list(_layer_messages(network, layers, layout))
    net = _net_header(network, layout)
    deploy = caffe_proto.message_class("NetParameter")()
    deploy.CopyFrom(net)
    getattr(deploy, _field(layout)).extend(message for message, _ in messages)
    if standin_note:
        setattr(net, caffe_proto.STANDIN_FIELD, standin_note)
    with atomic_path(caffemodel) as tmp, open(tmp, "wb") as stream:
        _write_binary(stream, net, messages, layout, with_parameters)
    with atomic_path(prototxt) as tmp:
        tmp.write_text(_prototxt_text(deploy, standin_note), encoding="utf-8")
    return caffemodel, prototxt


def _field(layout: str) -> str:
    return "layers" if layout == "v1" else "layer"


def _net_header(network: Network, layout: str):
    net = caffe_proto.message_class("NetParameter")()
    net.name = NET_NAME
    height, width, channels = (int(s) for s in network.input_size)
    if layout == "v1":
        net.input.append("data")
        net.input_dim.extend([1, channels, height, width])
    return net


def _layer_messages(network: Network, layers: list[Layer], layout: str):
    """(layer message without blobs, [(dims, float32 array)]) per Caffe layer."""
    message_class = caffe_proto.message_class("V1LayerParameter" if layout == "v1" else "LayerParameter")
    height, width, channels = (int(s) for s in network.input_size)
    current = "data"
    if layout == "layer":
        data = message_class(name="data", type="Input", top=["data"])
        data.input_param.shape.add().dim.extend([1, channels, height, width])
        yield data, []
    steps = plan(replace(network, layers=layers))
    for step in steps:
        layer = step.layer
        kind, blobs = _caffe_layer(layer, step.fully_connected)
        name = CAFFE_NAMES.get(layer.name, layer.name)
        message = message_class(name=name, bottom=[current])
        in_place = kind in ("ReLU", "Dropout")
        top = current if in_place else name
        message.top.append(top)
        if layout == "v1":
            message.type = message.DESCRIPTOR.fields_by_name["type"].enum_type.values_by_name[V1_TYPES[kind]].number
        else:
            message.type = kind
        _set_parameters(message, kind, layer, blobs)
        yield message, blobs
        current = top


def _caffe_layer(layer: Layer, fully_connected: bool) -> tuple[str, list]:
    if layer.type == "conv":
        kh, kw, cin, cout = (int(s) for s in layer.weights.shape)
        oihw = np.ascontiguousarray(np.transpose(layer.weights, (3, 2, 0, 1)), dtype=np.float32)
        bias = np.ascontiguousarray(layer.bias if layer.bias is not None else np.zeros(cout), dtype=np.float32)
        if fully_connected:  # fc6/fc7/fc8: Caffe's InnerProduct, input flattened as C,H,W
            return "InnerProduct", [((cout, cin * kh * kw), oihw.reshape(cout, -1)), ((cout,), bias)]
        return "Convolution", [((cout, cin, kh, kw), oihw), ((cout,), bias)]
    if layer.type == "pool":
        top, bottom, left, right = layer.pad
        if top != bottom or left != right:
            raise GenderCliError(f"layer {layer.name!r}: Caffe pooling pads symmetrically, not {layer.pad}")
        return "Pooling", []
    kinds = {"relu": "ReLU", "lrn": "LRN", "dropout": "Dropout", "softmax": "Softmax"}
    return kinds[layer.type], []


def _set_parameters(message, kind: str, layer: Layer, blobs: list) -> None:
    if kind == "Convolution":
        p = message.convolution_param
        p.num_output = blobs[0][0][0]
        p.kernel_size.append(int(layer.weights.shape[0]))
        if layer.weights.shape[0] != layer.weights.shape[1]:
            del p.kernel_size[:]
            p.kernel_h, p.kernel_w = (int(s) for s in layer.weights.shape[:2])
        _symmetric(p, layer.pad[0], layer.pad[2], "pad")
        if tuple(layer.stride) != (1, 1):
            _symmetric(p, *layer.stride, "stride")
        if tuple(layer.dilate) != (1, 1):
            p.dilation.extend(int(d) for d in layer.dilate)
    elif kind == "InnerProduct":
        message.inner_product_param.num_output = blobs[0][0][0]
    elif kind == "Pooling":
        p = message.pooling_param
        p.pool = p.DESCRIPTOR.fields_by_name["pool"].enum_type.values_by_name[
            "MAX" if layer.method == "max" else "AVE"].number
        (kh, kw), (sy, sx) = layer.pool, layer.stride
        if kh == kw:
            p.kernel_size = int(kh)
        else:
            p.kernel_h, p.kernel_w = int(kh), int(kw)
        if sy == sx:
            p.stride = int(sy)
        else:
            p.stride_h, p.stride_w = int(sy), int(sx)
        if layer.pad[0] or layer.pad[2]:
            if layer.pad[0] == layer.pad[2]:
                p.pad = int(layer.pad[0])
            else:
                p.pad_h, p.pad_w = int(layer.pad[0]), int(layer.pad[2])
    elif kind == "LRN":
        depth, kappa, alpha, beta = layer.lrn
        p = message.lrn_param
        p.local_size, p.alpha, p.beta, p.k = int(depth), float(alpha) * int(depth), float(beta), float(kappa)
    elif kind == "Dropout":
        message.dropout_param.dropout_ratio = float(layer.rate)


def _symmetric(parameter, y: int, x: int, name: str) -> None:
    if y == x:
        if y:
            getattr(parameter, name).append(int(y))
    else:
        setattr(parameter, f"{name}_h", int(y))
        setattr(parameter, f"{name}_w", int(x))


def _write_binary(stream, net, messages, layout: str, with_parameters: bool) -> None:
    stream.write(net.SerializeToString())
    layer_field = 2 if layout == "v1" else 100
    blobs_field = caffe_proto.LAYER_BLOBS_FIELD[_field(layout)]
    data_field = caffe_proto.BLOB_FIELDS["data"]
    for message, blobs in messages:
        if not with_parameters:  # name and type only, as in binaries that need their prototxt
            message = type(message)(name=message.name, type=message.type)
        head = message.SerializeToString()
        blob_parts = []
        for dims, array in blobs:
            blob = caffe_proto.message_class("BlobProto")()
            if layout == "v1":
                legacy = (1,) * (4 - len(dims)) + tuple(dims)
                blob.num, blob.channels, blob.height, blob.width = legacy
            else:
                blob.shape.dim.extend(dims)
            raw = memoryview(np.ascontiguousarray(array, dtype="<f4")).cast("B")
            meta = blob.SerializeToString() + protowire.field_header(data_field, raw.nbytes)
            blob_parts.append((protowire.field_header(blobs_field, len(meta) + raw.nbytes) + meta, raw))
        length = len(head) + sum(len(prefix) + raw.nbytes for prefix, raw in blob_parts)
        stream.write(protowire.field_header(layer_field, length))
        stream.write(head)
        for prefix, raw in blob_parts:
            stream.write(prefix)
            stream.write(raw)


def _prototxt_text(deploy, standin_note: str | None) -> str:
    from google.protobuf import text_format

    header = f"# {standin_note}\n" if standin_note else ""
    return header + text_format.MessageToString(deploy)
