"""A tiny SDXL inpainting pipeline (9-channel UNet) exported through the one pipeline: its
end-to-end check repaints a rectangle against diffusers' StableDiffusionXLInpaintPipeline, and
our engine repaints another picture's mask as diffusers does, keeping the rest untouched."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

from desktop.engines.errors import RequestError  # noqa: E402
from desktop.engines.events import ImageResult  # noqa: E402
from desktop.engines.image.engine import ImageEngine, ImageRequest  # noqa: E402
from desktop.engines.image.pipelines.sd import initial_noise  # noqa: E402
from desktop.engines.packs.pack import load_pack  # noqa: E402
from desktop.engines.providers import RuntimeSettings  # noqa: E402
from tests.tiny_sdxl import tiny_sdxl_pack, tiny_sdxl_source  # noqa: E402


@pytest.fixture(scope="module")
def pack(cache_dir):
    return tiny_sdxl_pack(cache_dir, inpainting=True)


def test_export_is_checked_by_repainting_against_diffusers(pack):
    m = json.loads((pack / "manifest.json").read_text())
    assert m["architecture"] == "stable-diffusion-xl"
    assert m["config"]["inpainting"] is True and m["config"]["family"] == "sdxl-inpainting"
    e2e = m["validation"]["reports"]["fp32"]["end_to_end"]
    assert e2e["task"].startswith("inpainting") and e2e["original_kept_outside_mask"] is True
    assert e2e["pixel_max_abs"] <= 2


def test_engine_repaints_the_mask_as_diffusers_does(pack, cache_dir, monkeypatch):
    from PIL import Image

    w, h = 40, 24
    picture = np.random.default_rng(4).uniform(0, 255, (h, w, 3)).astype(np.uint8)
    mask = np.zeros((h, w), np.uint8)
    mask[4:20, 8:24] = 255
    engine = ImageEngine(load_pack(pack), RuntimeSettings(provider="cpu"))
    try:
        with pytest.raises(RequestError, match="inpainting model"):
            list(engine.generate(ImageRequest(prompt="a red apple", width=w, height=h, steps=2)))
        request = ImageRequest(prompt="a red apple", negative_prompt="blurry", width=w, height=h, steps=5, guidance=5.0, scheduler="euler",
                               seed=6, init_image=picture, mask=mask, strength=1.0)
        ours = next(e.image for e in engine.generate(request) if isinstance(e, ImageResult))
        shape = engine.pipeline.latent_shape(w, h)
    finally:
        engine.close()
    rng = np.random.default_rng(6)  # our order: the starting noise, then the masked picture's posterior
    noise, posterior = initial_noise(rng, shape), rng.standard_normal(shape, dtype=np.float32)
    monkeypatch.setattr("diffusers.models.autoencoders.vae.randn_tensor", lambda *a, **k: torch.from_numpy(posterior))
    pipe = diffusers.StableDiffusionXLInpaintPipeline.from_pretrained(str(tiny_sdxl_source(cache_dir, inpainting=True)), local_files_only=True)
    with torch.inference_mode():
        ref = pipe("a red apple", negative_prompt="blurry", image=Image.fromarray(picture), mask_image=Image.fromarray(mask), height=h, width=w,
                   strength=1.0, num_inference_steps=5, guidance_scale=5.0, latents=torch.from_numpy(noise), output_type="np").images[0]
    inside = mask >= 128
    diff = np.abs(ours.astype(int) - np.round(ref * 255).astype(int))[inside]
    assert ours[inside].std() > 1 and diff.max() <= 2, diff.max()
    assert np.array_equal(ours[~inside], picture[~inside])  # the rest of the picture is kept exactly
