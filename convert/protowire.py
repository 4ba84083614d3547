"""The protobuf wire format at the byte level, for the large float arrays of Caffe files.

The protobuf runtime parses and writes every Caffe message, but parsing a whole
580 MB ``.caffemodel`` and then copying each blob's repeated ``float data`` into NumPy
takes about four times as long as walking it here (docs/decisions.md). So a
``.caffemodel`` is walked field by field over a memory map: small messages go to the
protobuf runtime, and a blob's packed ``data`` becomes a zero-copy ``np.frombuffer``
view. Writing does the reverse: the runtime serialises the small messages and the
packed arrays are appended as raw bytes (protobuf allows a message's fields in any
order).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

VARINT, FIXED64, LENGTH_DELIMITED, FIXED32 = 0, 1, 2, 5


class WireError(ValueError):
    """Bytes that are not a protobuf message (or one cut short)."""


@dataclass(frozen=True)
class Field:
    number: int
    wire_type: int
    start: int  # first byte of the tag
    value_start: int  # first byte of the value (after the length, for LENGTH_DELIMITED)
    end: int  # one past the last byte
    value: int = 0  # the number, for VARINT

    def bytes_of(self, buffer) -> bytes:
        """The whole field, tag included, as bytes (to re-parse with the runtime)."""
        return bytes(buffer[self.start : self.end])


def read_varint(buffer, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end:
            raise WireError("truncated varint")
        byte = buffer[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise WireError("varint longer than 10 bytes")


def iter_fields(buffer, start: int = 0, end: int | None = None) -> Iterator[Field]:
    """The fields of the message in ``buffer[start:end]``, in file order."""
    end = len(buffer) if end is None else end
    pos = start
    while pos < end:
        tag, value_pos = read_varint(buffer, pos, end)
        number, wire_type = tag >> 3, tag & 7
        if number == 0:
            raise WireError(f"field number 0 at byte {pos}")
        value = 0
        if wire_type == VARINT:
            value, stop = read_varint(buffer, value_pos, end)
        elif wire_type == FIXED64:
            stop = value_pos + 8
        elif wire_type == FIXED32:
            stop = value_pos + 4
        elif wire_type == LENGTH_DELIMITED:
            length, value_pos = read_varint(buffer, value_pos, end)
            stop = value_pos + length
        else:
            raise WireError(f"wire type {wire_type} (field {number}) at byte {pos}")
        if stop > end:
            raise WireError(f"field {number} runs past the end ({stop - end} bytes missing)")
        yield Field(number, wire_type, pos, value_pos, stop, value)
        pos = stop


def floats(buffer, field: Field, dtype: str) -> np.ndarray:
    """A packed repeated float (``<f4``) or double (``<f8``) field as a read-only view."""
    itemsize = np.dtype(dtype).itemsize
    length = field.end - field.value_start
    if length % itemsize:
        raise WireError(f"packed field {field.number} holds {length} bytes, not a multiple of {itemsize}")
    return np.frombuffer(buffer, dtype=dtype, count=length // itemsize, offset=field.value_start)


def encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field_header(number: int, length: int) -> bytes:
    """Tag and length of a LENGTH_DELIMITED field whose ``length`` value bytes follow."""
    return encode_varint(number << 3 | LENGTH_DELIMITED) + encode_varint(length)
