"""End-to-end check of a 9-channel inpainting pack (SD 1.x/2.x or SDXL) against diffusers'
inpainting pipeline of the same family.

An inpainting UNet cannot draw from text alone (the engine refuses it without a mask), so its
pack is judged the way it is used: repaint a rectangle of a starting picture. Both sides get the
same starting noise and the same draw for the masked picture's VAE posterior (our engine's
order: the noise, then the posterior); pixels are compared inside the mask only, because our
engine pastes the original pixels back outside it and diffusers does not.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import numpy as np

from .validate import E2E_MAX_SIDE, E2E_STEPS, NEGATIVE, PROMPT, diffusers_scheduler, e2e_engine, generate_ours, pixel_diff


def picture_and_mask(w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """A smooth colour field (a VAE sees something like a picture) and a centred rectangle to repaint."""
    from desktop.engines.image.latent_preview import synthetic_images

    side = max(w, h)
    field = synthetic_images(1, side, np.random.default_rng(1))[0, :, :h, :w]
    picture = np.round((field.transpose(1, 2, 0) + 1) * 127.5).astype(np.uint8)
    mask = np.zeros((h, w), np.uint8)
    mask[h // 4 : h - h // 4, w // 4 : w - w // 4] = 255
    return picture, mask


def validate_inpainting_end_to_end(
    pipe,
    pack_dir: Path,
    scheduler: str = "euler",
    *,
    inpaint_class: str = "StableDiffusionInpaintPipeline",
    dropped: tuple[str, ...] = ("image_encoder",),
) -> dict[str, Any]:
    """Euler only: it adds no noise of its own, so the two sides see the same draws.

    ``inpaint_class`` names the family's diffusers inpainting pipeline (passed as data so the
    callers need not import diffusers); a source loaded as another pipeline (a single-file
    checkpoint's text-to-image one, say) is rebuilt as it from its components less ``dropped``.
    Those serve only IP-Adapter, which this check does not use; SD's inpainting pipeline needs
    its feature_extractor (the safety checker's), so only SDXL drops that one.
    """
    import diffusers
    import torch
    from PIL import Image

    from desktop.engines.image.engine import ImageRequest

    with e2e_engine(pack_dir) as engine:
        w, h = (min(s, E2E_MAX_SIDE) for s in engine.capabilities.default_size)
        picture, mask = picture_and_mask(w, h)
        request = ImageRequest(prompt=PROMPT, negative_prompt=NEGATIVE, width=w, height=h, steps=E2E_STEPS, guidance=7.5,
                               scheduler=scheduler, seed=0, init_image=picture, mask=mask, strength=1.0)
        ours, ours_s, rng, noise = generate_ours(engine, request)
        posterior = torch.from_numpy(rng.standard_normal(noise.shape, dtype=np.float32))
    cls = getattr(diffusers, inpaint_class)
    components = {k: v for k, v in pipe.components.items() if k not in dropped}
    inpaint = pipe if isinstance(pipe, cls) else cls(**components)
    with diffusers_scheduler(inpaint, scheduler):
        t0 = time.perf_counter()
        with torch.inference_mode(), _vae_posterior(posterior):
            ref = inpaint(PROMPT, negative_prompt=NEGATIVE, image=Image.fromarray(picture), mask_image=Image.fromarray(mask), height=h, width=w,
                          strength=1.0, num_inference_steps=E2E_STEPS, guidance_scale=7.5, latents=torch.from_numpy(noise), output_type="np").images[0]
        ref_s = time.perf_counter() - t0
    inside = mask >= 128
    d = pixel_diff(ours, ref)[inside]
    outside_kept = bool(np.array_equal(ours[~inside], picture[~inside]))
    return {
        "prompt": PROMPT,
        "task": "inpainting (a centred rectangle, strength 1.0; compared inside the mask)",
        "size": f"{w}x{h}",
        "steps": E2E_STEPS,
        "scheduler": scheduler,
        "pixel_max_abs": float(d.max()),
        "pixel_mean_abs": float(d.mean()),
        "original_kept_outside_mask": outside_kept,
        "seconds_onnx": round(ours_s, 3),
        "seconds_pytorch": round(ref_s, 3),
    }


@contextlib.contextmanager
def _vae_posterior(draw):
    """diffusers samples the masked picture's latents with the VAE module's randn_tensor: hand it our draw."""
    import importlib

    module = importlib.import_module("diffusers.models.autoencoders.vae")
    original = module.randn_tensor
    module.randn_tensor = lambda *a, **k: draw
    try:
        yield
    finally:
        module.randn_tensor = original
