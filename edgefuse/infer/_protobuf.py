"""A minimal protobuf wire-format reader: enough to look into an ONNX file (header fields, opsets, operator
types) without the ``onnx`` package, which the core does not depend on."""

from __future__ import annotations

from typing import Any

from edgefuse.errors import ModelError


class NotProtobufError(ModelError):
    """Bytes that are no protobuf message."""


def varint(data: Any, pos: int) -> tuple[int, int]:
    """``(value, next position)`` of the base-128 varint at ``pos``; EOFError when the data ends inside it."""
    value = shift = 0
    while True:
        if pos >= len(data):
            raise EOFError
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise NotProtobufError("varint too long")


def fields(data: Any) -> list[tuple[int, int, Any]]:
    """The fields ``(number, wire type, value)`` of one message: an int for varints, a slice of ``data`` for
    the length-delimited and fixed-size ones.

    Raises:
        EOFError: the data ends inside a field.
        NotProtobufError: a field number 0 or a wire type ONNX does not use (groups).
    """
    out: list[tuple[int, int, Any]] = []
    pos = 0
    while pos < len(data):
        tag, pos = varint(data, pos)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise NotProtobufError("field number 0")
        value: Any
        if wire == 0:
            value, pos = varint(data, pos)
        elif wire in (1, 2, 5):
            if wire == 2:
                size, pos = varint(data, pos)
            else:
                size = 8 if wire == 1 else 4
            if pos + size > len(data):
                raise EOFError
            value, pos = data[pos:pos + size], pos + size
        else:
            raise NotProtobufError(f"wire type {wire}")
        out.append((number, wire, value))
    return out
