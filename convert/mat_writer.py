"""Write MATLAB MAT-files (v5 through SciPy, v7.3 as MATLAB-compatible HDF5) from plain data.

Values map onto MATLAB types like this, at any depth::

    dict                 1x1 struct (fields in dict order)
    list / tuple         1xN cell ([] is a 0x0 cell)
    str                  1xN char ('' is a 0x0 char)
    bool                 1x1 logical
    int / float          1x1 double
    numpy array          its own dtype and shape (0-d -> 1x1, 1-D -> 1xN; bool -> logical)

so tests can write hand-made variants of a network file as easily as stand-ins.
Files are written to a temporary name in the target folder and then renamed, so a
crash never leaves a half-written ``.mat`` under the final name.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from gender_cli.atomic import atomic_path

VERSIONS = ("5", "7.3")

# Arrays larger than this are written to HDF5 in slices, so no transposed copy of a
# 411 MB fc6 weight is ever held in memory at once.
_SLICE_BYTES = 64 * 2**20


def write_mat(path, variables: dict, version: str = "5") -> Path:
    """Write ``variables`` (name -> value) as a MAT-file of ``version`` "5" or "7.3"."""
    if version not in VERSIONS:
        raise ValueError(f"unknown MAT version {version!r}; choose from {', '.join(VERSIONS)}")
    path = Path(path)
    with atomic_path(path) as tmp:
        if version == "5":
            _write_v5(tmp, variables)
        else:
            _write_v73(tmp, variables)
    return path


# -- v5 ---------------------------------------------------------------------------------


def _to_scipy(value):
    """Plain value -> what scipy.io.savemat writes as the intended MATLAB type."""
    if isinstance(value, dict):
        return {key: _to_scipy(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        cell = np.empty((1, len(value)) if value else (0, 0), dtype=object)
        for i, item in enumerate(value):
            cell[0, i] = _to_scipy(item)
        return cell
    if isinstance(value, str):
        return value if value else np.empty((0, 0), dtype="U1")
    if isinstance(value, (bool, np.bool_)):
        return np.array([[bool(value)]])
    if isinstance(value, (int, float)):
        return np.array([[float(value)]])
    if isinstance(value, (np.ndarray, np.generic)):
        array = np.asarray(value)
        return array.reshape(1, 1) if array.ndim == 0 else array
    raise TypeError(f"cannot write a {type(value).__name__} to a MAT-file")


def _write_v5(path: Path, variables: dict) -> None:
    import scipy.io

    mdict = {name: _to_scipy(value) for name, value in variables.items()}
    with open(path, "wb") as stream:
        scipy.io.savemat(stream, mdict, do_compression=False, oned_as="row", format="5")


# -- v7.3 -------------------------------------------------------------------------------

_MATLAB_CLASS = {
    "f8": "double", "f4": "single", "i1": "int8", "u1": "uint8", "i2": "int16",
    "u2": "uint16", "i4": "int32", "u4": "uint32", "i8": "int64", "u8": "uint64",
}


def v73_header(created: float | None = None) -> bytes:
    """The 128 bytes MATLAB puts in the HDF5 userblock: text, subsystem offset, version, 'IM'."""
    stamp = time.strftime("%a %b %d %H:%M:%S %Y", time.localtime(created))
    text = f"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: {stamp} HDF5 schema 1.00 ."
    return text.encode("ascii").ljust(116, b" ") + b"\0" * 8 + b"\x00\x02IM"


def _write_v73(path: Path, variables: dict) -> None:
    import h5py

    with h5py.File(path, "w", userblock_size=512, libver="earliest") as handle:
        writer = _H5Writer(handle)
        for name, value in variables.items():
            writer.write(handle, name, value)
    with open(path, "r+b") as stream:
        stream.write(v73_header())


class _H5Writer:
    """Writes plain values the way MATLAB lays them out in HDF5 (column-major, #refs#)."""

    def __init__(self, handle):
        import h5py

        self.h5py = h5py
        self.handle = handle
        self.refs = None
        self.ref_count = 0

    def write(self, parent, name: str, value) -> None:
        if isinstance(value, dict):
            self._struct(parent, name, value)
        elif isinstance(value, (list, tuple)):
            self._cell(parent, name, list(value))
        elif isinstance(value, str):
            self._char(parent, name, value)
        elif isinstance(value, (bool, np.bool_)):
            self._array(parent, name, np.array([[bool(value)]]))
        elif isinstance(value, (int, float)):
            self._array(parent, name, np.array([[float(value)]]))
        elif isinstance(value, (np.ndarray, np.generic)):
            self._array(parent, name, np.asarray(value))
        else:
            raise TypeError(f"cannot write a {type(value).__name__} to a MAT-file")

    def _struct(self, parent, name: str, fields: dict) -> None:
        group = parent.create_group(name, track_order=True)
        group.attrs["MATLAB_class"] = np.bytes_("struct")
        vlen = self.h5py.vlen_dtype(np.dtype("S1"))
        names = np.empty(len(fields), dtype=vlen)
        for i, field in enumerate(fields):
            names[i] = np.frombuffer(field.encode("ascii"), dtype="S1")
        group.attrs.create("MATLAB_fields", names, dtype=vlen)
        for field, item in fields.items():
            self.write(group, field, item)

    def _cell(self, parent, name: str, items: list) -> None:
        if not items:
            self._empty(parent, name, "cell", (0, 0))
            return
        refs = np.empty((len(items), 1), dtype=self.h5py.ref_dtype)  # MATLAB 1xN, transposed
        for i, item in enumerate(items):
            refs[i, 0] = self._put_ref(item)
        dataset = parent.create_dataset(name, data=refs)
        dataset.attrs["MATLAB_class"] = np.bytes_("cell")

    def _put_ref(self, value):
        if self.refs is None:
            self.refs = self.handle.create_group("#refs#")
        ref_name = _ref_name(self.ref_count)
        self.ref_count += 1
        self.write(self.refs, ref_name, value)
        return self.refs[ref_name].ref

    def _char(self, parent, name: str, text: str) -> None:
        if not text:
            self._empty(parent, name, "char", (0, 0))
            return
        codes = np.frombuffer(text.encode("utf-16-le"), dtype="<u2").reshape(-1, 1)
        dataset = parent.create_dataset(name, data=codes)
        dataset.attrs["MATLAB_class"] = np.bytes_("char")
        dataset.attrs["MATLAB_int_decode"] = np.int32(2)

    def _empty(self, parent, name: str, matlab_class: str, dims: tuple) -> None:
        dataset = parent.create_dataset(name, data=np.array(dims, dtype=np.uint64))
        dataset.attrs["MATLAB_class"] = np.bytes_(matlab_class)
        dataset.attrs["MATLAB_empty"] = np.uint8(1)

    def _array(self, parent, name: str, array: np.ndarray) -> None:
        if array.ndim == 0:
            array = array.reshape(1, 1)
        elif array.ndim == 1:
            array = array.reshape(1, -1)
        if array.dtype == np.bool_:
            matlab_class, array = "logical", array.astype(np.uint8)
        else:
            matlab_class = _MATLAB_CLASS.get(array.dtype.str[1:])
            if matlab_class is None:
                raise TypeError(f"cannot write numpy dtype {array.dtype} to a MAT-file")
        if array.size == 0:
            self._empty(parent, name, matlab_class, array.shape)
            return
        if array.nbytes <= _SLICE_BYTES:
            dataset = parent.create_dataset(name, data=np.ascontiguousarray(array.T))
        else:
            dataset = parent.create_dataset(name, shape=array.shape[::-1], dtype=array.dtype)
            last = array.shape[-1]
            step = max(1, int(last * _SLICE_BYTES // array.nbytes))
            for start in range(0, last, step):
                dataset[start : start + step] = np.ascontiguousarray(array[..., start : start + step].T)
        dataset.attrs["MATLAB_class"] = np.bytes_(matlab_class)


def _ref_name(number: int) -> str:
    """MATLAB-style #refs# names: a, b, ..., z, ba, bb, ..."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    name = letters[number % 26]
    number //= 26
    while number:
        name = letters[number % 26] + name
        number //= 26
    return name
