"""A cheap structural check of an ONNX file, before any runtime session sees it.

Packs come from anywhere; onnxruntime's parser is large C++ that was not written to face
hostile input. This module walks the protobuf wire format itself (stdlib only, the file
memory-mapped, tensor bytes skipped, never copied) and refuses:

* anything that is not well-formed protobuf (truncated or bit-flipped files), with no
  ``ir_version``, no graph, or no opset;
* external-data locations that are absolute, escape the pack (``..``, links) or name a
  file the manifest does not list (only listed files have had their hashes checked),
  or offsets/lengths past the end of that file;
* tensors whose declared dims are negative or imply more than ``MAX_TENSOR_BYTES``, or
  whose stored bytes do not match their shape; graph inputs/outputs with implausible
  fixed dims; subgraphs nested deeper than ``MAX_DEPTH``.

It reads the same fields as ``onnx.checker`` would for these questions, without the
``onnx`` package (which the app does not ship).
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass, field
from pathlib import Path

from desktop.engines.errors import PackFormatError, UnsafePathError

MAX_TENSOR_BYTES = 64 * 1024**3
MAX_DIM = 1 << 40
MAX_DEPTH = 16
MAX_FIELDS = 50_000_000
# TensorProto.DataType -> bytes per element (4-bit types are handled as halves)
ELEMENT_BYTES = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 14: 8, 15: 16, 16: 2, 17: 1, 18: 1, 19: 1, 20: 1}
HALF_BYTE_TYPES = {21, 22, 23}


class _Bad(Exception):
    """Internal: malformed wire data (turned into PackFormatError with the file named)."""


@dataclass
class OnnxSummary:
    ir_version: int = 0
    opsets: dict[str, int] = field(default_factory=dict)
    nodes: int = 0
    initializers: int = 0
    external_files: set[str] = field(default_factory=set)
    external_bytes: int = 0


def _varint(buf, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise _Bad("a number runs past the end of its field")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


class _Walker:
    def __init__(self, buf, size: int):
        self.buf, self.size, self.count = buf, size, 0

    def fields(self, start: int, end: int):
        """Yield (field number, wire type, value or (start, end)) for one message."""
        buf, pos = self.buf, start
        while pos < end:
            self.count += 1
            if self.count > MAX_FIELDS:
                raise _Bad("implausibly many fields")
            key, pos = _varint(buf, pos, end)
            num, wire = key >> 3, key & 7
            if num == 0:
                raise _Bad("field number 0")
            if wire == 0:
                value, pos = _varint(buf, pos, end)
                yield num, 0, value
            elif wire == 2:
                length, pos = _varint(buf, pos, end)
                if pos + length > end:
                    raise _Bad("a field runs past the end of the file (truncated?)")
                yield num, 2, (pos, pos + length)
                pos += length
            elif wire == 1:
                pos += 8
                if pos > end:
                    raise _Bad("a field runs past the end of the file (truncated?)")
                yield num, 1, None
            elif wire == 5:
                pos += 4
                if pos > end:
                    raise _Bad("a field runs past the end of the file (truncated?)")
                yield num, 5, None
            else:
                raise _Bad(f"wire type {wire} is not used by ONNX")

    def text(self, span) -> str:
        start, end = span
        if end - start > 1 << 20:
            raise _Bad("a name is implausibly long")
        try:
            return bytes(self.buf[start:end]).decode("utf-8")
        except UnicodeDecodeError:
            raise _Bad("a name is not UTF-8") from None

    def int64s(self, wire: int, value) -> list[int]:
        """A repeated int64 field, packed or not."""
        if wire == 0:
            return [_signed(value)]
        if wire != 2:
            raise _Bad("a dims field has the wrong wire type")
        out, (pos, end) = [], value
        while pos < end:
            v, pos = _varint(self.buf, pos, end)
            out.append(_signed(v))
        return out


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


class _Checker:
    def __init__(self, path: Path, pack_root: Path, listed: set[Path]):
        self.path, self.root, self.listed = path, pack_root, listed
        self.summary = OnnxSummary()

    def run(self) -> OnnxSummary:
        size = self.path.stat().st_size
        if size == 0:
            raise PackFormatError(f"'{self.path.name}' is empty; it is not an ONNX model.")
        with open(self.path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            w = _Walker(buf, size)
            try:
                self.model(w, 0, size)
            except _Bad as exc:
                raise PackFormatError(f"'{self.path.name}' is not a valid ONNX model ({exc}); the file is damaged or not ONNX.") from None
        s = self.summary
        if not s.ir_version:
            raise PackFormatError(f"'{self.path.name}' is not a valid ONNX model (no IR version).")
        if not s.opsets:
            raise PackFormatError(f"'{self.path.name}' is not a valid ONNX model (it imports no operator set).")
        return s

    def model(self, w: _Walker, start: int, end: int) -> None:
        graphs = 0
        for num, wire, value in w.fields(start, end):
            if num == 1 and wire == 0:
                self.summary.ir_version = value
            elif num == 8 and wire == 2:
                domain, version = "", 0
                for n2, w2, v2 in w.fields(*value):
                    if n2 == 1 and w2 == 2:
                        domain = w.text(v2)
                    elif n2 == 2 and w2 == 0:
                        version = v2
                self.summary.opsets[domain] = version
            elif num == 7 and wire == 2:
                graphs += 1
                self.graph(w, *value, depth=0)
            elif num == 25 and wire == 2:  # FunctionProto: its nodes may hold tensors
                for n2, w2, v2 in w.fields(*value):
                    if n2 == 7 and w2 == 2:
                        self.node(w, *v2, depth=1)
        if graphs != 1:
            raise _Bad("no graph" if not graphs else "more than one graph")

    def graph(self, w: _Walker, start: int, end: int, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise _Bad("subgraphs are nested implausibly deep")
        for num, wire, value in w.fields(start, end):
            if wire != 2:
                continue
            if num == 1:
                self.node(w, *value, depth)
            elif num == 5:
                self.summary.initializers += 1
                self.tensor(w, *value)
            elif num == 15:  # SparseTensorProto: values (1) and indices (2)
                for n2, w2, v2 in w.fields(*value):
                    if n2 in (1, 2) and w2 == 2:
                        self.tensor(w, *v2)
            elif num in (11, 12):
                self.value_info(w, *value)

    def node(self, w: _Walker, start: int, end: int, depth: int) -> None:
        self.summary.nodes += 1
        for num, wire, value in w.fields(start, end):
            if num == 5 and wire == 2:  # AttributeProto
                for n2, w2, v2 in w.fields(*value):
                    if w2 != 2:
                        continue
                    if n2 in (5, 10):  # t, tensors
                        self.tensor(w, *v2)
                    elif n2 in (6, 11):  # g, graphs
                        self.graph(w, *v2, depth=depth + 1)
                    elif n2 in (22, 23):  # sparse_tensor(s)
                        for n3, w3, v3 in w.fields(*v2):
                            if n3 in (1, 2) and w3 == 2:
                                self.tensor(w, *v3)

    def value_info(self, w: _Walker, start: int, end: int) -> None:
        """Graph inputs/outputs: fixed dims must be plausible (outputs get allocated)."""
        for num, wire, value in w.fields(start, end):
            if num == 2 and wire == 2:  # TypeProto
                for n2, w2, v2 in w.fields(*value):
                    if n2 == 1 and w2 == 2:  # tensor_type
                        for n3, w3, v3 in w.fields(*v2):
                            if n3 == 2 and w3 == 2:  # shape
                                for n4, w4, v4 in w.fields(*v3):
                                    if n4 == 1 and w4 == 2:  # dim
                                        for n5, w5, v5 in w.fields(*v4):
                                            if n5 == 1 and w5 == 0 and not 0 <= _signed(v5) <= MAX_DIM:
                                                raise _Bad(f"an input or output declares the dimension {_signed(v5)}")

    def tensor(self, w: _Walker, start: int, end: int) -> None:
        dims: list[int] = []
        dtype, raw, location, entries, name = 0, None, 0, {}, ""
        for num, wire, value in w.fields(start, end):
            if num == 1:
                dims += w.int64s(wire, value)
            elif num == 2 and wire == 0:
                dtype = value
            elif num == 8 and wire == 2:
                name = w.text(value)
            elif num == 9 and wire == 2:
                raw = value[1] - value[0]
            elif num == 13 and wire == 2:
                key = val = ""
                for n2, w2, v2 in w.fields(*value):
                    if n2 == 1 and w2 == 2:
                        key = w.text(v2)
                    elif n2 == 2 and w2 == 2:
                        val = w.text(v2)
                entries[key] = val
            elif num == 14 and wire == 0:
                location = value
        label = f"tensor '{name[:80]}'" if name else "a tensor"
        count = 1
        for d in dims:
            if d < 0:
                raise _Bad(f"{label} has a negative dimension {d}")
            count *= d
            if count > MAX_TENSOR_BYTES:
                raise _Bad(f"{label} declares dims {dims[:8]} - implausibly large")
        need = _nbytes(dtype, count)
        if need is not None and need > MAX_TENSOR_BYTES:
            raise _Bad(f"{label} declares {need:,} bytes - implausibly large")
        if raw is not None and need is not None and raw != need:
            raise _Bad(f"{label} stores {raw:,} bytes but its shape {dims[:8]} needs {need:,}")
        if location == 1:
            self.external(label, entries, need)

    def external(self, label: str, entries: dict[str, str], need: int | None) -> None:
        where = entries.get("location", "")
        if not where:
            raise _Bad(f"{label} keeps its data outside the file but names no location")
        from desktop.engines.packs.pack import confined_path

        try:
            target = confined_path(self.path.parent, where)
            confined_path(self.root, os.path.relpath(target, Path(self.root).resolve()))
        except UnsafePathError:
            raise UnsafePathError(
                f"'{self.path.name}': {label} reads its data from '{where}', outside the pack folder; refusing to load it."
            ) from None
        if target not in self.listed:
            raise UnsafePathError(f"'{self.path.name}': {label} reads its data from '{where}', a file the pack's manifest does not list.")
        try:
            offset = int(entries.get("offset", "0") or 0)
            length = int(entries["length"]) if entries.get("length") else need
        except ValueError:
            raise _Bad(f"{label} has a malformed external-data offset or length") from None
        size = target.stat().st_size
        if offset < 0 or (length is not None and (length < 0 or offset + length > size)):
            raise _Bad(f"{label} reads bytes {offset}..{offset + (length or 0)} of '{where}', which has {size}")
        if need is not None and length is not None and length != need:
            raise _Bad(f"{label} reads {length:,} bytes but its shape needs {need:,}")
        self.summary.external_files.add(where)
        self.summary.external_bytes += length or 0


def _nbytes(dtype: int, count: int) -> int | None:
    if dtype in ELEMENT_BYTES:
        return count * ELEMENT_BYTES[dtype]
    if dtype in HALF_BYTE_TYPES:
        return (count + 1) // 2
    return None  # strings and unknown future types: no fixed size to check


def check_onnx_file(path: Path, pack_root: Path, listed: set[Path]) -> OnnxSummary:
    """Check one ONNX file of a pack. ``listed`` holds the resolved paths of the files
    the manifest lists (and whose sizes and hashes were verified)."""
    return _Checker(Path(path), Path(pack_root), listed).run()
