"""Read an ONNX graph's input names and shapes without the ``onnx`` package or its weights.

Importers need to know a graph's inputs (is this an SD UNet? SDXL? LCM-distilled?), and
the app ships without ``onnx``; loading a multi-GB UNet into onnxruntime just to look
would be slow. So this walks the protobuf wire format directly, seeking past every
field it does not need (nodes, initializers), reading a few kilobytes of any file.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from desktop.engines.errors import PackFormatError

# field numbers from onnx.proto
_MODEL_GRAPH = 7
_GRAPH_INPUT = 11
_VALUE_NAME, _VALUE_TYPE = 1, 2
_TYPE_TENSOR = 1
_TENSOR_ELEM, _TENSOR_SHAPE = 1, 2
_SHAPE_DIM = 1
_DIM_VALUE, _DIM_PARAM = 1, 2
ELEM_TYPES = {1: "float", 6: "int32", 7: "int64", 10: "float16", 11: "double", 16: "bfloat16"}


def graph_inputs(path: Path | str) -> dict[str, tuple[str, list[int | str | None]]]:
    """{input name: (element type, dims)} where a dim is an int, a symbolic name or None."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            end = path.stat().st_size
            for field, wire, start, length in _fields(fh, 0, end):
                if field == _MODEL_GRAPH and wire == 2:
                    return _graph_inputs(fh, start, start + length)
    except (OSError, ValueError, IndexError) as exc:
        raise PackFormatError(f"'{path.name}' is not a readable ONNX graph ({exc}).") from None
    raise PackFormatError(f"'{path.name}' holds no ONNX graph.")


def _varint(fh: BinaryIO) -> int:
    shift = result = 0
    while True:
        byte = fh.read(1)
        if not byte:
            raise ValueError("truncated file")
        b = byte[0]
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result
        shift += 7
        if shift > 63:
            raise ValueError("malformed varint")


def _fields(fh: BinaryIO, start: int, end: int):
    """Yield (field number, wire type, payload offset, payload length) in [start, end)."""
    fh.seek(start)
    while fh.tell() < end:
        tag = _varint(fh)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            pos = fh.tell()
            value = _varint(fh)
            yield field, wire, pos, value  # for varints "length" carries the value
            continue
        if wire == 1:
            length = 8
        elif wire == 5:
            length = 4
        elif wire == 2:
            length = _varint(fh)
        else:
            raise ValueError(f"unsupported wire type {wire}")
        pos = fh.tell()
        if pos + length > end:
            raise ValueError("field runs past its message")
        yield field, wire, pos, length
        fh.seek(pos + length)


def _graph_inputs(fh: BinaryIO, start: int, end: int) -> dict:
    out = {}
    for field, wire, pos, length in list(_fields(fh, start, end)):
        if field == _GRAPH_INPUT and wire == 2:
            name, elem, dims = _value_info(fh, pos, pos + length)
            out[name] = (elem, dims)
    return out


def _value_info(fh: BinaryIO, start: int, end: int):
    name, elem, dims = "", "", []
    for field, wire, pos, length in list(_fields(fh, start, end)):
        if field == _VALUE_NAME and wire == 2:
            fh.seek(pos)
            name = fh.read(length).decode("utf-8", "replace")
        elif field == _VALUE_TYPE and wire == 2:
            for f2, w2, p2, l2 in list(_fields(fh, pos, pos + length)):
                if f2 == _TYPE_TENSOR and w2 == 2:
                    elem, dims = _tensor_type(fh, p2, p2 + l2)
    return name, elem, dims


def _tensor_type(fh: BinaryIO, start: int, end: int):
    elem, dims = "", []
    for field, wire, pos, length in list(_fields(fh, start, end)):
        if field == _TENSOR_ELEM and wire == 0:
            elem = ELEM_TYPES.get(length, str(length))
        elif field == _TENSOR_SHAPE and wire == 2:
            for f2, w2, p2, l2 in list(_fields(fh, pos, pos + length)):
                if f2 == _SHAPE_DIM and w2 == 2:
                    dim: int | str | None = None
                    for f3, w3, p3, l3 in list(_fields(fh, p2, p2 + l2)):
                        if f3 == _DIM_VALUE and w3 == 0:
                            dim = l3
                        elif f3 == _DIM_PARAM and w3 == 2:
                            fh.seek(p3)
                            dim = fh.read(l3).decode("utf-8", "replace")
                    dims.append(dim)
    return elem, dims
