"""Stream a GraphBuilder to an ``.onnx`` file, one weight tensor in memory at a time.

``onnx.save`` needs the whole ``ModelProto`` in memory and then serialises it into a
second copy (2 x 580 MB for VGG-Face, plus the transposed arrays). Here the small parts
(nodes, inputs, outputs, metadata) are serialised by protobuf and the initializers are
encoded by hand (a length-delimited ``TensorProto`` whose ``raw_data`` is written
straight from the NumPy buffer). Fields are written in field-number order, so the file
is byte-for-byte what ``onnx.save`` would write for the same model (a test checks it).

With ``external_data=True`` float tensors of at least ``EXTERNAL_MIN_BYTES`` go to one
side file ``<name>.onnx.data`` (location relative to the graph, offsets aligned), the
layout that ``onnx.load`` and onnxruntime read and that ``shared/device/fill_weights.py``
fills with stand-in values; small and non-float tensors stay inside the graph.

Both files are written under temporary names in the destination folder and moved into
place with ``os.replace`` (side file first), so a reader never sees a half-written model.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
from onnx import GraphProto, ModelProto, StringStringEntryProto, TensorProto, helper

from gender_cli.atomic import with_filename, write_all
from gender_cli import __version__, contract
from gender_cli.convert.protowire import encode_varint
from gender_cli.export.graph_builder import GraphBuilder, LazyTensor

EXTERNAL_MIN_BYTES = 1024  # onnx.save's default size_threshold
EXTERNAL_ALIGNMENT = 65536  # lets onnxruntime memory-map each tensor on any OS

# wire-format tags: (field number << 3) | 2 (length-delimited)
_MODEL_GRAPH = b"\x3a"  # ModelProto.graph = 7
_GRAPH_INITIALIZER = b"\x2a"  # GraphProto.initializer = 5
_TENSOR_RAW_DATA = b"\x4a"  # TensorProto.raw_data = 9


class _Slot:
    """One initializer's encoded header and where its bytes go."""

    def __init__(self, tensor: LazyTensor, location: str | None, offset: int):
        self.tensor = tensor
        self.external = location is not None
        self.offset = offset
        header = TensorProto(name=tensor.name, data_type=tensor.onnx_type, dims=list(tensor.dims))
        if self.external:
            for key, value in (("location", location), ("offset", str(offset)), ("length", str(tensor.nbytes))):
                header.external_data.append(StringStringEntryProto(key=key, value=value))
            header.data_location = TensorProto.EXTERNAL
            body = header.SerializeToString()
            self.prefix = _GRAPH_INITIALIZER + encode_varint(len(body)) + body
            self.inline_bytes = 0
        else:
            body = header.SerializeToString()
            raw_tag = _TENSOR_RAW_DATA + encode_varint(tensor.nbytes)
            length = len(body) + len(raw_tag) + tensor.nbytes
            self.prefix = _GRAPH_INITIALIZER + encode_varint(length) + body + raw_tag
            self.inline_bytes = tensor.nbytes

    @property
    def field_length(self) -> int:
        return len(self.prefix) + self.inline_bytes


def _plan(tensors: list[LazyTensor], location: str | None) -> tuple[list[_Slot], int]:
    slots, offset = [], 0
    for t in tensors:
        external = (
            location is not None
            and np.issubdtype(np.dtype(t.dtype), np.floating)
            and t.nbytes >= EXTERNAL_MIN_BYTES
        )
        if external:
            offset = -(-offset // EXTERNAL_ALIGNMENT) * EXTERNAL_ALIGNMENT
            slots.append(_Slot(t, location, offset))
            offset += t.nbytes
        else:
            slots.append(_Slot(t, None, 0))
    return slots, offset


def _write_array(fd: int, array: np.ndarray) -> None:
    write_all(fd, memoryview(array).cast("B"))


def _create(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)


def write_model(
    g: GraphBuilder,
    path: Path,
    metadata: dict[str, str],
    external_data: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[Path]:
    """Write ``g`` to ``path`` (and ``<path>.data``); returns the files written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    location = contract.external_data_name(path.name) if external_data else None
    slots, data_size = _plan(g.initializers, location)

    model_head = ModelProto(
        ir_version=contract.IR_VERSION, producer_name="gender-cli", producer_version=__version__
    ).SerializeToString()
    graph_head = GraphProto(node=g.nodes, name=g.name).SerializeToString()
    graph_tail = GraphProto(input=g.inputs, output=g.outputs, value_info=g.value_info).SerializeToString()
    opsets = g.opsets or {"": contract.OPSET}
    model_tail = ModelProto(
        opset_import=[helper.make_opsetid(domain, version) for domain, version in opsets.items()],
        metadata_props=[StringStringEntryProto(key=k, value=v) for k, v in metadata.items()],
    ).SerializeToString()
    graph_length = len(graph_head) + sum(s.field_length for s in slots) + len(graph_tail)

    total = sum(t.nbytes for t in g.initializers)
    done = 0
    tmp_model = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp_data = path.with_name(f".{location}.tmp-{os.getpid()}") if location else None
    try:
        data_fd = _create(tmp_data) if tmp_data else None
        try:
            fd = _create(tmp_model)
            try:
                write_all(fd, model_head + _MODEL_GRAPH + encode_varint(graph_length) + graph_head)
                for slot in slots:
                    write_all(fd, slot.prefix)
                    array = slot.tensor.array()
                    if slot.external:
                        os.lseek(data_fd, slot.offset, os.SEEK_SET)
                        _write_array(data_fd, array)
                    else:
                        _write_array(fd, array)
                    done += slot.tensor.nbytes
                    del array
                    if progress is not None:
                        progress("write", done, total)
                write_all(fd, graph_tail + model_tail)
            finally:
                os.close(fd)
        finally:
            if data_fd is not None:
                os.ftruncate(data_fd, data_size)
                os.close(data_fd)
        written = [path]
        if tmp_data is not None:
            os.replace(tmp_data, path.with_name(location))
            written.append(path.with_name(location))
        os.replace(tmp_model, path)
        return written
    except BaseException as exc:
        for tmp in (tmp_model, tmp_data):
            if tmp is not None and tmp.exists():
                tmp.unlink()
        raise with_filename(exc, path) from None
