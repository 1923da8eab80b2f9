"""Inpainting with an ordinary Stable Diffusion UNet: masked img2img.

The mask (H x W, 1 = repaint) is binarised at 0.5, as diffusers does. At each step the latents
outside the mask are replaced by the original image's latents noised to the level the next step
expects, so the model only ever invents the masked part while seeing the whole picture; at the
end the original pixels outside the mask are pasted back, since the VAE round trip alone shifts
colours and fine detail a little everywhere.
"""

from __future__ import annotations

import math

import numpy as np

from desktop.engines.errors import RequestError


def validate_mask(mask, init_image) -> None:
    if init_image is None:
        raise RequestError("A mask needs a starting image to repaint.")
    if not isinstance(mask, np.ndarray) or mask.ndim != 2 or min(mask.shape) < 1 or mask.dtype.kind not in "biuf":
        raise RequestError("The mask must be a grey picture (white = repaint).")
    if mask.dtype.kind == "f" and not np.isfinite(mask).all():
        raise RequestError("The mask holds values that are not numbers.")


def binary(mask: np.ndarray) -> np.ndarray:
    """1.0 where the picture is repainted; 8-bit masks count 128 and up as white."""
    m = mask.astype(np.float32)
    if mask.dtype == np.uint8:
        m /= 255.0
    return (m >= 0.5).astype(np.float32)


def resize_mask(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    """Nearest-neighbour resize, so a repainted area stays a hard edge."""
    from PIL import Image

    img = Image.fromarray((binary(mask) * 255).astype(np.uint8))
    return (np.asarray(img.resize((width, height), Image.Resampling.NEAREST)) >= 128).astype(np.float32)


def fit_mask(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale and centre-crop like ``fit_image`` does the starting image, so the two stay aligned."""
    h, w = mask.shape
    scale = max(width / w, height / h)
    size = (max(width, round(w * scale)), max(height, round(h * scale)))
    big = resize_mask(mask, *size)
    left, top = (size[0] - width) // 2, (size[1] - height) // 2
    return big[top : top + height, left : left + width]


def latent_mask(mask: np.ndarray, latent_h: int, latent_w: int) -> np.ndarray:
    """The mask at latent size, by the nearest pixel (diffusers' interpolate default)."""
    m = binary(mask)
    rows = (np.arange(latent_h) * m.shape[0]) // latent_h
    cols = (np.arange(latent_w) * m.shape[1]) // latent_w
    return m[rows][:, cols][None, None]


def noised_to(sched, original: np.ndarray, noise: np.ndarray, i: int) -> np.ndarray:
    """``original`` noised to the level of planned step ``i``."""
    sigmas = getattr(sched, "sigmas", None)
    if sigmas is not None:
        return (original + noise * np.float32(sigmas[i])).astype(np.float32)
    a = float(sched.alphas_cumprod[int(sched.timesteps[i])])
    return (math.sqrt(a) * original + math.sqrt(1 - a) * noise).astype(np.float32)


class MaskedLatents:
    """Keeps the original image's latents outside the mask at every step."""

    def __init__(self, mask: np.ndarray, init_latents: np.ndarray, noise: np.ndarray):
        self.mask = latent_mask(mask, *init_latents.shape[2:])
        self.init_latents, self.noise = init_latents, noise

    def blend(self, latents: np.ndarray, sched, i: int) -> np.ndarray:
        last = i + 1 >= len(sched.timesteps)
        kept = self.init_latents if last else noised_to(sched, self.init_latents, self.noise, i + 1)
        return ((1 - self.mask) * kept + self.mask * latents).astype(np.float32)


def masked_pixels(init_image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The starting picture in [-1, 1] (NCHW) with the repainted part set to 0 (mid grey), as
    9-channel inpainting UNets were trained to see it."""
    pixels = init_image.astype(np.float32) / 127.5 - 1.0
    return (pixels * (1 - binary(mask))[..., None]).transpose(2, 0, 1)[None].astype(np.float32)


def paste_back(image: np.ndarray, init_image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    m = binary(mask)[..., None]
    return np.round(m * image + (1 - m) * init_image).astype(np.uint8)
