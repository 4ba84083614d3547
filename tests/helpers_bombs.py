"""Weights files that declare far more than they hold: tiny files, enormous claims.

Each writer makes in milliseconds a file whose declared sizes would take gigabytes to
read: a MAT v5 variable of zeros that inflates to ``inflated`` bytes (the deflate stream
is one compressed block repeated, so it is built without compressing the whole), a MAT
v5 cell array that declares billions of cells, a MAT v7.3 or Keras HDF5 dataset declared
but never written. ``bench/scripts/measure_bombs.py`` times the readers on them.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

MI_INT8, MI_INT32, MI_UINT8, MI_UINT32, MI_MATRIX, MI_COMPRESSED = 1, 5, 2, 6, 14, 15
MX_CELL, MX_STRUCT, MX_UINT8 = 1, 2, 9
_BLOCK = 1 << 24  # bytes of zeros per repeated deflate block


def _element(kind: int, data: bytes) -> bytes:
    padding = -len(data) % 8
    return struct.pack("<II", kind, len(data)) + data + b"\0" * padding


def _matrix(cls: int, dims, name: str, body: bytes) -> bytes:
    flags = _element(MI_UINT32, struct.pack("<II", cls, 0))
    shape = _element(MI_INT32, struct.pack(f"<{len(dims)}i", *dims))
    return _element(MI_MATRIX, flags + shape + _element(MI_INT8, name.encode()) + body)


def _v5_header() -> bytes:
    text = b"MATLAB 5.0 MAT-file, written by gender-cli's tests"
    return text.ljust(116, b" ") + b"\0" * 8 + struct.pack("<H", 0x0100) + b"IM"


def _zeros_stream(head: bytes, zeros: int) -> bytes:
    """zlib(head + ``zeros`` zero bytes), ``zeros`` a multiple of _BLOCK, without deflating them all."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    start = deflate.compress(head) + deflate.flush(zlib.Z_FULL_FLUSH)
    block = deflate.compress(b"\0" * _BLOCK) + deflate.flush(zlib.Z_FULL_FLUSH)
    end = deflate.flush(zlib.Z_FINISH)
    checksum = zlib.adler32(head)
    a, b = checksum & 0xFFFF, checksum >> 16
    b = (b + a * zeros) % 65521  # each zero byte adds the unchanged a to b
    return b"\x78\xda" + start + block * (zeros // _BLOCK) + end + struct.pack(">I", (b << 16) | a)


def write_v5_inflating(path: Path, name: str = "junk", inflated: int = 1 << 30) -> Path:
    """A MAT v5 file whose compressed variable ``name`` (uint8 zeros) inflates to ``inflated`` bytes
    (under 4 GiB: the format's limit for one element)."""
    zeros = inflated // _BLOCK * _BLOCK
    flags = _element(MI_UINT32, struct.pack("<II", MX_UINT8, 0))
    shape = _element(MI_INT32, struct.pack("<2i", 1024, zeros // 1024))
    body = flags + shape + _element(MI_INT8, name.encode()) + struct.pack("<II", MI_UINT8, zeros)
    head = struct.pack("<II", MI_MATRIX, len(body) + zeros) + body
    stream = _zeros_stream(head, zeros)
    path = Path(path)
    path.write_bytes(_v5_header() + struct.pack("<II", MI_COMPRESSED, len(stream)) + stream)
    return path


def write_v5_many_cells(path: Path, cells: int = 2_000_000_000) -> Path:
    """A MAT v5 file (uncompressed, under 300 bytes) whose ``layers`` variable declares ``cells`` cells."""
    path = Path(path)
    path.write_bytes(_v5_header() + _matrix(MX_CELL, (1, cells), "layers", b""))
    return path


def _matlab_userblock(path: Path) -> None:
    text = b"MATLAB 7.3 MAT-file, written by gender-cli's tests"
    with open(path, "r+b") as handle:
        handle.write(text.ljust(116, b" ") + b"\0" * 8 + struct.pack("<H", 0x0200) + b"IM")


def write_v73_declared(path: Path, name: str = "layers", shape=(40000, 40000)) -> Path:
    """A MAT v7.3 file (about 2 KB) with a double dataset ``name`` of ``shape``, never written."""
    import h5py

    path = Path(path)
    with h5py.File(path, "w", userblock_size=512) as handle:
        dataset = handle.create_dataset(name, shape=shape, dtype=np.float64)
        dataset.attrs["MATLAB_class"] = np.bytes_("double")
    _matlab_userblock(path)
    return path


def write_keras_declared(path: Path, shape=(40000, 40000)) -> Path:
    """A Keras HDF5 weights file whose one kernel is declared ``shape`` and never written."""
    import h5py

    path = Path(path)
    with h5py.File(path, "w") as handle:
        handle.attrs["layer_names"] = np.array([b"conv1_1"])
        group = handle.create_group("conv1_1")
        group.attrs["weight_names"] = np.array([b"conv1_1/kernel:0"])
        group.create_dataset("conv1_1/kernel:0", shape=shape, dtype=np.float32)
    return path
