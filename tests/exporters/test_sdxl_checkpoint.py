"""Single-file SDXL checkpoints in the original (sgm) key layout: they load through diffusers'
``from_single_file`` with our config bundle to the very weights they were written from, and an
SDXL-Turbo file imports (`models import`) as a pack that starts from Turbo's settings (one
step, no guidance, ancestral Euler over trailing timesteps) and matches diffusers."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

from desktop.engines.events import ImageResult  # noqa: E402
from desktop.engines.image.engine import ImageEngine, ImageRequest  # noqa: E402
from desktop.engines.image.pipelines.sd import initial_noise  # noqa: E402
from desktop.engines.packs.pack import load_pack  # noqa: E402
from desktop.engines.providers import RuntimeSettings  # noqa: E402
from tests.tiny_sdxl import tiny_sdxl_checkpoint  # noqa: E402


def tiny_configs(root, folder, key):
    """A configs root whose ``key`` bundle is the tiny pipeline's own (the real bundle describes
    a 2.6B-parameter UNet), with the vendored bundle's recommended settings."""
    from exporters.image.stable_diffusion.checkpoint import CONFIGS

    shutil.copytree(folder, root / key, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    shutil.copyfile(CONFIGS / key / "atelier_defaults.json", root / key / "atelier_defaults.json")
    return root


def test_sdxl_single_file_loads_the_weights_it_was_written_from(cache_dir, tmp_path):
    from exporters.image.stable_diffusion.checkpoint import load_checkpoint_source

    ckpt, folder = tiny_sdxl_checkpoint(cache_dir)
    source = load_checkpoint_source(str(ckpt), configs=tiny_configs(tmp_path, folder, "sdxl"))
    assert type(source.model).__name__ == "StableDiffusionXLPipeline"
    assert source.extras["pack_config"]["family"] == "sdxl" and source.license == {"id": "openrail++"}
    original = diffusers.StableDiffusionXLPipeline.from_pretrained(str(folder), local_files_only=True)
    for part in ("unet", "vae", "text_encoder", "text_encoder_2"):
        want, got = getattr(original, part).state_dict(), getattr(source.model, part).state_dict()
        assert got.keys() == want.keys(), part
        assert all(torch.equal(got[k], want[k]) for k in want), part


@pytest.fixture(scope="module")
def turbo(cache_dir, tmp_path_factory):
    """What `models import tiny-sdxl-turbo.safetensors` puts in the library."""
    from desktop.commands.checkpoint_import import import_checkpoint
    from desktop.engines.packs.library import Library

    ckpt, folder = tiny_sdxl_checkpoint(cache_dir, "tiny-sdxl-turbo.safetensors")
    configs = tiny_configs(tmp_path_factory.mktemp("configs"), folder, "sdxl-turbo")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ATELIER_IMAGE_CONFIGS", str(configs))
        pack = import_checkpoint(ckpt, Library(tmp_path_factory.mktemp("library")), name="tiny-turbo")
    return pack.root, folder


def test_turbo_pack_records_turbo_settings(turbo):
    m = json.loads((turbo[0] / "manifest.json").read_text())
    assert m["architecture"] == "stable-diffusion-xl" and m["source"]["kind"] == "checkpoint"
    cfg = m["config"]
    assert (cfg["family"], cfg["family_label"]) == ("sdxl-turbo", "Stable Diffusion XL Turbo")
    assert (cfg["default_steps"], cfg["default_guidance"], cfg["default_scheduler"]) == (1, 0.0, "euler_a")
    assert m["license"]["id"] == "sai-nc-community"
    assert json.loads((turbo[0] / "scheduler" / "scheduler_config.json").read_text())["timestep_spacing"] == "trailing"


@pytest.mark.parametrize("steps", [None, 4])  # None: the pack's recommended single step
def test_turbo_matches_diffusers_without_guidance(turbo, steps):
    from exporters.image.stable_diffusion.validate import _scheduler_noise

    pack, folder = turbo
    engine = ImageEngine(load_pack(pack), RuntimeSettings(provider="cpu"))
    try:
        assert engine.capabilities.default_steps == 1 and engine.capabilities.default_guidance == 0.0
        request = ImageRequest(prompt="a red apple", width=32, height=32, steps=steps, seed=11)  # guidance, scheduler: the pack's
        events = list(engine.generate(request))
        image = next(e.image for e in events if isinstance(e, ImageResult))
        shape = engine.pipeline.latent_shape(32, 32)
    finally:
        engine.close()
    assert events[-1].stats["unet_calls"] == (steps or 1)  # guidance 0: no unconditional pass
    rng = np.random.default_rng(11)
    noise = initial_noise(rng, shape)
    draws = [torch.from_numpy(rng.standard_normal(shape, dtype=np.float32)) for _ in range(steps or 1)]  # ancestral noise per step
    pipe = diffusers.StableDiffusionXLPipeline.from_pretrained(str(folder), local_files_only=True)
    assert type(pipe.scheduler).__name__ == "EulerAncestralDiscreteScheduler"
    with torch.inference_mode(), _scheduler_noise(pipe.scheduler, draws):
        ref = pipe("a red apple", height=32, width=32, num_inference_steps=steps or 1, guidance_scale=0.0,
                   latents=torch.from_numpy(noise), output_type="np").images[0]
    ref = np.round(ref * 255).astype(np.uint8)
    assert image.std() > 1
    diff = np.abs(image.astype(int) - ref.astype(int))
    assert diff.max() <= 2 and diff.mean() < 0.05, (diff.max(), diff.mean())
