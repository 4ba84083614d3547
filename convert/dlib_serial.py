"""dlib's serialization (``dlib/serialize.h``), read and written in pure Python.

* integers: a control byte (the byte count in its low bits, ``0x80`` when negative)
  then the magnitude, little-endian, in the fewest bytes (zero is ``01 00``);
* ``float``/``double`` fields: ``float_details``, a signed 64-bit mantissa and a signed
  16-bit exponent, each an integer as above; the value is ``mantissa * 2**exponent``
  (exponents 32000/32001/32002 mean +inf, -inf, NaN);
* ``bool``: the byte ``'1'`` or ``'0'``; strings: an unsigned length then the bytes;
* tensors (``dlib/cuda/tensor.h``): ``int 2`` then the four dimensions (n, k, nr, nc)
  then the raw little-endian float32 values in NCHW order; an alias tensor is ``int 1``
  and the dimensions only.

:class:`Reader` reads over a memory map and never allocates what a file declares
before checking that the bytes are there: a tensor is a zero-copy view, a string or
a tensor longer than the rest of the file is a :class:`TruncatedError`.
:class:`Writer` writes the same encodings (the stand-ins of ``make-standin --format dlib``).
"""

from __future__ import annotations

import math
import struct
from typing import BinaryIO

import numpy as np

from gender_cli.errors import ModelFileError

SPECIAL_EXPONENTS = {32000: math.inf, 32001: -math.inf, 32002: math.nan}
MAX_STRING = 1 << 12  # version strings and names; anything longer is not a dlib network file
MAX_TENSOR_DIM = 1 << 31


class TruncatedError(ModelFileError):
    """The file ends before what it declares."""


class Reader:
    def __init__(self, data, start: int = 0):
        self.data = data  # bytes or a memory map
        self.pos = start

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def _take(self, count: int) -> memoryview:
        if count > self.remaining():
            raise TruncatedError(f"the file ends at byte {len(self.data)}, {count} bytes were due at {self.pos}")
        view = memoryview(self.data)[self.pos : self.pos + count]
        self.pos += count
        return view

    def _int(self, width: int, signed: bool) -> int:
        control = self._take(1)[0]
        size = control & (0x0F if signed else 0x8F)
        if size == 0 or size > width:
            raise ModelFileError(f"byte {self.pos - 1}: 0x{control:02x} is not a dlib integer of {width} bytes")
        value = int.from_bytes(self._take(size), "little")
        return -value if signed and control & 0x80 else value

    def int(self) -> int:  # C++ int
        return self._int(4, True)

    def long(self) -> int:  # long / long long / int64
        return self._int(8, True)

    def ulong(self) -> int:  # unsigned long / size_t
        return self._int(8, False)

    def uint(self) -> int:
        return self._int(4, False)

    def boolean(self) -> bool:
        value = self._take(1)[0]
        if value not in (0x30, 0x31):
            raise ModelFileError(f"byte {self.pos - 1}: 0x{value:02x} is not a dlib bool")
        return value == 0x31

    def string(self, limit: int = MAX_STRING) -> str:
        length = self.ulong()
        if length > limit:
            raise ModelFileError(f"byte {self.pos}: a string of {length} bytes, longer than any dlib layer name")
        return bytes(self._take(length)).decode("latin-1")

    def real(self, dtype=np.float64) -> float:
        """A ``float`` (dtype float32) or ``double`` field: ldexp of the mantissa cast to
        that type, as dlib's ``convert_to_T`` does."""
        if self.remaining() and self.data[self.pos] & 0x70:
            raise ModelFileError(f"byte {self.pos}: a number in dlib's old text format, which gender-cli does not read")
        mantissa, exponent = self._int(8, True), self._int(2, True)
        if exponent in SPECIAL_EXPONENTS:
            return float(SPECIAL_EXPONENTS[exponent])
        return float(np.ldexp(dtype(mantissa), exponent).astype(dtype))

    def dims(self) -> tuple[int, int, int, int]:
        dims = tuple(self.long() for _ in range(4))
        if any(d < 0 or d > MAX_TENSOR_DIM for d in dims):
            raise ModelFileError(f"byte {self.pos}: tensor dimensions {dims} are not a tensor's")
        return dims

    def tensor(self) -> np.ndarray:
        """(n, k, nr, nc) float32, a view into the file."""
        version = self.int()
        if version != 2:
            raise ModelFileError(f"byte {self.pos}: tensor version {version}, expected 2")
        dims = self.dims()
        count = math.prod(dims)
        if 4 * count > self.remaining():
            raise TruncatedError(
                f"a tensor of {'x'.join(map(str, dims))} floats ({4 * count} bytes) where {self.remaining()} "
                "bytes are left"
            )
        view = self._take(4 * count)
        return np.frombuffer(view, dtype="<f4").reshape(dims)

    def alias(self) -> tuple[int, int, int, int]:
        version = self.int()
        if version != 1:
            raise ModelFileError(f"byte {self.pos}: alias tensor version {version}, expected 1")
        return self.dims()


class Writer:
    def __init__(self, stream: BinaryIO):
        self.stream = stream

    def _int(self, value: int) -> None:
        magnitude, negative = abs(int(value)), value < 0
        payload = magnitude.to_bytes(max(1, (magnitude.bit_length() + 7) // 8), "little")
        self.stream.write(bytes([len(payload) | (0x80 if negative else 0)]) + payload)

    int = long = ulong = uint = _int

    def boolean(self, value: bool) -> None:
        self.stream.write(b"1" if value else b"0")

    def string(self, text: str) -> None:
        data = text.encode("latin-1")
        self._int(len(data))
        self.stream.write(data)

    def real(self, value: float, digits: int = 53) -> None:
        """``float_details`` of ``value`` (digits 24 for a float field, 53 for a double)."""
        if math.isnan(value) or math.isinf(value):
            special = {math.inf: 32000, -math.inf: 32001}.get(value, 32002)
            self._int(0), self._int(special)
            return
        fraction, exponent = math.frexp(value)
        mantissa, exponent = int(fraction * (1 << digits)), exponent - digits
        for _ in range(8):  # drop whole zero bytes, as convert_from_T does
            if mantissa & 0xFF:
                break
            mantissa >>= 8
            exponent += 8
        self._int(mantissa)
        self._int(exponent)

    def dims(self, dims) -> None:
        for d in dims:
            self._int(int(d))

    def tensor(self, values: np.ndarray | None, dims=None) -> None:
        self._int(2)
        array = np.zeros(0, np.float32) if values is None else np.asarray(values, np.float32)
        self.dims(dims if dims is not None else (array.shape + (1, 1, 1, 1))[:4] if array.ndim < 4 else array.shape)
        self.stream.write(np.ascontiguousarray(array, dtype="<f4").tobytes())

    def empty_tensor(self) -> None:
        self.tensor(None, (0, 0, 0, 0))

    def alias(self, dims) -> None:
        self._int(1)
        self.dims(dims)


def packed_float32(value: float) -> bytes:
    """float32 bytes (for tests)."""
    return struct.pack("<f", value)
