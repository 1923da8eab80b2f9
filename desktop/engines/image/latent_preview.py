"""Cheap per-step previews: a linear map from latent channels to RGB.

Decoding latents with the VAE every step would cost as much as a UNet call, so previews
use ``rgb = latent @ matrix + bias`` at latent resolution. The map is fitted once per
pack (by the exporter or importer, stored in the manifest) by least squares: either
latents of colourful synthetic images against those images (when the pack has a VAE
encoder) or random latents against their decodes.
"""

from __future__ import annotations

from typing import Callable

import numpy as np


def synthetic_images(count: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth random colour fields in [-1, 1], NCHW: varied colours, no real data needed."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    out = np.empty((count, 3, size, size), dtype=np.float32)
    for n in range(count):
        for c in range(3):
            a, b, f1, f2, p = rng.uniform(-1, 1, 5)
            out[n, c] = np.clip(0.6 * a + 0.5 * b * np.sin(6.28 * (f1 * xx + f2 * yy) + 3 * p), -1, 1)
    return out


def pool(images: np.ndarray, factor: int) -> np.ndarray:
    """Average-pool NCHW images by ``factor`` to the latent grid."""
    n, c, h, w = images.shape
    return images[:, :, : h - h % factor, : w - w % factor].reshape(n, c, h // factor, factor, w // factor, factor).mean(axis=(3, 5))


def fit_from_encoder(encode: Callable[[np.ndarray], np.ndarray], factor: int, size: int = 64, count: int = 6, seed: int = 0) -> dict:
    """``encode``: NCHW images in [-1, 1] -> scaled latents (the UNet's space)."""
    images = synthetic_images(count, size, np.random.default_rng(seed))
    latents = encode(images)
    return _fit(latents, pool(images, factor))


def fit_from_decoder(decode: Callable[[np.ndarray], np.ndarray], channels: int, factor: int, latent_size: int = 16, count: int = 4, seed: int = 0) -> dict:
    """``decode``: scaled latents -> NCHW images in [-1, 1]."""
    latents = np.random.default_rng(seed).standard_normal((count, channels, latent_size, latent_size)).astype(np.float32)
    return _fit(latents, pool(decode(latents), factor))


def _fit(latents: np.ndarray, targets: np.ndarray) -> dict:
    c = latents.shape[1]
    x = latents.transpose(0, 2, 3, 1).reshape(-1, c).astype(np.float64)
    y = targets.transpose(0, 2, 3, 1).reshape(-1, 3).astype(np.float64)
    x1 = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    coef, *_ = np.linalg.lstsq(x1, y, rcond=None)
    return {"matrix": coef[:c].round(6).tolist(), "bias": coef[c].round(6).tolist()}


def preview(latent: np.ndarray, fit: dict | None) -> np.ndarray | None:
    """One CHW latent -> HxWx3 uint8 at latent resolution (None without a fit)."""
    if not fit:
        return None
    matrix = np.asarray(fit["matrix"], dtype=np.float32)
    if matrix.shape[0] != latent.shape[0]:
        return None
    rgb = np.tensordot(latent.astype(np.float32), matrix, axes=([0], [0])) + np.asarray(fit["bias"], dtype=np.float32)
    return ((np.clip(rgb, -1, 1) + 1) * 127.5).astype(np.uint8)
