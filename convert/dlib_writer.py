"""Write a layer graph of dlib's face-recognition ResNet as a dlib DNN file (``.dat``).

The file is what dlib itself writes for ``anet_type`` (the records and versions of the
real ``dlib_face_recognition_resnet_model_v1.dat``: ``loss_metric_2``, ``con_4``,
``affine_``, ``relu_``, ``max_pool_2``, ``avg_pool_2``, ``add_prev_``, ``fc_2``, the
training state as empty tensors), so a full-size stand-in loads in dlib's own
``face_recognition_model_v1``; :mod:`dlib_reader` describes the layout. A stand-in
carries its note as one more object after the network, which dlib ignores.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from gender_cli.atomic import names_file
from gender_cli.convert import dlib_resnet
from gender_cli.convert.dlib_reader import STANDIN_OBJECT
from gender_cli.convert.dlib_serial import Writer
from gender_cli.convert.network import Layer, Network
from gender_cli.convert.preprocessing import CONVENTIONS
from gender_cli.errors import GenderCliError



def _under_relu(definition: list[dlib_resnet.Op], index: int) -> bool:
    """Is the next layer out (past tags) a relu? dlib runs that relu in place and marks
    the layer below it (get_output_and_gradient_input_disabled), as the real file has it;
    dlib refuses to run a network whose marks are elsewhere."""
    above = next((op for op in definition[index + 1 :] if op.kind != "tag"), None)
    return above is not None and above.kind == "relu"


def _multipliers(w: Writer) -> None:
    for value in (1.0, 1.0, 1.0, 0.0):  # lr, wd, bias lr, bias wd multipliers, as trained
        w.real(value)


def _con(w: Writer, layer: Layer, scale: float = 1.0) -> None:
    kh, kw, cin, cout = layer.weights.shape
    filters = (np.asarray(layer.weights, np.float32) / np.float32(scale)).transpose(3, 2, 0, 1)  # (F, K, R, C)
    bias = np.zeros(cout, np.float32) if layer.bias is None else np.asarray(layer.bias, np.float32)
    w.string("con_4")
    w.tensor(np.concatenate([filters.reshape(-1), bias]), (filters.size + cout, 1, 1, 1))
    w.long(cout), w.long(kh), w.long(kw)
    w.int(layer.stride[0]), w.int(layer.stride[1]), w.int(layer.pad[0]), w.int(layer.pad[2])
    w.alias(filters.shape), w.alias((1, cout, 1, 1))
    _multipliers(w)


def _affine(w: Writer, layer: Layer) -> None:
    channels = int(np.size(layer.weights))
    w.string("affine_")
    w.tensor(np.concatenate([np.ravel(layer.weights), np.ravel(layer.bias)]), (2 * channels, 1, 1, 1))
    w.alias((1, channels, 1, 1)), w.alias((1, channels, 1, 1))
    w.int(0)  # CONV_MODE


def _pool(w: Writer, layer: Layer, everything: bool = False) -> None:
    w.string("max_pool_2" if layer.method == "max" and not everything else "avg_pool_2")
    w.long(0 if everything else layer.pool[0]), w.long(0 if everything else layer.pool[1])
    w.int(layer.stride[0]), w.int(layer.stride[1]), w.int(layer.pad[0]), w.int(layer.pad[2])


def _fc(w: Writer, layer: Layer) -> None:
    _, _, inputs, outputs = layer.weights.shape
    if layer.bias is not None and np.any(layer.bias):
        raise GenderCliError(f"layer {layer.name!r}: dlib's face network has an fc without bias")
    w.string("fc_2")
    w.ulong(outputs), w.ulong(inputs)
    w.tensor(np.asarray(layer.weights, np.float32).reshape(inputs, outputs), (inputs, outputs, 1, 1))
    w.alias((inputs, outputs, 1, 1)), w.alias((0, 0, 0, 0))
    w.int(1)  # FC_NO_BIAS
    _multipliers(w)


def _record(w: Writer, op: dlib_resnet.Op, layer: Layer, first: bool) -> None:
    if op.kind == "con":
        # the table has the input's 1/256 folded into the first convolution; dlib applies it itself
        _con(w, layer, CONVENTIONS["dlib"].scale if first else 1.0)
    elif op.kind == "affine":
        _affine(w, layer)
    elif op.kind == "relu":
        w.string("relu_")
    elif op.kind in ("max_pool", "avg_pool"):
        _pool(w, layer, everything=layer.type == "global_pool")
    elif op.kind == "add_prev":
        w.string("add_prev_")
    else:
        _fc(w, layer)


def write_dlib(network: Network, path, standin_note: str | None = None) -> Path:
    """Write ``network`` (the layer graph of :func:`dlib_resnet.dlib_resnet_network`, any
    channel widths) to ``path``, atomically."""
    path = Path(path)
    layers = {layer.name: layer for layer in network.layers}
    definition = dlib_resnet.ops("full")
    missing = [op.name for op in definition if op.is_layer and op.name not in layers]
    if missing:
        raise GenderCliError(f"not dlib's face network: no layer {missing[0]!r}")
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with names_file(path), open(tmp, "wb") as stream:
            w = Writer(stream)
            w.int(1), w.string(dlib_resnet.LOSS)
            w.real(dlib_resnet.LOSS_MARGIN, 24), w.real(dlib_resnet.LOSS_DISTANCE, 24)
            for op in reversed(definition):  # the wrappers, outermost first
                w.int(1 if not op.is_layer else 3 if op is definition[0] else 2)
            w.string("input_rgb_image_sized")
            for average in np.asarray(network.mean, np.float32):
                w.real(float(average), 24)
            w.ulong(network.input_size[0]), w.ulong(network.input_size[1])
            for index, op in enumerate(definition):
                if not op.is_layer:
                    continue
                _record(w, op, layers[op.name], first=index == 0)
                w.boolean(True), w.boolean(True), w.boolean(_under_relu(definition, index))
                w.empty_tensor(), w.empty_tensor(), w.empty_tensor()  # x_grad, cached output, params_grad | grad_final
                if index == 0:
                    w.uint(1)  # sample expansion factor
            if standin_note is not None:
                w.string(STANDIN_OBJECT), w.string(standin_note)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
