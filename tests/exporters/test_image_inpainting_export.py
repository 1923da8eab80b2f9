"""Inpainting models (9-channel UNets) export through the one pipeline, from a diffusers folder
and from a single-file checkpoint; the manifest says "inpainting" and the validation repaints a
rectangle against diffusers' StableDiffusionInpaintPipeline."""

from __future__ import annotations

import json
import shutil

import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

from tests.tiny_checkpoint import tiny_inpainting_folder, write_single_file  # noqa: E402


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tiny_inpainting_folder(tmp_path_factory.mktemp("inpainting") / "pipeline")


def _check_inpainting_pack(pack):
    m = json.loads((pack / "manifest.json").read_text())
    assert m["architecture"] == "stable-diffusion" and m["config"]["inpainting"] is True
    e2e = m["validation"]["reports"]["fp32"]["end_to_end"]
    assert e2e["task"].startswith("inpainting") and e2e["original_kept_outside_mask"] is True
    assert e2e["pixel_max_abs"] <= 2, e2e  # our engine vs diffusers' inpainting pipeline, inside the mask
    return m


def test_a_diffusers_inpainting_folder_exports_and_validates_by_repainting(folder, tmp_path):
    import exporters
    from desktop.engines.events import ImageResult
    from desktop.engines.image.engine import ImageEngine, ImageRequest
    from desktop.engines.packs.pack import load_pack
    from desktop.engines.providers import RuntimeSettings
    from exporters.image.stable_diffusion.validate_inpaint import picture_and_mask

    pack = exporters.export("image", folder, tmp_path / "pack", "fp32", name="tiny-inpaint")
    m = _check_inpainting_pack(pack)
    assert m["config"]["pipeline_class"] == "StableDiffusionInpaintPipeline"
    engine = ImageEngine(load_pack(pack), RuntimeSettings(provider="cpu"))
    try:
        assert engine.pipeline.inpainting_unet  # the engine's 9-channel path
        picture, mask = picture_and_mask(32, 32)
        events = engine.generate(ImageRequest(prompt="a cat", width=32, height=32, steps=3, init_image=picture, mask=mask, strength=1.0, seed=2))
        image = next(e.image for e in events if isinstance(e, ImageResult))
        assert (image[mask < 128] == picture[mask < 128]).all() and (image[mask >= 128] != picture[mask >= 128]).any()
    finally:
        engine.close()


def test_a_single_file_inpainting_checkpoint_exports_as_its_family(folder, tmp_path, monkeypatch):
    import exporters

    ckpt = write_single_file(folder, tmp_path / "tiny-inpainting.safetensors")
    configs = tmp_path / "configs"
    # the real bundle describes an 860M-parameter UNet: give the tiny pipeline's own configs
    shutil.copytree(folder, configs / "sd15-inpainting", ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    (configs / "sd15-inpainting" / "atelier_defaults.json").write_text(json.dumps({"default_steps": 25, "default_guidance": 7.5}))
    monkeypatch.setenv("ATELIER_IMAGE_CONFIGS", str(configs))
    pack = exporters.export("image", ckpt, tmp_path / "pack", "fp32")
    m = _check_inpainting_pack(pack)
    assert m["config"]["family"] == "sd15-inpainting" and m["config"]["family_label"] == "Stable Diffusion 1.x inpainting"
    assert m["license"]["id"] == "creativeml-openrail-m" and m["source"]["kind"] == "checkpoint"
