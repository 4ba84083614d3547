"""Check what a weights file declares before anything is allocated for it.

A file states the sizes of its arrays: a MAT variable's dimensions and the length of
its compressed stream, an HDF5 dataset's shape, a dlib tensor's dimensions. A reader
that allocates what is stated before checking it can be made to ask for gigabytes by
a file of a few kilobytes. Every reader checks first, against two bounds:

- the bytes that are there: an array stored whole must fit in the rest of the file
  (dlib, Caffe: the arrays are views of it); an HDF5 dataset must store at least
  1/1032 of what it declares (deflate, the filter MATLAB and Keras use, cannot expand
  more than that), so a dataset declared but never written is refused;
- :data:`MAX_NETWORK_BYTES`, more than any network of the supported kinds holds, in
  all (:class:`Budget`): a reader counts what it reads against it and stops there.

MAT v5 files are walked by :func:`check_v5` before SciPy reads them. Only the variables
a network is made of are read; each counts against the budget with the size it
declares (SciPy inflates and holds no more), a large compressed one must not expand
more than trained weights can (:data:`WEIGHTS_MAX_RATIO`), then it is walked element by element,
inflated as a stream and never kept, checking that every count it declares (cells,
struct elements) fits in the bytes of the element that holds it, because SciPy
allocates a cell or struct array as declared before reading its items, and that
every element ends where it says.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path

from gender_cli.errors import ModelFileError

# VGG-Face, the largest network of the supported kinds, holds 145 M values: 580 MB as
# float32, 1.16 GB as float64 (MatConvNet files may hold either).
MAX_NETWORK_BYTES = 3 << 29  # 1.5 GiB
DEFLATE_MAX_RATIO = 1032  # the most one deflate stream can expand
WEIGHTS_MAX_RATIO = 64  # trained weights compress about 1.1:1; a large variable expanding more is not weights
RATIO_FREE_BYTES = 1 << 26  # smaller variables are not held to WEIGHTS_MAX_RATIO
UNCHECKED_BYTES = 1 << 16  # smaller datasets are not held to the ratio (fill-value defaults)
ITEM_BYTES = 256  # what one cell or struct element costs once read (its Python objects), counted as bytes


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


class Budget:
    """The bytes a reader may still allocate for one file (:data:`MAX_NETWORK_BYTES` in all)."""

    def __init__(self, path, limit: int = MAX_NETWORK_BYTES):
        self.path = path
        self.limit = limit
        self.used = 0

    def take(self, nbytes: int, what: str) -> None:
        """Count ``nbytes`` for ``what`` (which says how big it is); ModelFileError when
        they pass the limit."""
        self.used += nbytes
        if self.used > self.limit:
            raise ModelFileError(f"{self.path}: {what}: more than the {_size(self.limit)} that any network "
                                 "gender-cli reads holds; refused before reading it")

    def take_items(self, count: int, what: str) -> None:
        """Count ``count`` cells or struct elements (``what`` names their array)."""
        self.take(count * ITEM_BYTES, f"{what} declares {count} cells or elements")

    def take_dataset(self, dataset, what: str) -> None:
        """Count an HDF5 dataset before it is read; refuse one whose stored bytes cannot
        hold what it declares (declared, never written)."""
        declared = math.prod(dataset.shape or ()) * dataset.dtype.itemsize
        shape = "x".join(map(str, dataset.shape or ()))
        self.take(declared, f"{what} declares {_size(declared)} ({shape} {dataset.dtype})")
        if declared > UNCHECKED_BYTES:
            stored = dataset.id.get_storage_size()
            if stored * DEFLATE_MAX_RATIO < declared:
                raise ModelFileError(
                    f"{self.path}: {what} declares {_size(declared)} ({shape} {dataset.dtype}) but stores "
                    f"{_size(stored)} (cut short, or never written); refused before reading it"
                )


# -- MAT v5 --------------------------------------------------------------------------------

MI_MATRIX, MI_COMPRESSED = 14, 15
MX_CELL, MX_STRUCT, MX_OBJECT = 1, 2, 3
MAX_DEPTH = 64  # nesting of cells and structs; networks use a handful
FREE_ITEMS = 1024  # items an array may declare beyond one per 8 bytes it holds (fieldless structs)
_CHUNK = 1 << 20


class _Cut(Exception):
    """The element ends before what it declares; ``where``: the innermost array it ends in."""

    def __init__(self, where: str | None = None):
        super().__init__(where)
        self.where = where


class _Skip(Exception):
    """A variable that is not wanted: left unread."""


class _Bytes:
    """The bytes of one top-level element, inflated as they are read when compressed
    (never more than is read); ``used`` counts what was taken."""

    def __init__(self, handle, length: int, compressed: bool):
        self.handle, self.left = handle, length
        self.inflater = zlib.decompressobj() if compressed else None
        self.pending = b""
        self.buffer = bytearray()
        self.used = 0
        self.name = ""

    def _raw(self, count: int) -> bytes:
        chunk = self.handle.read(min(self.left, count)) if self.left else b""
        if not chunk:
            raise _Cut
        self.left -= len(chunk)
        return chunk

    def _fill(self, wanted: int) -> None:
        while len(self.buffer) < wanted:
            if self.inflater is None:
                self.buffer += self._raw(max(wanted - len(self.buffer), _CHUNK))
                continue
            if not self.pending:
                self.pending = self._raw(_CHUNK)
            try:
                out = self.inflater.decompress(self.pending, _CHUNK)
            except zlib.error as exc:
                raise ModelFileError(f"variable {self.name or '?'!r}: corrupt compressed data ({exc})") from None
            self.pending = self.inflater.unconsumed_tail
            if not out and self.inflater.eof:
                raise _Cut
            self.buffer += out

    def read(self, count: int) -> bytes:
        self._fill(count)
        data = bytes(self.buffer[:count])
        del self.buffer[:count]
        self.used += count
        return data

    def skip(self, count: int) -> None:
        self.used += count
        if self.inflater is None and count > len(self.buffer):  # stored: seek past it
            count -= len(self.buffer)
            self.buffer.clear()
            if count > self.left:
                raise _Cut
            self.handle.seek(count, 1)
            self.left -= count
            return
        while count:
            step = min(count, _CHUNK)
            self._fill(step)
            del self.buffer[:step]
            count -= step


class _Walk:
    """Checks a MAT v5 variable element by element (see the module docstring);
    ``on_name(name)`` is called with a top-level variable's name (raise _Skip to leave it)."""

    def __init__(self, data: _Bytes, order: str, budget: Budget, on_name: Callable[[str], None]):
        self.data, self.order, self.budget, self.on_name = data, order, budget, on_name

    def tag(self) -> tuple[int, int, bytes | None]:
        """(type, bytes, data of a small element): the small form keeps up to 4 bytes in the tag."""
        raw = self.data.read(8)
        first, second = struct.unpack(self.order + "II", raw)
        if first >> 16:
            return first & 0xFFFF, first >> 16, raw[4 : 4 + (first >> 16)]
        return first, second, None

    def element(self) -> bytes:
        _, size, small = self.tag()
        if small is not None:
            return small
        data = self.data.read(size)
        self.data.skip(-size % 8)
        return data

    def matrix(self, size: int, depth: int, where: str) -> None:
        """A miMATRIX element of ``size`` bytes whose tag was just read."""
        if size == 0:  # an empty array
            return
        if depth > MAX_DEPTH:
            raise ModelFileError(f"{where} nests deeper than {MAX_DEPTH} levels")
        try:
            self._matrix(size, depth, where)
        except _Cut as cut:
            raise _Cut(cut.where or where or None) from None

    def _matrix(self, size: int, depth: int, where: str) -> None:
        end = self.data.used + size
        flags = self.element()
        cls = flags[0] if self.order == "<" else flags[3]
        dims = self.element()
        shape = struct.unpack(f"{self.order}{len(dims) // 4}i", dims[: len(dims) // 4 * 4])
        name = self.element().decode("latin-1")
        if depth == 0:
            where = name
            self.on_name(name)
        if any(d < 0 for d in shape):
            raise ModelFileError(f"{where} has negative dimensions {list(shape)}")
        if cls in (MX_CELL, MX_STRUCT, MX_OBJECT):
            self.items(cls, math.prod(shape), end, depth, where)
        while self.data.used < end:  # numbers, text, sparse parts, a function handle's workspace
            kind, size, small = self.tag()
            if small is not None:
                continue
            if kind == MI_MATRIX:
                self.matrix(size, depth + 1, where)
            else:
                self.data.skip(size + -size % 8)
        if self.data.used != end:
            raise ModelFileError(f"{where}: its parts do not add up to the {size} bytes it declares")

    def items(self, cls: int, count: int, end: int, depth: int, where: str) -> None:
        names = [""]
        if cls == MX_OBJECT:
            self.element()  # its class name
        if cls != MX_CELL:
            width = struct.unpack(self.order + "i", self.element()[:4])[0]
            text = self.element()
            names = [text[i : i + width].rstrip(b"\0").decode("latin-1")
                     for i in range(0, len(text) - width + 1, width)] if width > 0 else []
        fields = len(names)
        held = (end - self.data.used) // 8  # every item takes at least its 8-byte tag
        if count > held + FREE_ITEMS or count * fields > held:
            kind = "cells" if cls == MX_CELL else "elements"
            raise ModelFileError(f"{where} declares {count} {kind} where its {end - self.data.used} bytes "
                                 f"hold at most {held}")
        self.budget.take_items(count * max(fields, 1), where)
        for index in range(count * fields):
            element, field = divmod(index, fields)
            if cls == MX_CELL:
                inner = f"{where}{{{element + 1}}}"
            else:
                inner = f"{where}{f'({element + 1})' if count > 1 else ''}.{names[field]}"
            kind, size, small = self.tag()
            if kind != MI_MATRIX or small is not None:
                raise ModelFileError(f"{inner} is not an array")
            self.matrix(size, depth + 1, inner)


def check_v5(path, wanted: Iterable[str]) -> list[str]:
    """The names of a MAT v5 file's variables, in file order, once those in ``wanted``
    are known to be whole and within :data:`MAX_NETWORK_BYTES` (ModelFileError
    otherwise, one line naming the variable); the others are not inflated."""
    path = Path(path)
    wanted = set(wanted)
    budget = Budget(path)
    size = path.stat().st_size
    names: list[str] = []
    with open(path, "rb") as handle:
        header = handle.read(128)
        order = {b"IM": "<", b"MI": ">"}.get(header[126:128])
        if order is None:
            raise ModelFileError(f"{path}: MATLAB v5 MAT-file with an unknown byte order mark {header[126:128]!r}")
        position = 128
        while position + 8 <= size:
            handle.seek(position)
            kind, length = struct.unpack(order + "II", handle.read(8))
            start = position + 8
            if kind not in (MI_MATRIX, MI_COMPRESSED):
                raise ModelFileError(f"{path}: byte {position}: element type {kind} is not a MATLAB variable")
            held = min(length, size - start)
            try:
                names.append(_check_variable(handle, kind, length, held, order, wanted, budget, path))
            except _Cut as cut:
                inside = cut.where or f"variable {len(names) + 1}"
                if held < length:
                    raise ModelFileError(
                        f"{path}: truncated: the file ends inside {inside} (the variable declares {_size(length)} "
                        f"from byte {start}; the file holds {_size(held)} of it)") from None
                raise ModelFileError(f"{path}: {inside} ends before what it declares (corrupt)") from None
            if held < length:
                raise ModelFileError(f"{path}: truncated: variable {names[-1]!r} declares {_size(length)} from "
                                     f"byte {start}; the file holds {_size(held)} of it")
            position = start + length
    return names


def _check_variable(handle, kind: int, length: int, held: int, order: str, wanted: set[str], budget: Budget,
                    path: Path) -> str:
    """The name of the variable of ``length`` bytes (``held`` of them in the file) at the
    handle's position, once checked if it is ``wanted``."""
    data = _Bytes(handle, held, kind == MI_COMPRESSED)

    size = length

    def on_name(name: str) -> None:
        data.name = name
        if name not in wanted:
            raise _Skip
        # what SciPy will inflate and hold: the size the variable declares (it reads no further)
        budget.take(size, f"variable {name!r} declares {_size(size)}")
        if kind == MI_COMPRESSED and size > RATIO_FREE_BYTES and size > WEIGHTS_MAX_RATIO * length:
            raise ModelFileError(
                f"variable {name!r} would inflate {size // length} times ({_size(length)} to {_size(size)}); "
                "a network's weights do not compress so; refused before inflating it")

    walk = _Walk(data, order, budget, on_name)
    try:
        if kind == MI_COMPRESSED:
            inner, size, _ = walk.tag()
            if inner != MI_MATRIX:
                raise ModelFileError(f"a compressed element holds type {inner}, not a variable")
        walk.matrix(size, 0, "")
    except _Skip:
        pass
    except (ModelFileError, struct.error) as exc:
        text = str(exc)
        raise ModelFileError(text if text.startswith(f"{path}:") else f"{path}: {text}") from None
    return data.name
