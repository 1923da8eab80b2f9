"""End-to-end check of an SDXL inpainting pack (9-channel UNet) against diffusers'
StableDiffusionXLInpaintPipeline.

Such a UNet cannot draw from text alone (the engine asks for a picture and a mask), so the pack
is judged as it is used: repaint a centred rectangle of a smooth picture at strength 1. Both
sides get the same starting noise and the same draw for the masked picture's VAE posterior (our
engine's order: the noise, then the posterior). Pixels are compared inside the mask only: our
engine pastes the original back outside it, diffusers does not.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import numpy as np

from .validate import E2E_MAX_SIDE, E2E_STEPS, NEGATIVE, PROMPT


def picture_and_mask(w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    from desktop.engines.image.latent_preview import synthetic_images

    field = synthetic_images(1, max(w, h), np.random.default_rng(1))[0, :, :h, :w]
    picture = np.round((field.transpose(1, 2, 0) + 1) * 127.5).astype(np.uint8)
    mask = np.zeros((h, w), np.uint8)
    mask[h // 4 : h - h // 4, w // 4 : w - w // 4] = 255
    return picture, mask


def validate_sdxl_inpainting(pipe, pack_dir: Path) -> dict[str, Any]:
    """Euler, which adds no noise of its own, so both sides see exactly the same draws."""
    import diffusers
    import torch
    from PIL import Image

    from desktop.engines.events import ImageResult
    from desktop.engines.image.engine import ImageEngine, ImageRequest
    from desktop.engines.image.pipelines.sd import initial_noise
    from desktop.engines.packs.pack import load_pack
    from desktop.engines.providers import RuntimeSettings

    engine = ImageEngine(load_pack(pack_dir, verify_hashes=False), RuntimeSettings(provider="cpu"))
    try:
        w, h = (min(s, E2E_MAX_SIDE) for s in engine.capabilities.default_size)
        picture, mask = picture_and_mask(w, h)
        request = ImageRequest(prompt=PROMPT, negative_prompt=NEGATIVE, width=w, height=h, steps=E2E_STEPS, guidance=7.5,
                               scheduler="euler", seed=0, init_image=picture, mask=mask, strength=1.0)
        t0 = time.perf_counter()
        ours = next(ev.image for ev in engine.generate(request) if isinstance(ev, ImageResult))
        ours_s = time.perf_counter() - t0
        rng = np.random.default_rng(0)
        shape = engine.pipeline.latent_shape(w, h)
        noise = initial_noise(rng, shape)
        posterior = torch.from_numpy(rng.standard_normal(shape, dtype=np.float32))
    finally:
        engine.close()
    components = {k: v for k, v in pipe.components.items() if k not in ("image_encoder", "feature_extractor")}
    inpaint = diffusers.StableDiffusionXLInpaintPipeline(**components)
    inpaint.scheduler = diffusers.EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    t0 = time.perf_counter()
    with torch.inference_mode(), _vae_posterior(posterior):
        ref = inpaint(PROMPT, negative_prompt=NEGATIVE, image=Image.fromarray(picture), mask_image=Image.fromarray(mask), height=h, width=w,
                      strength=1.0, num_inference_steps=E2E_STEPS, guidance_scale=7.5, latents=torch.from_numpy(noise), output_type="np").images[0]
    ref_s = time.perf_counter() - t0
    inside = mask >= 128
    d = np.abs(ours.astype(np.float64) - np.round(ref * 255))[inside]
    return {
        "prompt": PROMPT,
        "task": "inpainting (a centred rectangle, strength 1.0; compared inside the mask)",
        "size": f"{w}x{h}",
        "steps": E2E_STEPS,
        "scheduler": "euler",
        "pixel_max_abs": float(d.max()),
        "pixel_mean_abs": float(d.mean()),
        "original_kept_outside_mask": bool(np.array_equal(ours[~inside], picture[~inside])),
        "seconds_onnx": round(ours_s, 3),
        "seconds_pytorch": round(ref_s, 3),
    }


@contextlib.contextmanager
def _vae_posterior(draw):
    """diffusers samples the masked picture's latents through the VAE module's randn_tensor."""
    import importlib

    module = importlib.import_module("diffusers.models.autoencoders.vae")
    original = module.randn_tensor
    module.randn_tensor = lambda *a, **k: draw
    try:
        yield
    finally:
        module.randn_tensor = original
