"""Read dlib DNN files (``.dat``) into layer entries: dlib's face-recognition ResNet.

A network file (``dlib/dnn/core.h``; encodings in :mod:`dlib_serial`) holds, in order:

1. the loss layer: ``int 1``, its version string (``loss_metric_2``) and fields;
2. one ``int`` per wrapper of the network, outermost first: 2 (or 1) for a layer, 1 for
   a tag or skip, 3 (or 2) for the layer on the input;
3. the input layer's record (``input_rgb_image_sized``: averages and size);
4. every layer's record, innermost first (the forward order), each opening with its
   version string (``con_4``, ``affine_``, ``relu_``, ``max_pool_2``, ``avg_pool_2``,
   ``add_prev_``, ``fc_2``, ...), then the training state dlib keeps beside it (bools
   and, in a trained file, empty tensors).

So the layers are read without knowing the network, but not how they join: a tag or
skip is a bare ``int 1`` and ``add_prev`` does not store its tag's number. The layers
read are matched against the one definition gender-cli knows (:mod:`dlib_resnet`), which
gives the graph; any other dlib file gets one line saying what it is, or which layer
is not one gender-cli reads. Nothing is allocated before the file is known to hold it.

Conversion (the kind records, :mod:`gender_cli.convert.kinds`): ``con`` (F, K, R, C)
filters -> conv (R, C, K, F); ``affine`` (gamma, beta) -> affine; ``relu``; ``max_pool``
and ``avg_pool`` -> pool (dlib clips windows to the image, as the pool kind does);
``avg_pool_everything`` (a 0x0 window) -> global_pool; ``add_prev`` -> add (the smaller
input zero-extended, ``tt::add``); ``fc`` (inputs x outputs, on the input flattened in
(K, R, C) order) -> a fully connected conv. The input's ``(pixel - average) / 256`` is
the mean and a scale folded into the first convolution (:mod:`preprocessing`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from gender_cli.convert import dlib_resnet
from gender_cli.convert.dlib_serial import Reader, TruncatedError
from gender_cli.convert.network import Layer, Network
from gender_cli.convert.source_file import LayerEntry, SourceFile, map_file
from gender_cli.errors import ModelFileError

WRAPPER_VERSIONS = (1, 2, 3)
# A stand-in carries one more dlib object after the network: this string, then its note
# (dlib reads objects in sequence and ignores what follows the network).
STANDIN_OBJECT = "gender_cli_standin"
FACE_NETWORK = "dlib's face-recognition ResNet"


class NotDlibNetworkError(ModelFileError):
    """A dlib file that is not a network gender-cli converts (a detector, a landmark model)."""


@dataclass
class Record:
    """One dlib layer record as read: its kind, version, fields and (views of) arrays."""

    kind: str  # con, affine, relu, max_pool, avg_pool, add_prev, fc
    version: str
    fields: dict = field(default_factory=dict)
    offset: int = 0

    @property
    def params(self) -> int:
        return int(sum(np.size(a) for a in self.fields.values() if isinstance(a, np.ndarray)))

    def describe(self) -> str:
        f = self.fields
        if self.kind == "con":
            return f"con {f['filters']} filters {f['nr']}x{f['nc']}, stride {f['stride'][0]}, padding {f['padding'][0]}"
        if self.kind in ("max_pool", "avg_pool"):
            if self.everything:
                return "avg_pool_everything"
            return f"{self.kind} {f['nr']}x{f['nc']}, stride {f['stride'][0]}, padding {f['padding'][0]}"
        if self.kind == "fc":
            return f"fc {f['outputs']} outputs" + ("" if f["bias"] is not None else ", no bias")
        return self.kind

    @property
    def everything(self) -> bool:
        return self.kind == "avg_pool" and self.fields["nr"] == 0 and self.fields["nc"] == 0

    @property
    def dlib_type(self) -> str:
        """How dlib's own definitions name the layer (what inspect shows)."""
        if self.everything:
            return "avg_pool_everything"
        if self.kind == "fc" and self.fields["bias"] is None:
            return "fc_no_bias"
        return self.kind


# -- layer records (dlib/dnn/layers.h) ---------------------------------------------------


def _learning_rates(r: Reader) -> None:
    for _ in range(4):  # lr, wd, bias lr, bias wd multipliers (training only)
        r.real()


def _con(r: Reader, version: str) -> dict:
    params = r.tensor().reshape(-1)
    filters, nr, nc = r.long(), r.long(), r.long()
    stride, padding = (r.int(), r.int()), (r.int(), r.int())
    weights_shape, _ = r.alias(), r.alias()
    _learning_rates(r)
    use_bias = r.boolean() if version in ("con_5", "con_6") else True
    use_relu = r.boolean() if version == "con_6" else False
    size = int(np.prod(weights_shape))
    if weights_shape[0] != filters or tuple(weights_shape[2:]) != (nr, nc) or params.size != size + filters * use_bias:
        raise ModelFileError(f"a con record whose filters {weights_shape} do not match its sizes")
    return {
        "filters": filters, "nr": nr, "nc": nc, "stride": stride, "padding": padding, "relu": use_relu,
        "weights": params[:size].reshape(weights_shape),
        "bias": params[size : size + filters] if use_bias else None,
    }


def _affine(r: Reader, version: str) -> dict:
    params = r.tensor().reshape(-1)
    gamma, beta = r.alias(), r.alias()
    mode = r.int()
    disabled = r.boolean() if version == "affine_2" else False
    channels = int(np.prod(gamma))
    if params.size != channels + int(np.prod(beta)) or gamma != beta:
        raise ModelFileError("an affine record whose scale and shift do not match its parameters")
    return {"mode": mode, "disabled": disabled, "gamma_shape": gamma,
            "gamma": params[:channels], "beta": params[channels : 2 * channels]}


def _relu(r: Reader, version: str) -> dict:
    return {"disabled": r.boolean() if version == "relu_2" else False}


def _pool(r: Reader, version: str) -> dict:
    nr, nc = r.long(), r.long()
    return {"nr": nr, "nc": nc, "stride": (r.int(), r.int()), "padding": (r.int(), r.int())}


def _fc(r: Reader, version: str) -> dict:
    outputs, inputs = r.ulong(), r.ulong()
    params = r.tensor().reshape(-1)
    r.alias(), r.alias()
    bias_mode = r.int()  # 0: FC_HAS_BIAS, 1: FC_NO_BIAS
    _learning_rates(r)
    use_bias = (r.boolean() if version == "fc_3" else True) and bias_mode == 0
    if params.size != (inputs + use_bias) * outputs:
        raise ModelFileError(f"an fc record of {inputs}x{outputs} with {params.size} parameters")
    return {"inputs": inputs, "outputs": outputs, "weights": params[: inputs * outputs].reshape(inputs, outputs),
            "bias": params[inputs * outputs :] if use_bias else None}


# version string -> (kind, reader)
RECORDS: dict[str, tuple[str, Callable[[Reader, str], dict]]] = {
    **{v: ("con", _con) for v in ("con_4", "con_5", "con_6")},
    **{v: ("affine", _affine) for v in ("affine_", "affine_2")},
    **{v: ("relu", _relu) for v in ("relu_", "relu_2")},
    "max_pool_2": ("max_pool", _pool),
    "avg_pool_2": ("avg_pool", _pool),
    "add_prev_": ("add_prev", lambda r, version: {}),
    **{v: ("fc", _fc) for v in ("fc_2", "fc_3")},
}
SUPPORTED_TYPES = ("con", "affine", "relu", "max_pool", "avg_pool", "avg_pool_everything", "add_prev",
                   "fc", "fc_no_bias")


def _trailer(r: Reader, wrapper: int, on_input: bool) -> None:
    """The training state dlib writes after a layer's record (core.h's add_layer)."""
    for _ in range(3):
        r.boolean()  # setup called, gradient stale, output-and-gradient disabled
    r.tensor(), r.tensor()  # x_grad, cached_output
    if on_input:
        r.tensor()  # grad_final
        if wrapper >= 3:
            r.uint()  # sample expansion factor
    elif wrapper == 2:
        r.tensor()  # params_grad


# -- the file ---------------------------------------------------------------------------


@dataclass
class DlibFile:
    loss: str
    wrappers: list[int]
    input: dict  # averages (R, G, B), size (rows, columns)
    records: list[Record]
    problem: str | None = None  # why reading stopped before the end
    problem_offset: int = 0
    standin_note: str | None = None


def read_header(r: Reader, path) -> str:
    """The loss version of a DNN file; NotDlibNetworkError naming other dlib files."""
    try:
        version = r.int()
        if version == 1 and r.remaining() and r.data[r.pos] == 0x81:  # a negative row count: a dlib matrix
            rows, cols = -r.long(), -r.long()
            if cols == 1 and rows > 0 and rows % 2 == 0:
                raise NotDlibNetworkError(
                    f"{path}: a dlib shape predictor ({rows // 2} face landmarks), not a network gender-cli "
                    "converts (gender-cli uses dlib's 5-point model itself to align faces for --detect)"
                )
            raise NotDlibNetworkError(f"{path}: a dlib object that is not a neural network")
        loss = r.string() if version == 1 else ""
    except TruncatedError:
        raise ModelFileError(f"{path}: too short to be a dlib network") from None
    if not loss.startswith("loss_"):
        raise NotDlibNetworkError(f"{path}: a dlib file that is not a neural network (no loss layer first)")
    if loss.startswith("loss_mmod"):
        raise NotDlibNetworkError(
            f"{path}: dlib's MMOD face detector ({loss}), not a face-recognition network; gender-cli runs it "
            "as a detector: classify --detect --detector dlib-cnn"
        )
    if loss not in ("loss_metric_", "loss_metric_2"):
        raise NotDlibNetworkError(
            f"{path}: a dlib network trained with {loss!r}; gender-cli converts face-recognition networks "
            "(loss_metric, such as dlib_face_recognition_resnet_model_v1.dat)"
        )
    return loss


def read_dlib(data, path) -> DlibFile:
    """Every record of a dlib metric network, read without knowing its definition."""
    r = Reader(data)
    loss = read_header(r, path)
    try:
        if loss == "loss_metric_2":
            r.real(np.float32), r.real(np.float32)  # margin, distance threshold
        wrappers = []
        while r.remaining():
            mark = r.pos
            value = r.int()
            if value not in WRAPPER_VERSIONS:
                r.pos = mark
                break
            wrappers.append(value)
        input_version = r.string()
        if input_version != "input_rgb_image_sized":
            raise NotDlibNetworkError(
                f"{path}: a dlib network whose input layer is {input_version!r}; gender-cli reads networks on "
                "input_rgb_image_sized (fixed-size RGB face chips)"
            )
        averages = tuple(r.real(np.float32) for _ in range(3))
        size = (r.ulong(), r.ulong())
    except TruncatedError:
        raise ModelFileError(f"{path}: cut short before its first layer ({r.remaining()} of its bytes read)") from None
    found = DlibFile(loss, wrappers, {"averages": averages, "size": size}, [])
    # a layer's wrapper is 2 (3 on the input); 1 is a tag or skip, which has no record
    # (dlib has written layers as version 2 since 2016: an older file is not read)
    layer_wrappers = [w for w in reversed(wrappers) if w >= 2]
    while r.remaining():
        offset = r.pos
        try:
            version = r.string()
            if version == STANDIN_OBJECT:
                found.standin_note = r.string()
                break
            if version not in RECORDS:
                found.problem = (f"dlib layer {version!r} is not one gender-cli reads "
                                 f"(it reads {', '.join(SUPPORTED_TYPES)})")
                found.problem_offset = offset
                break
            kind, read = RECORDS[version]
            record = Record(kind, version, read(r, version), offset)
            n = len(found.records)
            wrapper = layer_wrappers[n] if n < len(layer_wrappers) else 2
            _trailer(r, wrapper, on_input=not found.records)
        except (TruncatedError, ModelFileError) as exc:
            what = "cut short" if isinstance(exc, TruncatedError) else "unreadable"
            found.problem = f"{what} in the layer record at byte {offset}: {exc}"
            found.problem_offset = offset
            break
        found.records.append(record)
    return found


# -- matching the definition ------------------------------------------------------------


def _matches(record: Record, op: dlib_resnet.Op) -> bool:
    f = record.fields
    if record.kind != op.kind:
        return False
    if op.kind == "con":
        k, s = op.args["size"], op.args["stride"]
        return (f["nr"], f["nc"], f["stride"], f["padding"]) == (k, k, (s, s), (dlib_resnet.padding(k, s),) * 2)
    if op.kind in ("max_pool", "avg_pool"):
        k, s = op.args["size"], op.args["stride"]
        return (f["nr"], f["nc"], f["stride"], f["padding"]) == (k, k, (s, s), (dlib_resnet.padding(k, s),) * 2)
    return True


def _expected_wrappers(definition: list[dlib_resnet.Op]) -> list[int]:
    """The wrapper ints, outermost first, as min(version, 2): tags and skips 1, layers 2."""
    return [2 if op.is_layer else 1 for op in reversed(definition)]


def match_definition(found: DlibFile) -> tuple[list[dlib_resnet.Op], int | None, str | None]:
    """The definition's layers (forward order), and the first mismatch: the 1-based index
    of the layer it concerns (None: the file as a whole) and why."""
    definition = dlib_resnet.ops("full")
    layers = [op for op in definition if op.is_layer]
    for index, (record, op) in enumerate(zip(found.records, layers), start=1):
        if not _matches(record, op):
            return layers, index, (
                f"{record.describe()} where {FACE_NETWORK} has {op.kind} {op.name!r}; gender-cli knows that "
                "network's layout only, since dlib files do not store where residual branches join"
            )
    if found.problem is None and len(found.records) != len(layers):
        return layers, None, f"{len(found.records)} layers where {FACE_NETWORK} has {len(layers)}"
    if found.problem is None and [min(w, 2) for w in found.wrappers] != _expected_wrappers(definition):
        return layers, None, f"its tags and skips are not where {FACE_NETWORK} has them"
    return layers, None, None


def _layer(record: Record, op: dlib_resnet.Op, inputs: tuple[str, ...], fc_input: tuple | None) -> Layer:
    f, common = record.fields, {"name": op.name, "inputs": inputs}
    if record.kind == "con":
        if f["relu"]:
            raise ModelFileError("a convolution with a fused ReLU (con_6 use_relu)")
        p = f["padding"]
        return Layer(type="conv", weights=np.asarray(f["weights"]).transpose(2, 3, 1, 0), bias=f["bias"],
                     stride=tuple(f["stride"]), pad=(p[0], p[0], p[1], p[1]), **common)
    if record.kind == "affine":
        if f["disabled"]:
            return Layer(type="dropout", rate=0.0, **common)  # a disabled layer passes its input on
        if f["mode"] != 0 or f["gamma_shape"][2:] != (1, 1):
            raise ModelFileError("an affine layer in fully connected mode (per element, not per channel)")
        return Layer(type="affine", weights=f["gamma"], bias=f["beta"], **common)
    if record.kind == "relu":
        return Layer(type="dropout" if f["disabled"] else "relu", rate=0.0, **common)
    if record.everything:
        if f["stride"] != (1, 1) or f["padding"] != (0, 0):
            raise ModelFileError("avg_pool_everything with a stride or padding")
        return Layer(type="global_pool", **common)
    if record.kind in ("max_pool", "avg_pool"):
        p = f["padding"]
        return Layer(type="pool", pool=(f["nr"], f["nc"]), stride=tuple(f["stride"]), pad=(p[0], p[0], p[1], p[1]),
                     method="max" if record.kind == "max_pool" else "avg", **common)
    if record.kind == "add_prev":
        return Layer(type="add", **common)
    # fc: rows are the input flattened in (K, R, C) order
    k, rows, cols = fc_input if fc_input is not None and len(fc_input) == 3 else (f["inputs"], 1, 1)
    if k * rows * cols != f["inputs"]:
        raise ModelFileError(f"an fc layer of {f['inputs']} inputs on {k}x{rows}x{cols} maps")
    weights = np.asarray(f["weights"]).reshape(k, rows, cols, f["outputs"]).transpose(1, 2, 0, 3)
    return Layer(type="conv", weights=weights, bias=f["bias"], **common)


def read_source(path) -> SourceFile:
    """Every layer of a dlib face-recognition network file, converted where gender-cli can."""
    from gender_cli.convert.layer_plan import plan
    from gender_cli.convert.matfile import sha256_file

    path = Path(path)
    found = read_dlib(map_file(path), path)
    definition, at, mismatch = match_definition(found)
    inputs = dlib_resnet.graph_inputs(dlib_resnet.ops("full"))
    size = _input_size(found)
    entries, built = [], []
    convertible = mismatch is None  # else the graph is unknown: the layers are listed, not converted
    for index, record in enumerate(found.records, start=1):
        op = definition[index - 1] if convertible else None
        entry = LayerEntry(index, op.name if op else f"layer{index}", record.dlib_type, None, params=record.params)
        if index == at:
            entry.problem = mismatch
        elif convertible:
            try:
                fc_input = plan(Network(built, input_size=size))[-1].output_shape if record.kind == "fc" else None
                entry.layer = _layer(record, op, inputs[op.name], fc_input)
                built.append(entry.layer)
            except ModelFileError as exc:
                entry.problem, convertible = str(exc), False
        entries.append(entry)
    if found.problem is not None:
        index = len(found.records) + 1
        entries.append(LayerEntry(index, f"layer{index}", "?", None, problem=found.problem))
    if mismatch is not None and at is None:
        entries.append(LayerEntry(len(entries) + 1, "network", "graph", None, problem=mismatch))
    return SourceFile(
        path=str(path),
        sha256=sha256_file(path),
        format="dlib",
        detail=(f"dlib DNN ({found.loss}), {'' if mismatch is None else 'not '}{FACE_NETWORK}, "
                f"input_rgb_image_sized {size[0]}x{size[1]}"),
        entries=entries,
        input_size=size,
        mean=np.asarray(found.input["averages"], np.float32),
        standin_note=found.standin_note,
        layout="face-resnet-v1" if mismatch is None else "",
    )


def _input_size(found: DlibFile) -> tuple[int, int, int]:
    rows, cols = found.input["size"]
    return (int(rows), int(cols), 3)


def looks_like_dlib(head: bytes) -> bool:
    """Does a file open as a dlib serialization: ``int 1``, then a loss layer's name
    (a network) or a negative row count (a matrix: a shape predictor)?"""
    return head[:2] == b"\x01\x01" and ((head[2:3] == b"\x01" and head[4:9] == b"loss_") or head[2:3] == b"\x81")
