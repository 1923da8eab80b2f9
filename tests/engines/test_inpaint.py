"""Inpainting on the tiny exported SD pack: masked img2img equals diffusers' inpainting pipeline
inside the mask and keeps the original pixels outside it; masks of another size; bad masks."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

from desktop.engines.errors import RequestError  # noqa: E402
from desktop.engines.events import ImageResult, Step  # noqa: E402
from desktop.engines.image.engine import ImageEngine, ImageRequest  # noqa: E402
from desktop.engines.image.pipelines.sd import initial_noise  # noqa: E402
from desktop.engines.packs.pack import load_pack  # noqa: E402
from desktop.engines.providers import RuntimeSettings  # noqa: E402
from tests.tiny_sd import tiny_sd_pack, tiny_sd_source  # noqa: E402

INIT = np.random.default_rng(5).uniform(0, 255, (32, 32, 3)).astype(np.uint8)
MASK = np.zeros((32, 32), np.uint8)
MASK[8:24, 4:20] = 255  # a repainted rectangle that is not aligned to the 8-pixel latent grid's middle


@pytest.fixture(scope="module")
def engine(cache_dir):
    e = ImageEngine(load_pack(tiny_sd_pack(cache_dir)), RuntimeSettings(provider="cpu"))
    yield e
    e.close()


def test_masked_img2img_matches_diffusers_inside_and_keeps_pixels_outside(engine, cache_dir, monkeypatch):
    kw = dict(prompt="smiling cat", width=32, height=32, steps=8, guidance=5.0, scheduler="euler", seed=7, init_image=INIT, strength=0.75)
    events = list(engine.generate(ImageRequest(mask=MASK, **kw)))
    image = next(e.image for e in events if isinstance(e, ImageResult))
    assert sum(isinstance(e, Step) for e in events) == 6
    plain = next(e.image for e in engine.generate(ImageRequest(**kw)) if isinstance(e, ImageResult))

    rng = np.random.default_rng(7)  # our order: starting noise, then the VAE's posterior sample
    shape = engine.pipeline.latent_shape(32, 32)
    noise, posterior = initial_noise(rng, shape), rng.standard_normal(shape, dtype=np.float32)
    # diffusers draws: the image's posterior, the noise, then the masked image's posterior (unused by a 4-channel UNet)
    draws = [torch.from_numpy(posterior), torch.from_numpy(noise), torch.zeros(shape)]
    monkeypatch.setattr("diffusers.models.autoencoders.vae.randn_tensor", lambda *a, **k: draws.pop(0))
    monkeypatch.setattr("diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_inpaint.randn_tensor", lambda *a, **k: draws.pop(0))
    base = diffusers.StableDiffusionPipeline.from_pretrained(str(tiny_sd_source(cache_dir)), local_files_only=True)
    pipe = diffusers.StableDiffusionInpaintPipeline(**base.components)
    pipe.scheduler = diffusers.EulerDiscreteScheduler.from_config(base.scheduler.config)
    with torch.inference_mode():
        ref = pipe(prompt="smiling cat", image=Image.fromarray(INIT), mask_image=Image.fromarray(MASK), height=32, width=32,
                   strength=0.75, num_inference_steps=8, guidance_scale=5.0, output_type="np").images[0]
    ref = np.round(ref * 255).astype(np.uint8)
    assert not draws
    inside = MASK >= 128
    diff = np.abs(image.astype(int) - ref.astype(int))[inside]
    assert diff.max() <= 2, diff.max()
    assert np.array_equal(image[~inside], INIT[~inside])
    assert np.abs(image[inside].astype(int) - INIT[inside].astype(int)).mean() > 5  # it did repaint
    assert not np.array_equal(image[inside], plain[inside])  # and the mask changed the repaint itself


def test_a_mask_of_another_size_is_fitted_to_the_picture(engine):
    small = np.asarray(Image.fromarray(MASK).resize((16, 16), Image.Resampling.NEAREST))
    req = engine.prepare(ImageRequest(prompt="x", width=32, height=32, steps=2, init_image=INIT, mask=small))
    assert req.mask.shape == (32, 32)
    assert np.array_equal(req.mask >= 0.5, MASK >= 128)


@pytest.mark.parametrize(
    "mask, init, message",
    [
        (MASK, None, "needs a starting image"),
        (np.zeros((4, 4, 3), np.uint8), INIT, "grey picture"),
        (np.full((32, 32), np.nan, np.float32), INIT, "not numbers"),
    ],
)
def test_bad_masks_are_refused_before_any_work(engine, mask, init, message):
    with pytest.raises(RequestError, match=message):
        engine.prepare(ImageRequest(prompt="x", width=32, height=32, steps=2, init_image=init, mask=mask))


def test_cli_inpaints_and_says_when_it_resized_the_mask(cache_dir, tmp_path, capsys):
    from desktop.cli import main
    from desktop.engines.packs.importers import import_path
    from desktop.engines.packs.library import Library

    name = import_path(tiny_sd_pack(cache_dir), Library(), name="tiny-sd-inpaint").name
    Image.fromarray(INIT).save(tmp_path / "init.png")
    Image.fromarray(MASK).resize((64, 64), Image.Resampling.NEAREST).save(tmp_path / "mask.png")
    out = tmp_path / "out.png"
    assert main(["image", "--model", name, "--prompt", "smiling cat", "--init", str(tmp_path / "init.png"), "--mask", str(tmp_path / "mask.png"),
                 "--steps", "4", "--size", "32x32", "--seed", "1", "--out", str(out)]) == 0
    assert "the mask is 64x64 and the starting image 32x32; the mask was resized to 32x32" in capsys.readouterr().err
    result = np.asarray(Image.open(out).convert("RGB"))
    keep = MASK < 128
    assert np.array_equal(result[keep], INIT[keep])
    assert main(["image", "--model", name, "--prompt", "x", "--mask", str(tmp_path / "mask.png"), "--out", str(tmp_path / "o2.png")]) == 2
    assert "--mask needs --init" in capsys.readouterr().err


@pytest.fixture(scope="module")
def inpainting(tmp_path_factory):
    from tests.tiny_checkpoint import tiny_inpainting_pack

    pack, folder = tiny_inpainting_pack(tmp_path_factory.mktemp("inpainting"))
    e = ImageEngine(load_pack(pack), RuntimeSettings(provider="cpu"))
    yield e, folder
    e.close()


def test_nine_channel_unet_gets_latents_mask_and_masked_picture_like_diffusers(inpainting, monkeypatch):
    engine, folder = inpainting
    assert engine.pipeline.inpainting_unet
    kw = dict(prompt="smiling cat", width=32, height=32, steps=5, guidance=5.0, scheduler="euler", seed=11, init_image=INIT, strength=1.0)
    image = next(e.image for e in engine.generate(ImageRequest(mask=MASK, **kw)) if isinstance(e, ImageResult))

    rng = np.random.default_rng(11)  # at full strength: the starting noise, then the masked picture's posterior
    shape = engine.pipeline.latent_shape(32, 32)
    draws = [torch.from_numpy(initial_noise(rng, shape)), torch.from_numpy(rng.standard_normal(shape, dtype=np.float32))]
    monkeypatch.setattr("diffusers.models.autoencoders.vae.randn_tensor", lambda *a, **k: draws.pop(0))
    monkeypatch.setattr("diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_inpaint.randn_tensor", lambda *a, **k: draws.pop(0))
    base = diffusers.StableDiffusionPipeline.from_pretrained(str(folder), local_files_only=True)
    pipe = diffusers.StableDiffusionInpaintPipeline(**base.components)
    with torch.inference_mode():
        ref = pipe(prompt="smiling cat", image=Image.fromarray(INIT), mask_image=Image.fromarray(MASK), height=32, width=32,
                   strength=1.0, num_inference_steps=5, guidance_scale=5.0, output_type="np").images[0]
    ref = np.round(ref * 255).astype(np.uint8)
    assert not draws
    inside = MASK >= 128
    assert np.abs(image.astype(int) - ref.astype(int))[inside].max() <= 2
    assert np.array_equal(image[~inside], INIT[~inside])


def test_an_inpainting_model_without_a_mask_is_refused_in_words(inpainting):
    engine, _ = inpainting
    with pytest.raises(RequestError, match="inpainting model"):
        engine.prepare(ImageRequest(prompt="x", width=32, height=32, steps=2))
