"""Block quantization arithmetic for onnxruntime's MatMulNBits / GatherBlockQuantized layouts.

Numpy only. A weight ``[K, N]`` (input dim first, as ONNX MatMul stores it) is cut into
blocks of ``block`` consecutive inputs per output column, giving ``[N, blocks, block]``;
the packed forms below are exactly what the contrib ops read:

* quantized data ``[N, blocks, block * bits / 8]`` uint8, 4-bit values two per byte with
  the even element in the low nibble;
* scales ``[N, blocks]`` float32;
* zero points ``[N * ceil(blocks / 2)]`` uint8 for 4 bits (two per byte), omitted for
  symmetric 8 bits (the ops then use 128).

The dequantized value of a quantized entry is ``scale * (q - zero_point)``.
"""

from __future__ import annotations

import numpy as np


def to_blocks(weight: np.ndarray, block: int) -> np.ndarray:
    """[K, N] -> [N, ceil(K / block), block], zero-padded along K."""
    k, n = weight.shape
    blocks = -(-k // block)
    padded = np.zeros((blocks * block, n), dtype=np.float32)
    padded[:k] = weight
    return np.ascontiguousarray(padded.T.reshape(n, blocks, block))


def asymmetric_4bit(blocks: np.ndarray):
    """Min/max 4-bit grid per block with the zero point rounded to an integer.

    Returns ``(q, scale, zero_point, offset)`` with, for every element,
    ``weight == scale * (q - zero_point) + offset`` up to the rounding of ``q`` alone:
    ``offset`` (one per block) is what rounding the zero point to an integer costs. For
    weights that already sit on a GGUF Q4_1 grid (``d * q + m``) the min/max grid is that
    grid, so ``q`` is exact and the only error is ``offset``.
    """
    lo, hi = blocks.min(-1), blocks.max(-1)
    scale = (hi - lo) / 15.0
    scale[scale == 0] = 1.0
    q = np.clip(np.rint((blocks - lo[..., None]) / scale[..., None]), 0, 15)
    zero = np.clip(np.rint(-lo / scale), 0, 15)
    offset = lo + scale * zero
    return q.astype(np.uint8), scale.astype(np.float32), zero.astype(np.uint8), offset.astype(np.float32)


def symmetric(blocks: np.ndarray, bits: int):
    """Symmetric grid (zero point 2^(bits-1)); for 8 bits this is GGUF's Q8_0 exactly."""
    half = 2 ** (bits - 1) - 1
    scale = np.abs(blocks).max(-1) / half
    scale[scale == 0] = 1.0
    q = np.clip(np.rint(blocks / scale[..., None]) + half + 1, 0, 2**bits - 1)
    return q.astype(np.uint8), scale.astype(np.float32)


def dequantize(q: np.ndarray, scale: np.ndarray, zero) -> np.ndarray:
    return (q.astype(np.float32) - np.asarray(zero, dtype=np.float32)[..., None]) * scale[..., None]


def pack_data(q: np.ndarray, bits: int) -> np.ndarray:
    """[N, blocks, block] uint8 -> [N, blocks, block * bits / 8]."""
    if bits == 4:
        return np.ascontiguousarray(q[..., 0::2] | (q[..., 1::2] << 4))
    return np.ascontiguousarray(q)


def pack_zero_points(zero: np.ndarray, bits: int) -> np.ndarray:
    """[N, blocks] uint8 -> flat, two 4-bit zero points per byte per column."""
    if bits != 4:
        return zero.reshape(-1)
    n, blocks = zero.shape
    if blocks % 2:
        zero = np.concatenate([zero, np.zeros((n, 1), np.uint8)], axis=1)
    return np.ascontiguousarray(zero[:, 0::2] | (zero[:, 1::2] << 4)).reshape(-1)
