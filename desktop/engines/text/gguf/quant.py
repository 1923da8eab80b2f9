"""GGUF quant blocks re-laid as onnxruntime MatMulNBits blocks, without requantizing.

Every GGUF weight type we take is, per block of ``block`` consecutive inputs of one output
row, ``scale * (q - zero) + offset`` with integer ``q``; only the bit width, block size and
where scale/zero/offset come from differ. So a tensor becomes a :class:`BlockWeight`
whose fields are read straight from the file's bytes:

=======  =====================================  ===========================================
type     file stores                            MatMulNBits form (exact unless said)
=======  =====================================  ===========================================
Q8_0     d, 32 x int8                           8-bit, block 32, scale d, zero 128
Q4_0     d, 32 x 4-bit, value d * (q - 8)       4-bit, block 32, scale d, zero 8
Q4_1     d, m, 32 x 4-bit, value d * q + m      4-bit, block 32, integer zero z near -m/d,
                                                offset m + d*z carried by a float matmul
Q5_0     d, 32 x 5-bit, value d * (q - 16)      8-bit, block 32, zero 16
Q5_1     d, m, 32 x 5-bit                       8-bit, block 32, zero + offset as Q4_1
Q4_K     super-block 256: d, dmin, 8 x 6-bit    4-bit, block 32, scale d*sc, zero + offset
         (sc, mn), value d*sc*q - dmin*mn       for -dmin*mn (d*sc is exact in fp32)
Q5_K     as Q4_K with 5-bit q                   8-bit, block 32, as Q4_K
Q6_K     d, 16 x int8 sc, 16 x 16 6-bit q       8-bit, block 16, scale d*sc, zero 32
F32/F16/BF16                                    kept float (fp32 initializer)
IQ4_NL, IQ4_XS  d (x 6-bit sc), 4-bit index into an    8-bit, block 32, scale |unit|, the grid's
                int8 grid: value unit * grid[i]         integer itself (exact; the import says
                                                        it is stored at 8 bits)
Q3_K, Q2_K      16-value sub-blocks, 3/2-bit q,         8-bit, block 16, scale d*sc (Q2_K: zero
                6/4-bit sc (Q2_K: minus dmin*mn)        + offset as Q4_1), exact as above
IQ1-IQ3, TQ*, MXFP4                             no MatMulNBits form (non-uniform grids,
                                                ternary): ``gguf.quants.dequantize``,
                                                then 8-bit, block 32, scale amax/127 (a
                                                second rounding, <= 1/254 of each block's
                                                largest value; the import says so)
=======  =====================================  ===========================================

5- and 6-bit values are stored in 8-bit blocks: MatMulNBits has no 5/6-bit form, and widening
the integer loses nothing (the file's precision is kept; only the pack grows by 8/5 or 8/6).
The only rounding anywhere is ``offset = m + d*z`` in fp32, which is exact whenever ``m`` and
``d*z`` are within 2^13 of each other in magnitude (every real block we have seen).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gguf import GGMLQuantizationType as T
from gguf import quants as gguf_quants

FLOAT_TYPES = {T.F32, T.F16, T.BF16}
# type -> (bytes per block, values per block) of the raw layout we decode below
BLOCK_LAYOUT = {T.Q8_0: (34, 32), T.Q4_0: (18, 32), T.Q4_1: (20, 32), T.Q5_0: (22, 32), T.Q5_1: (24, 32), T.Q4_K: (144, 256), T.Q5_K: (176, 256), T.Q6_K: (210, 256)}
# Types gguf.quants can dequantize but that have no exact MatMulNBits form: stored at 8 bits.
_DEQUANTIZED_NAMES = ("Q2_K", "Q3_K", "IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ3_XXS", "IQ3_S", "IQ4_NL", "IQ4_XS", "TQ1_0", "TQ2_0", "MXFP4")
DEQUANTIZED = frozenset(T[n] for n in _DEQUANTIZED_NAMES if n in T.__members__ and hasattr(gguf_quants, n))
EXACT = FLOAT_TYPES | set(BLOCK_LAYOUT)
SUPPORTED = EXACT | DEQUANTIZED
# What each type becomes in the graph, for the manifest's quant mix and the README.
PRECISION = {T.Q8_0: "int8", T.Q4_0: "int4", T.Q4_1: "int4", T.Q4_K: "int4", T.Q5_0: "int8", T.Q5_1: "int8", T.Q5_K: "int8", T.Q6_K: "int8", T.F32: "fp32", T.F16: "fp32", T.BF16: "fp32"}
PRECISION.update({kind: "int8" for kind in DEQUANTIZED})
REQUANT_BLOCK = 32  # every dequantized type's block (32 or 256 values) divides into these
_REQUANT_ROWS = 1024  # rows dequantized at a time: a large vocabulary's float copy stays small


@dataclass
class BlockWeight:
    """Rows of blocks: value = scale * (q - zero) + offset, ``zero`` None = the op's default
    (2^(bits-1)), ``offset`` None = 0. Shapes: q [N, blocks, block]; the rest [N, blocks]."""

    q: np.ndarray
    scale: np.ndarray
    zero: np.ndarray | None
    offset: np.ndarray | None
    bits: int
    block: int

    @property
    def rows(self) -> int:
        return self.q.shape[0]

    @property
    def cols(self) -> int:
        return self.q.shape[1] * self.q.shape[2]

    def dequantize(self) -> np.ndarray:
        """[N, K] float32, what the graph computes with."""
        zero = np.float32(2 ** (self.bits - 1)) if self.zero is None else self.zero.astype(np.float32)[..., None]
        w = (self.q.astype(np.float32) - zero) * self.scale[..., None]
        if self.offset is not None:
            w += self.offset[..., None]
        return w.reshape(self.rows, self.cols)

    def take_rows(self, index: np.ndarray) -> "BlockWeight":
        pick = lambda a: None if a is None else a[index]  # noqa: E731
        return BlockWeight(self.q[index], self.scale[index], pick(self.zero), pick(self.offset), self.bits, self.block)


def concat_rows(parts: list[BlockWeight]) -> BlockWeight:
    """Stack weights of one form along N (q, k, v -> one projection)."""
    first = parts[0]

    def cat(name):
        arrays = [getattr(p, name) for p in parts]
        return None if arrays[0] is None else np.concatenate(arrays, axis=0)

    return BlockWeight(cat("q"), cat("scale"), cat("zero"), cat("offset"), first.bits, first.block)


def same_form(parts: list) -> bool:
    if not all(isinstance(p, BlockWeight) for p in parts):
        return all(isinstance(p, np.ndarray) for p in parts)
    a = parts[0]
    return all((p.bits, p.block, p.zero is None, p.offset is None, p.cols) == (a.bits, a.block, a.zero is None, a.offset is None, a.cols) for p in parts)


def decode(kind: T, raw: np.ndarray, rows: int, cols: int) -> BlockWeight | np.ndarray:
    """A tensor's bytes (``raw``: its memory-mapped data) -> BlockWeight, or float [rows, cols]."""
    if kind in FLOAT_TYPES:
        if kind == T.BF16:
            bits = np.asarray(raw).reshape(-1).view(np.uint16).astype(np.uint32) << 16
            return bits.view(np.float32).reshape(rows, cols)
        return np.asarray(raw).reshape(-1).view(np.float16 if kind == T.F16 else np.float32).astype(np.float32).reshape(rows, cols)
    if kind in DEQUANTIZED:
        return requantize_8bit(kind, raw, rows, cols)
    size, per = BLOCK_LAYOUT[kind]
    b = np.asarray(raw).reshape(-1).view(np.uint8).reshape(rows, cols // per, size)
    return _DECODERS[kind](b, rows)


# Types whose values are an integer (|k| <= 127) times a per-block unit, plus for Q2_K a
# per-block minimum: 8 bits hold them exactly. Each entry: block, and byte patterns that make
# gguf's own dequantize return the unit (and the minimum), so no bit layout is copied here:
# IQ4 grid index 8 is 1; Q3_K q = 1 with the high mask set; Q2_K q = 1 with dmin 0, q = 0.
_EXACT_8BIT = {
    T.IQ4_NL: (32, {(2, 18): 0x88}, None),
    T.IQ4_XS: (32, {(8, 136): 0x88}, None),
    T.Q3_K: (16, {(0, 32): 0xFF, (32, 96): 0x55}, None),
    T.Q2_K: (16, {(16, 80): 0x55, (82, 84): 0}, {(16, 80): 0}),
}


def requantize_8bit(kind: T, raw: np.ndarray, rows: int, cols: int) -> BlockWeight:
    """A type with no MatMulNBits form, stored at 8 bits: exactly (see _EXACT_8BIT) where the
    type is an integer grid times a block unit; otherwise gguf's own dequantization in
    symmetric 8-bit blocks of 32 (a second rounding, <= 1/254 of each block's largest value;
    the int8 grid is 16-64x finer than these 1-3-bit sources' own, so the answer is theirs)."""
    data = np.asarray(raw).reshape(-1).view(np.uint8).reshape(rows, -1)
    block = _EXACT_8BIT[kind][0] if kind in _EXACT_8BIT else REQUANT_BLOCK
    q = np.empty((rows, cols // block, block), np.uint8)
    scale = np.empty((rows, cols // block), np.float32)
    zero = np.empty((rows, cols // block), np.uint8) if block != REQUANT_BLOCK or kind == T.Q2_K else None
    offset = np.empty((rows, cols // block), np.float32) if kind == T.Q2_K else None
    for start in range(0, rows, _REQUANT_ROWS):
        part = slice(start, start + _REQUANT_ROWS)
        w = gguf_quants.dequantize(data[part], kind).astype(np.float32).reshape(-1, cols // block, block)
        if kind in _EXACT_8BIT:
            unit, minimum = _units(kind, data[part], cols)
            s = np.abs(unit) if minimum is None else unit  # Q2_K keeps k = q >= 0 for its zero point
            centred = w if minimum is None else w - minimum[..., None]
        else:
            s, minimum, centred = np.abs(w).max(axis=-1) / 127, None, w
        k = np.clip(np.rint(centred / np.where(s > 0, s, 1)[..., None]), -127, 127)
        if minimum is not None:  # Q2_K: k in 0..3; integer zero + float remainder as Q4_1
            z, offset[part] = _zero_and_offset(s, minimum, 255)
            q[part], zero[part] = k.astype(np.uint8), z
        else:
            q[part] = (k + 128).astype(np.uint8)
            if zero is not None:
                zero[part] = 128
        scale[part] = s
    return BlockWeight(q, scale, zero, offset, 8, block)


def _units(kind: T, data: np.ndarray, cols: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-block unit (and minimum) [rows, cols / block], read by gguf's dequantize of probes."""
    block, unit_bytes, minimum_bytes = _EXACT_8BIT[kind]
    if kind == T.IQ4_NL:  # its unit is the block's own fp16 d: read it, no second dequantize
        return _f16(data.reshape(data.shape[0], -1, 18), 0), None

    def probe(patch: dict) -> np.ndarray:
        from gguf.constants import GGML_QUANT_SIZES

        b = data.reshape(data.shape[0], -1, GGML_QUANT_SIZES[kind][1]).copy()
        for (start, stop), value in patch.items():
            b[..., start:stop] = value
        w = gguf_quants.dequantize(b.reshape(data.shape[0], -1), kind).astype(np.float32)
        return w.reshape(data.shape[0], cols // block, block)[..., 0]

    return probe(unit_bytes), None if minimum_bytes is None else probe(minimum_bytes)


def requantize_4bit(w: BlockWeight) -> BlockWeight:
    """A coarse symmetric 4-bit copy of ``w`` (block 32, scale amax/7) for work where being
    close is enough: picking the head's candidate tokens, whose logits are then recomputed
    from ``w`` itself. Half the bytes of an 8-bit head, and no float-minimum correction."""
    blocks = w.cols // REQUANT_BLOCK
    q = np.empty((w.rows, blocks, REQUANT_BLOCK), np.uint8)
    scale = np.empty((w.rows, blocks), np.float32)
    for start in range(0, w.rows, _REQUANT_ROWS):
        part = slice(start, start + _REQUANT_ROWS)
        values = w.take_rows(part).dequantize().reshape(-1, blocks, REQUANT_BLOCK)
        s = np.abs(values).max(axis=-1) / 7
        safe = np.where(s > 0, s, 1)[..., None]
        q[part] = (np.clip(np.rint(values / safe), -8, 7) + 8).astype(np.uint8)
        scale[part] = s
    return BlockWeight(q, scale, None, None, 4, REQUANT_BLOCK)


def _f16(b: np.ndarray, start: int) -> np.ndarray:
    return np.ascontiguousarray(b[..., start : start + 2]).view(np.float16)[..., 0].astype(np.float32)


def _nibbles(qs: np.ndarray) -> np.ndarray:
    """GGUF 4-bit layout: low nibbles are elements 0..15 of the block, high ones 16..31."""
    return np.concatenate([qs & 0x0F, qs >> 4], axis=-1)


def _high_bits(qh: np.ndarray) -> np.ndarray:
    """32 fifth bits packed little-endian in 4 bytes -> [.., 32] of 0/16."""
    return np.unpackbits(qh, axis=-1, bitorder="little") << 4


def _zero_and_offset(scale: np.ndarray, minimum: np.ndarray, top: int):
    """Integer zero point nearest ``-min/scale`` and the float remainder ``min + scale*z``:
    the kernel's fast path needs integer zero points; the remainder keeps it exact."""
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(scale != 0, np.rint(-minimum / scale), 0)
    z = np.clip(np.nan_to_num(z), 0, top).astype(np.uint8)
    offset = (minimum.astype(np.float64) + scale.astype(np.float64) * z).astype(np.float32)
    return z, offset


def _q8_0(b, rows):
    q = b[..., 2:] ^ np.uint8(0x80)  # int8 v stored as byte r: v + 128 == r ^ 0x80, one pass, no wider copy
    return BlockWeight(q, _f16(b, 0), None, None, 8, 32)


def _q4_0(b, rows):
    return BlockWeight(_nibbles(b[..., 2:]), _f16(b, 0), None, None, 4, 32)


def _q4_1(b, rows):
    d, m = _f16(b, 0), _f16(b, 2)
    z, offset = _zero_and_offset(d, m, 15)
    return BlockWeight(_nibbles(b[..., 4:]), d, z, offset, 4, 32)


def _q5_0(b, rows):
    q = _nibbles(b[..., 6:]) | _high_bits(b[..., 2:6])
    return BlockWeight(q, _f16(b, 0), np.full(b.shape[:2], 16, np.uint8), None, 8, 32)


def _q5_1(b, rows):
    d, m = _f16(b, 0), _f16(b, 2)
    q = _nibbles(b[..., 8:]) | _high_bits(b[..., 4:8])
    z, offset = _zero_and_offset(d, m, 31)
    return BlockWeight(q, d, z, offset, 8, 32)


def _k_scales(b):
    """Q4_K/Q5_K: per 32-value sub-block scale d*sc and minimum -dmin*mn, [rows, blocks*8]."""
    from gguf.quants import Q4_K

    rows, supers = b.shape[:2]
    d, dmin = _f16(b, 0)[..., None], _f16(b, 2)[..., None]
    sc, mn = Q4_K.get_scale_min(np.ascontiguousarray(b[..., 4:16]).reshape(-1, 12))
    sc, mn = sc.reshape(rows, supers, 8), mn.reshape(rows, supers, 8)
    return (d * sc).reshape(rows, -1).astype(np.float32), (-(dmin * mn)).reshape(rows, -1).astype(np.float32)


def _q4_k(b, rows):
    scale, minimum = _k_scales(b)
    qs = b[..., 16:].reshape(rows, -1, 4, 32)  # 4 groups of 32 bytes: low nibbles sub-block 2g, high 2g+1
    q = np.stack([qs & 0x0F, qs >> 4], axis=3).reshape(rows, -1, 32)
    z, offset = _zero_and_offset(scale, minimum, 15)
    return BlockWeight(q, scale, z, offset, 4, 32)


def _q5_k(b, rows):
    scale, minimum = _k_scales(b)
    qh = b[..., 16:48].reshape(rows, -1, 1, 32)
    qs = b[..., 48:].reshape(rows, -1, 4, 32)
    low = np.stack([qs & 0x0F, qs >> 4], axis=3).reshape(rows, -1, 8, 32)
    high = ((qh >> np.arange(8, dtype=np.uint8).reshape(1, 1, 8, 1)) & 1) << 4
    q = (low | high).reshape(rows, -1, 32)
    z, offset = _zero_and_offset(scale, minimum, 31)
    return BlockWeight(q, scale, z, offset, 8, 32)


def _q6_k(b, rows):
    supers = b.shape[1]
    ql = b[..., :128].reshape(rows, supers, 2, 1, 64) >> np.array([0, 4], np.uint8).reshape(1, 1, 1, 2, 1)
    ql = (ql & 0x0F).reshape(rows, supers, 2, 4, 32)  # per half: quarter j reads bytes 32*(j%2).. shifted 4*(j//2)
    qh = b[..., 128:192].reshape(rows, supers, 2, 1, 32) >> np.array([0, 2, 4, 6], np.uint8).reshape(1, 1, 1, 4, 1)
    q = ql | ((qh & 3) << 4)  # [rows, supers, 2 halves, 4 quarters, 32]
    sc = b[..., 192:208].view(np.int8).astype(np.float32)
    d = _f16(b, 208)[..., None]
    return BlockWeight(q.reshape(rows, -1, 16), (d * sc).reshape(rows, -1), np.full((rows, supers * 16), 32, np.uint8), None, 8, 16)


_DECODERS = {T.Q8_0: _q8_0, T.Q4_0: _q4_0, T.Q4_1: _q4_1, T.Q5_0: _q5_0, T.Q5_1: _q5_1, T.Q4_K: _q4_k, T.Q5_K: _q5_k, T.Q6_K: _q6_k}


# -- MatMulNBits / GatherBlockQuantized packing ------------------------------------------


def pack_data(w: BlockWeight) -> np.ndarray:
    """[N, blocks, block * bits / 8] uint8; 4-bit: even element in the low nibble."""
    if w.bits == 4:
        return np.ascontiguousarray(w.q[..., 0::2] | (w.q[..., 1::2] << 4))
    return np.ascontiguousarray(w.q)


def pack_zero_points(w: BlockWeight) -> np.ndarray | None:
    if w.zero is None:
        return None
    if w.bits != 4:
        return np.ascontiguousarray(w.zero).reshape(-1)
    n, blocks = w.zero.shape
    zero = w.zero if blocks % 2 == 0 else np.concatenate([w.zero, np.zeros((n, 1), np.uint8)], axis=1)
    return np.ascontiguousarray(zero[:, 0::2] | (zero[:, 1::2] << 4)).reshape(-1)
