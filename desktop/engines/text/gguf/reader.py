"""Reading a GGUF file defensively: every length is checked against the file before use.

We parse the header ourselves (``struct`` over a memory map) instead of through
``gguf.GGUFReader``: that reader builds a numpy view per vocabulary string (~100k for a
49k-token vocabulary), which took most of a conversion's time and ~160 MB, and it believes
counts and offsets that a damaged or hostile file can lie about. Here every count, string
and tensor extent is checked against the bytes actually there; tensor bytes are read one
tensor at a time with ``pread`` (no mapping stays resident). Every failure is one
:class:`GGUFFormatError` naming the file; nothing is written before these checks pass.
gguf's own enums and ``gguf.quants`` (tests' reference) are still used.
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from desktop.engines.errors import AtelierError, ImportFormatError
from desktop.engines.text.gguf.quant import BLOCK_LAYOUT, DEQUANTIZED, EXACT, FLOAT_TYPES, SUPPORTED

MAGIC = b"GGUF"
# A key/value entry takes at least 8 (key length) + 4 (type) + 1 bytes; a tensor info at
# least 8 + 4 + 8 + 4 + 8. More entries than the file could hold is a lying header.
MIN_KV_BYTES, MIN_TENSOR_INFO_BYTES = 13, 32
MAX_DIMS = 4
MAX_STRING = 64 << 20  # a chat template or licence text is KBs; this is far above any
# value type -> (struct format, size) for the scalar GGUF value types
_SCALARS = {0: ("<B", 1), 1: ("<b", 1), 2: ("<H", 2), 3: ("<h", 2), 4: ("<I", 4), 5: ("<i", 4), 6: ("<f", 4), 7: ("<?", 1), 10: ("<Q", 8), 11: ("<q", 8), 12: ("<d", 8)}
_NUMPY = {0: "<u1", 1: "<i1", 2: "<u2", 3: "<i2", 4: "<u4", 5: "<i4", 6: "<f4", 7: "<u1", 10: "<u8", 11: "<i8", 12: "<f8"}
STRING, ARRAY = 8, 9


class GGUFFormatError(ImportFormatError):
    """A .gguf file that is damaged, truncated, lying about its contents, or uses
    something (architecture, quant type, tokenizer) we cannot convert."""


@dataclass
class Tensor:
    name: str
    kind: Any  # gguf.GGMLQuantizationType
    shape: tuple[int, ...]  # GGUF order: ne[0] is the contiguous (input) dimension
    offset: int  # absolute, in the file
    nbytes: int
    path: Path

    @property
    def rows(self) -> int:
        return int(np.prod(self.shape[1:])) if len(self.shape) > 1 else 1

    @property
    def cols(self) -> int:
        return int(self.shape[0])

    def read(self) -> np.ndarray:
        """The tensor's bytes, read now (uint8); freed when the caller drops them."""
        buf = np.empty(self.nbytes, np.uint8)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            got = os.preadv(fd, [buf], self.offset) if hasattr(os, "preadv") else _pread_into(fd, buf, self.offset)
        finally:
            os.close(fd)
        if got != self.nbytes:
            raise GGUFFormatError(f"'{self.path.name}': tensor '{self.name}' could not be read in full (the file changed or is truncated).")
        return buf


def _pread_into(fd: int, buf: np.ndarray, offset: int) -> int:
    os.lseek(fd, offset, os.SEEK_SET)
    return os.readv(fd, [buf])


@dataclass
class GGUFFile:
    path: Path
    size: int
    metadata: dict[str, Any]  # plain Python values (arrays as lists)
    tensors: dict[str, Tensor]

    def array(self, key: str) -> list | None:
        value = self.metadata.get(key)
        return list(value) if isinstance(value, (list, tuple)) else None

    def get(self, key: str, default=None):
        return self.metadata.get(key, default)

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", "unknown"))


def open_gguf(path: Path) -> GGUFFile:
    path = Path(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < 24:
                raise GGUFFormatError(f"'{path.name}' is not a GGUF file (only {size} bytes).")
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as view:
                return _Parser(path, view, size).parse()
    except OSError as exc:
        raise GGUFFormatError(f"'{path.name}' cannot be read ({exc.strerror or exc}).") from None


class _Parser:
    def __init__(self, path: Path, view, size: int):
        self.path, self.view, self.size, self.pos = path, view, size, 0

    def fail(self, what: str):
        raise GGUFFormatError(f"'{self.path.name}' is damaged: {what}.")

    def take(self, n: int) -> int:
        if n < 0 or self.pos + n > self.size:
            self.fail(f"it ends inside its header (needs {n:,} bytes at offset {self.pos:,} of {self.size:,}): truncated or lying")
        start = self.pos
        self.pos += n
        return start

    def scalar(self, kind: int):
        fmt, n = _SCALARS[kind]
        return struct.unpack_from(fmt, self.view, self.take(n))[0]

    def string(self) -> str:
        n = self.scalar(10)
        if n > MAX_STRING:
            self.fail(f"a {n:,}-byte string at offset {self.pos - 8:,}")
        start = self.take(n)
        try:
            return self.view[start : start + n].decode("utf-8")
        except UnicodeDecodeError:
            self.fail(f"a string at offset {start:,} is not UTF-8")

    def value(self, kind: int, depth: int = 0):
        if kind in _SCALARS:
            return self.scalar(kind)
        if kind == STRING:
            return self.string()
        if kind == ARRAY and depth < 2:
            item, count = self.scalar(4), self.scalar(10)
            least = _SCALARS[item][1] if item in _SCALARS else 8 if item in (STRING, ARRAY) else None
            if least is None:
                self.fail(f"an array of unknown value type {item}")
            if count * least > self.size - self.pos:
                self.fail(f"an array claims {count:,} items, more than the file holds")
            if item in _NUMPY:  # numbers in one read, not one struct call each
                start = self.take(count * least)
                values = np.frombuffer(self.view, _NUMPY[item], count, start)
                return (values != 0).tolist() if item == 7 else values.tolist()
            return [self.value(item, depth + 1) for _ in range(count)]
        self.fail(f"unknown metadata value type {kind}")

    def parse(self) -> GGUFFile:
        if bytes(self.view[:4]) != MAGIC:
            raise GGUFFormatError(f"'{self.path.name}' is not a GGUF file (no GGUF signature).")
        self.pos = 4
        version = self.scalar(4)
        if version not in (2, 3):
            raise GGUFFormatError(f"'{self.path.name}' is GGUF version {version}; only versions 2 and 3 are supported.")
        tensor_count, kv_count = self.scalar(10), self.scalar(10)
        if tensor_count * MIN_TENSOR_INFO_BYTES + kv_count * MIN_KV_BYTES > self.size:
            raise GGUFFormatError(f"'{self.path.name}' claims {tensor_count:,} tensors and {kv_count:,} metadata entries, more than its {self.size:,} bytes can hold: the header is damaged.")
        metadata = {}
        for _ in range(kv_count):
            key = self.string()
            metadata[key] = self.value(self.scalar(4))
        infos = []
        for _ in range(tensor_count):
            name = self.string()
            dims = self.scalar(4)
            if not 0 < dims <= MAX_DIMS:
                self.fail(f"tensor '{name}' has {dims} dimensions")
            shape = tuple(self.scalar(10) for _ in range(dims))
            infos.append((name, shape, self.scalar(4), self.scalar(10)))
        align = metadata.get("general.alignment", 32)
        if not isinstance(align, int) or align <= 0 or align & (align - 1):
            self.fail(f"alignment {align!r} is not a power of two")
        data_start = self.pos + (-self.pos) % align
        tensors = {}
        for name, shape, kind, offset in infos:
            if name in tensors:
                self.fail(f"tensor '{name}' appears twice")
            tensors[name] = _checked_tensor(self.path, self.size, name, shape, kind, data_start + offset)
        return GGUFFile(self.path, self.size, metadata, tensors)


def _checked_tensor(path: Path, size: int, name: str, shape: tuple, kind_id: int, start: int) -> Tensor:
    from gguf import GGMLQuantizationType

    try:
        kind = GGMLQuantizationType(kind_id)
    except ValueError:
        raise GGUFFormatError(f"'{path.name}': tensor '{name}' has unknown type {kind_id}.") from None
    if any(d <= 0 or d > 1 << 40 for d in shape):
        raise GGUFFormatError(f"'{path.name}': tensor '{name}' has an impossible shape {shape}.")
    count = int(np.prod(shape, dtype=np.float64))
    if kind in BLOCK_LAYOUT:
        block_bytes, per = BLOCK_LAYOUT[kind]
        if shape[0] % per:
            raise GGUFFormatError(f"'{path.name}': tensor '{name}' rows of {shape[0]} do not divide into {kind.name} blocks of {per}.")
        expected = count // per * block_bytes
    elif kind in FLOAT_TYPES:
        expected = count * (4 if kind == GGMLQuantizationType.F32 else 2)
    else:
        from gguf.constants import GGML_QUANT_SIZES

        per, block_bytes = GGML_QUANT_SIZES.get(kind, (1, 0))
        if shape[0] % per:
            raise GGUFFormatError(f"'{path.name}': tensor '{name}' rows of {shape[0]} do not divide into {kind.name} blocks of {per}.")
        expected = count // per * block_bytes  # checked for extent; an unsupported type is refused when converted
    if start + expected > size:
        raise GGUFFormatError(f"'{path.name}': tensor '{name}' ({expected:,} bytes at offset {start:,}) runs past the end of the {size:,}-byte file: it is truncated or lying.")
    return Tensor(name, kind, shape, start, expected, path)


def require_supported(gf: GGUFFile, tensor: Tensor) -> None:
    if tensor.kind not in SUPPORTED:
        exact = ", ".join(sorted(k.name for k in EXACT))
        widened = ", ".join(sorted(k.name for k in DEQUANTIZED))
        raise GGUFFormatError(f"'{gf.path.name}': tensor '{tensor.name}' is {tensor.kind.name}, which Atelier cannot convert (kept as they are: {exact}; stored at 8 bits: {widened}).")


class ConversionCancelled(AtelierError):
    """The person cancelled a conversion; nothing was kept."""
