"""Reading a GGUF file defensively: the header is checked before any tensor is trusted.

``gguf.GGUFReader`` memory-maps the file and believes its header. A GGUF is a download
from anywhere, so before and after handing it over we check what the reader cannot:
counts that could not fit in the file, tensors whose bytes run past its end or do not
match their type and shape, types we cannot map. Every failure is one
:class:`GGUFFormatError` naming the file; nothing is written before these checks pass.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ImportFormatError
from .quant import BLOCK_LAYOUT, FLOAT_TYPES, SUPPORTED

MAGIC = b"GGUF"
# A key/value entry takes at least 8 (key length) + 4 (type) + 1 bytes; a tensor info at
# least 8 + 4 + 8 + 4 + 8. More entries than the file could hold is a lying header.
MIN_KV_BYTES, MIN_TENSOR_INFO_BYTES = 13, 32
MAX_DIMS = 4


class GGUFFormatError(ImportFormatError):
    """A .gguf file that is damaged, truncated, lying about its contents, or uses
    something (architecture, quant type, tokenizer) we cannot convert."""


@dataclass
class Tensor:
    name: str
    kind: Any  # gguf.GGMLQuantizationType
    shape: tuple[int, ...]  # GGUF order: ne[0] is the contiguous (input) dimension
    data: np.ndarray  # memory-mapped bytes, never copied here

    @property
    def rows(self) -> int:
        return int(np.prod(self.shape[1:])) if len(self.shape) > 1 else 1

    @property
    def cols(self) -> int:
        return int(self.shape[0])


@dataclass
class GGUFFile:
    path: Path
    size: int
    metadata: dict[str, Any]  # plain Python values; token arrays stay lazily readable below
    tensors: dict[str, Tensor]
    _reader: Any

    def array(self, key: str) -> list | None:
        """A metadata array (tokens, merges, token types) read in full only when asked."""
        field = self._reader.fields.get(key)
        if field is None:
            return None
        try:
            return list(field.contents())
        except (ValueError, UnicodeDecodeError, IndexError) as exc:
            raise GGUFFormatError(f"'{self.path.name}': metadata '{key}' is damaged ({exc}).") from None

    def get(self, key: str, default=None):
        return self.metadata.get(key, default)

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", "unknown"))


def open_gguf(path: Path) -> GGUFFile:
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(24)
    except OSError as exc:
        raise GGUFFormatError(f"'{path.name}' cannot be read ({exc.strerror}).") from None
    _check_header(path, head, size)
    import gguf

    try:
        reader = gguf.GGUFReader(str(path), "r")
    except Exception as exc:  # the reader's own failures are ValueError/IndexError/struct noise
        raise GGUFFormatError(f"'{path.name}' is not a readable GGUF file (truncated or damaged: {_first_line(exc)}).") from None
    metadata = {}
    for key, field in reader.fields.items():
        if field.types and field.types[0] == gguf.GGUFValueType.ARRAY and len(field.data) > 64:
            continue  # token lists: read on demand through GGUFFile.array
        try:
            metadata[key] = field.contents()
        except Exception as exc:
            raise GGUFFormatError(f"'{path.name}': metadata '{key}' is damaged ({_first_line(exc)}).") from None
    tensors = {}
    for t in reader.tensors:
        tensors[t.name] = _checked_tensor(path, size, t)
    return GGUFFile(path, size, metadata, tensors, reader)


def _check_header(path: Path, head: bytes, size: int) -> None:
    if len(head) < 24 or head[:4] != MAGIC:
        raise GGUFFormatError(f"'{path.name}' is not a GGUF file (no GGUF signature).")
    version, tensor_count, kv_count = struct.unpack("<IQQ", head[4:24])
    if version not in (2, 3):
        raise GGUFFormatError(f"'{path.name}' is GGUF version {version}; only versions 2 and 3 are supported.")
    if tensor_count * MIN_TENSOR_INFO_BYTES + kv_count * MIN_KV_BYTES > size:
        raise GGUFFormatError(f"'{path.name}' claims {tensor_count} tensors and {kv_count} metadata entries, more than its {size:,} bytes can hold: the header is damaged.")


def _checked_tensor(path: Path, size: int, t) -> Tensor:
    from gguf import GGMLQuantizationType

    name = str(t.name)
    try:
        kind = GGMLQuantizationType(int(t.tensor_type))
    except ValueError:
        raise GGUFFormatError(f"'{path.name}': tensor '{name}' has unknown type {int(t.tensor_type)}.") from None
    shape = tuple(int(d) for d in t.shape)
    if not shape or len(shape) > MAX_DIMS or any(d <= 0 for d in shape):
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
        expected = None  # checked only if the model uses it (see require_supported)
    start = int(t.data_offset)
    if expected is not None:
        if start < 0 or start + expected > size:
            raise GGUFFormatError(f"'{path.name}': tensor '{name}' ({expected:,} bytes at offset {start:,}) runs past the end of the {size:,}-byte file: it is truncated or lying.")
        if int(t.data.nbytes) != expected:
            raise GGUFFormatError(f"'{path.name}': tensor '{name}' holds {int(t.data.nbytes):,} bytes, its type and shape need {expected:,}.")
    return Tensor(name, kind, shape, t.data)


def require_supported(gf: GGUFFile, tensor: Tensor) -> None:
    if tensor.kind not in SUPPORTED:
        names = ", ".join(sorted(k.name for k in SUPPORTED))
        raise GGUFFormatError(f"'{gf.path.name}': tensor '{tensor.name}' is {tensor.kind.name}, which Atelier cannot convert yet (supported: {names}).")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
