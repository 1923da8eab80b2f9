"""Tiny random SD pipeline (diffusers config classes) -> our exporter -> our engine, compared
with diffusers on the same latents and scheduler; LoRA merge; quantized packs."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

from desktop.engines.errors import ExportError, UnsupportedArchitectureError  # noqa: E402
from desktop.engines.events import ImageResult, Step  # noqa: E402
from desktop.engines.image.engine import ImageEngine, ImageRequest  # noqa: E402
from desktop.engines.image.pipelines.sd import initial_noise  # noqa: E402
from desktop.engines.packs.pack import load_pack  # noqa: E402
from desktop.engines.providers import RuntimeSettings  # noqa: E402
from desktop.engines.image.schedulers import DIFFUSERS_NAMES  # noqa: E402
from tests.tiny_sd import tiny_lcm_source, tiny_lora, tiny_sd_pack, tiny_sd_source  # noqa: E402

CLASS_OF = {v: k for k, v in DIFFUSERS_NAMES.items()}


@pytest.fixture(scope="module")
def source(cache_dir):
    return tiny_sd_source(cache_dir)


@pytest.fixture(scope="module")
def pack(cache_dir):
    return tiny_sd_pack(cache_dir)


@pytest.fixture(scope="module")
def pipe(source):
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline.from_pretrained(str(source), local_files_only=True)


def ours(pack_dir, **kw):
    engine = ImageEngine(load_pack(pack_dir), RuntimeSettings(provider="cpu"))
    try:
        events = list(engine.generate(ImageRequest(**kw)))
    finally:
        engine.close()
    return events, engine


def diffusers_image(pipe, scheduler: str, noise: np.ndarray, **kw) -> np.ndarray:
    original = pipe.scheduler
    pipe.scheduler = getattr(diffusers, CLASS_OF[scheduler]).from_config(original.config)
    try:
        with torch.inference_mode():
            out = pipe(latents=torch.from_numpy(noise), output_type="np", **kw).images[0]
    finally:
        pipe.scheduler = original
    return np.round(out * 255).astype(np.uint8)


@pytest.mark.parametrize("scheduler", ["euler", "ddim", "dpmpp_2m"])
def test_engine_matches_diffusers_for_same_latents_and_scheduler(pack, pipe, scheduler):
    w, h = 40, 24  # not the default size, and not a multiple of the UNet's down-sampling
    events, engine = ours(pack, prompt="a red apple", negative_prompt="blurry", width=w, height=h, steps=6, guidance=7.5, scheduler=scheduler, seed=42)
    image = next(e.image for e in events if isinstance(e, ImageResult))
    noise = initial_noise(np.random.default_rng(42), engine.pipeline.latent_shape(w, h))
    ref = diffusers_image(pipe, scheduler, noise, prompt="a red apple", negative_prompt="blurry", height=h, width=w, num_inference_steps=6, guidance_scale=7.5)
    assert image.shape == ref.shape == (h, w, 3)
    assert image.std() > 1  # not a constant picture
    diff = np.abs(image.astype(int) - ref.astype(int))
    assert diff.max() <= 2 and diff.mean() < 0.05


def test_img2img_matches_diffusers(pack, pipe, monkeypatch):
    from diffusers import StableDiffusionImg2ImgPipeline
    from PIL import Image

    init = (np.random.default_rng(9).uniform(0, 255, (32, 32, 3))).astype(np.uint8)
    events, engine = ours(pack, prompt="smiling cat", width=32, height=32, steps=10, guidance=5.0, scheduler="euler", seed=7, init_image=init, strength=0.6)
    image = next(e.image for e in events if isinstance(e, ImageResult))
    assert sum(isinstance(e, Step) for e in events) == 6  # strength 0.6 of 10 steps
    # our RNG order: starting noise first, then the VAE's posterior sample
    rng = np.random.default_rng(7)
    shape = engine.pipeline.latent_shape(32, 32)
    noise, posterior = initial_noise(rng, shape), rng.standard_normal(shape, dtype=np.float32)
    draws = [torch.from_numpy(posterior), torch.from_numpy(noise)]
    monkeypatch.setattr("diffusers.models.autoencoders.vae.randn_tensor", lambda *a, **k: draws.pop(0))
    monkeypatch.setattr("diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_img2img.randn_tensor", lambda *a, **k: draws.pop(0))
    i2i = StableDiffusionImg2ImgPipeline(**pipe.components)
    i2i.scheduler = diffusers.EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    with torch.inference_mode():
        ref = i2i(prompt="smiling cat", image=Image.fromarray(init), strength=0.6, num_inference_steps=10, guidance_scale=5.0, output_type="np").images[0]
    ref = np.round(ref * 255).astype(np.uint8)
    assert not draws
    diff = np.abs(image.astype(int) - ref.astype(int))
    assert diff.max() <= 2 and diff.mean() < 0.05


def test_manifest_carries_per_component_validation(pack):
    m = json.loads((pack / "manifest.json").read_text())
    report = m["validation"]["reports"]["fp32"]
    for role in ("text_encoder", "unet", "vae_decoder", "vae_encoder"):
        assert report["components"][role]["max_abs"] < 1e-4
    assert report["end_to_end"]["pixel_mean_abs"] <= 1.0
    assert m["validation"]["passed_floor"] is True
    roles = {f["role"] for f in m["files"]}
    assert {"text_encoder", "unet", "vae_decoder", "vae_encoder", "tokenizer", "scheduler"} <= roles
    assert m["architecture"] == "stable-diffusion" and m["modality"] == "image"
    assert len(m["config"]["latent_rgb"]["matrix"]) == 4


def test_lora_is_merged_before_export(cache_dir, pack, source):
    from diffusers import StableDiffusionPipeline

    lora_pack = tiny_sd_pack(cache_dir, lora=True)
    m = json.loads((lora_pack / "manifest.json").read_text())
    assert any(k.startswith("lora:") for k in m["source"]["sha256"])
    kw = dict(prompt="a red apple", width=32, height=32, steps=4, guidance=7.5, scheduler="euler", seed=1)
    with_lora, engine = ours(lora_pack, **kw)
    without, _ = ours(pack, **kw)
    a = next(e.image for e in with_lora if isinstance(e, ImageResult))
    b = next(e.image for e in without if isinstance(e, ImageResult))
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 1  # the LoRA changes the picture
    # ...into what diffusers makes with the same LoRA loaded (not fused) on a fresh pipeline
    fresh = StableDiffusionPipeline.from_pretrained(str(source), local_files_only=True)
    fresh.load_lora_weights(str(tiny_lora(cache_dir)))
    noise = initial_noise(np.random.default_rng(1), engine.pipeline.latent_shape(32, 32))
    ref = diffusers_image(fresh, "euler", noise, prompt="a red apple", height=32, width=32, num_inference_steps=4, guidance_scale=7.5)
    assert np.abs(a.astype(int) - ref.astype(int)).max() <= 2


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_quantized_packs_run_and_stay_close(cache_dir, precision):
    q = tiny_sd_pack(cache_dir, precision)
    m = json.loads((q / "manifest.json").read_text())
    assert m["precision"] == precision and m["validation"]["passed_floor"]
    assert m["validation"]["reports"][precision]["end_to_end"]["pixel_mean_abs"] <= {"fp16": 4.0, "int8": 12.0}[precision]
    events, _ = ours(q, prompt="a red apple", steps=3, seed=0)
    assert next(e.image for e in events if isinstance(e, ImageResult)).std() > 1


@pytest.mark.slow
def test_lcm_distilled_pipeline_exports_and_matches_diffusers(cache_dir, tmp_path):
    import exporters

    out = exporters.export("image", tiny_lcm_source(cache_dir), tmp_path / "lcm", "fp32", name="tiny-lcm")
    m = json.loads((out / "manifest.json").read_text())
    e2e = m["validation"]["reports"]["fp32"]["end_to_end"]
    # LCM re-noises every step: validation hands diffusers the engine's own draws
    assert e2e["scheduler"] == "lcm" and e2e["pixel_max_abs"] <= 2
    assert "timestep_cond" in m["io"]["unet"]["inputs"]
    engine = ImageEngine(load_pack(out), RuntimeSettings(provider="cpu"))
    caps = engine.capabilities
    assert caps.schedulers[0] == "lcm" and caps.default_steps == 4 and not caps.negative_prompt
    events = list(engine.generate(ImageRequest(prompt="a red apple", seed=2)))
    assert sum(isinstance(e, Step) for e in events) == 4 and next(e for e in events if isinstance(e, ImageResult)).image.std() > 1
    engine.close()


def test_exporter_refuses_unknown_sources_clearly(tmp_path, source):
    from exporters import export

    out = tmp_path / "never"
    with pytest.raises(ExportError, match="diffusers pipeline folder"):
        export("image", tmp_path, out)
    sd3 = tmp_path / "sd3"
    sd3.mkdir()
    (sd3 / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusion3Pipeline"}))
    with pytest.raises(UnsupportedArchitectureError, match="stable-diffusion-xl"):
        export("image", sd3, out)
    xl = tmp_path / "xl"  # SDXL is supported: an incomplete folder is told what it lacks
    xl.mkdir()
    (xl / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionXLPipeline"}))
    with pytest.raises(ExportError, match="lacks the component folder.*text_encoder_2"):
        export("image", xl, out)
    with pytest.raises(ExportError, match=r"\.safetensors"):
        export("image", source, out, lora=tmp_path / "x.bin")
    assert not out.exists()
