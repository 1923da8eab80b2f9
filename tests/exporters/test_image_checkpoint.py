"""A single-file SD 1.x checkpoint in the original key layout -> our exporter -> our engine,
compared with diffusers on the same latents; bad checkpoints refused in one line."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

from desktop.engines.errors import ExportError, ImportFormatError  # noqa: E402
from desktop.engines.events import ImageResult  # noqa: E402
from desktop.engines.image.engine import ImageEngine, ImageRequest  # noqa: E402
from desktop.engines.image.pipelines.sd import initial_noise  # noqa: E402
from desktop.engines.packs.pack import load_pack  # noqa: E402
from desktop.engines.providers import RuntimeSettings  # noqa: E402
from tests.tiny_checkpoint import tiny_sd1_checkpoint  # noqa: E402


def tiny_configs(root, folder):
    """A configs root whose 'sd15' bundle is the tiny pipeline's own (the real bundle describes
    an 860M-parameter UNet), with the recommended settings a real bundle carries."""
    shutil.copytree(folder, root / "sd15", ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    (root / "sd15" / "atelier_defaults.json").write_text(json.dumps({"default_steps": 25, "default_guidance": 7.5}))
    return root


@pytest.fixture(scope="module")
def checkpoint(cache_dir):
    return tiny_sd1_checkpoint(cache_dir)


@pytest.fixture(scope="module")
def pack(checkpoint, tmp_path_factory):
    """What `models import FILE.safetensors` puts in the library (export, then import)."""
    from desktop.commands.checkpoint_import import import_checkpoint
    from desktop.engines.packs.library import Library

    ckpt, folder = checkpoint
    configs = tiny_configs(tmp_path_factory.mktemp("configs"), folder)
    library = Library(tmp_path_factory.mktemp("library"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ATELIER_IMAGE_CONFIGS", str(configs))
        pack = import_checkpoint(ckpt, library, name="tiny-ckpt")
    assert pack.root.parent == library.root and pack.name == "tiny-ckpt"
    return pack.root


def test_models_import_without_the_export_extra_says_what_to_install(checkpoint, tmp_path, monkeypatch):
    import sys

    from desktop.commands.checkpoint_import import import_checkpoint
    from desktop.engines.packs.library import Library

    monkeypatch.setitem(sys.modules, "diffusers", None)  # as if the export extra were not installed
    with pytest.raises(ExportError) as info:
        import_checkpoint(checkpoint[0], Library(tmp_path / "lib"))
    message = str(info.value)
    assert "Stable Diffusion 1.x" in message and "pip install -e '.[export]'" in message and "\n" not in message


def test_exported_checkpoint_matches_diffusers_folder_on_same_latents(pack, checkpoint):
    _ckpt, folder = checkpoint
    w = h = 32
    engine = ImageEngine(load_pack(pack), RuntimeSettings(provider="cpu"))
    try:
        request = ImageRequest(prompt="a red apple", negative_prompt="blurry", width=w, height=h, steps=5, guidance=7.5, scheduler="euler", seed=3)
        image = next(e.image for e in engine.generate(request) if isinstance(e, ImageResult))
        noise = initial_noise(np.random.default_rng(3), engine.pipeline.latent_shape(w, h))
    finally:
        engine.close()
    pipe = diffusers.StableDiffusionPipeline.from_pretrained(str(folder), local_files_only=True)
    with torch.inference_mode():
        ref = pipe("a red apple", negative_prompt="blurry", height=h, width=w, num_inference_steps=5, guidance_scale=7.5,
                   latents=torch.from_numpy(noise), output_type="np").images[0]
    ref = np.round(ref * 255).astype(np.uint8)
    assert image.std() > 1
    diff = np.abs(image.astype(int) - ref.astype(int))
    assert diff.max() <= 2, diff.max()


def test_manifest_records_family_size_recommendations_and_licence(pack):
    m = json.loads((pack / "manifest.json").read_text())
    assert m["architecture"] == "stable-diffusion" and m["source"]["kind"] == "checkpoint"
    cfg = m["config"]
    assert cfg["family"] == "sd15" and cfg["native_size"] == 32  # the tiny UNet's 16 latents x the VAE's 2
    assert (cfg["default_steps"], cfg["default_guidance"], cfg["default_scheduler"]) == (25, 7.5, "euler")
    assert m["license"]["id"] == "creativeml-openrail-m"
    assert m["validation"]["reports"]["fp32"]["end_to_end"]["pixel_max_abs"] <= 2


def test_external_vae_replaces_a_missing_one(checkpoint, tmp_path):
    from safetensors.torch import load_file, save_file

    from exporters.image.stable_diffusion.checkpoint import load_checkpoint_source

    ckpt, folder = checkpoint
    state = load_file(str(ckpt))
    vae = {k[len("first_stage_model."):]: v for k, v in state.items() if k.startswith("first_stage_model.")}
    rest = {k: v for k, v in state.items() if not k.startswith("first_stage_model.")}
    save_file(rest, str(tmp_path / "no-vae.safetensors"))
    save_file(vae, str(tmp_path / "vae.safetensors"))
    configs = tiny_configs(tmp_path / "configs", folder)
    with pytest.raises(ExportError, match="--vae"):
        load_checkpoint_source(str(tmp_path / "no-vae.safetensors"), configs=configs)
    source = load_checkpoint_source(str(tmp_path / "no-vae.safetensors"), vae=tmp_path / "vae.safetensors", configs=configs)
    original = diffusers.StableDiffusionPipeline.from_pretrained(str(folder), local_files_only=True).vae.state_dict()
    loaded = source.model.vae.state_dict()
    assert loaded.keys() == original.keys() and all(torch.equal(loaded[k], original[k]) for k in original)
    assert "vae:vae.safetensors" in source.sha256


def test_pickle_checkpoint_is_refused_by_the_cli_in_one_line(tmp_path, capsys):
    from exporters.__main__ import main

    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"\x80\x02}q\x00.")
    assert main(["image", str(ckpt), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "pickle" in err and "\n" not in err
    assert not (tmp_path / "out").exists()


def test_recognised_but_unsupported_model_is_named(tmp_path):
    from safetensors.numpy import save_file

    from exporters.image.stable_diffusion.checkpoint import load_checkpoint_source

    # an SDXL refiner's header: OpenCLIP as its only text encoder, the size/crop label embedding
    z = np.zeros((1,), np.float32)
    tensors = {"model.diffusion_model.input_blocks.0.0.weight": np.zeros((1, 4, 1, 1), np.float32),
               "model.diffusion_model.label_emb.0.0.weight": z, "conditioner.embedders.0.model.ln_final.weight": z}
    save_file(tensors, str(tmp_path / "xl.safetensors"))
    with pytest.raises(ImportFormatError, match="is Stable Diffusion XL refiner.*imports: .*Stable Diffusion XL inpainting"):
        load_checkpoint_source(str(tmp_path / "xl.safetensors"))


def test_every_vendored_bundle_is_complete_and_readable():
    from transformers import CLIPTextConfig, CLIPTokenizer

    from exporters.image.stable_diffusion.checkpoint import CONFIGS, assemble_config
    from desktop.engines.image.checkpoint import FAMILIES

    keys = [f.key for f in FAMILIES] + ["sd21-base", "sd21-turbo", "sdxl-turbo"]
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        for key in keys:
            folder = assemble_config(key, Path(tmp))
            index = json.loads((folder / "model_index.json").read_text())
            unet = diffusers.UNet2DConditionModel.load_config(str(folder / "unet"))
            assert unet["in_channels"] == (9 if "inpainting" in key else 4)
            diffusers.AutoencoderKL.load_config(str(folder / "vae"))
            sched = getattr(diffusers, index["scheduler"][1]).from_config(json.loads((folder / "scheduler" / "scheduler_config.json").read_text()))
            defaults = json.loads((folder / "atelier_defaults.json").read_text())
            if key.endswith("turbo"):
                assert sched.config.timestep_spacing == "trailing" and (defaults["default_steps"], defaults["default_guidance"]) == (1, 0.0)
            for enc in ("text_encoder", "text_encoder_2"):
                if (folder / enc).is_dir():
                    CLIPTextConfig.from_pretrained(str(folder / enc))
                    tok = CLIPTokenizer.from_pretrained(str(folder / enc.replace("text_encoder", "tokenizer")))
                    # the ids OpenAI's CLIP gives this sentence: the vocabulary is the real one
                    assert tok("a photo of a cat")["input_ids"] == [49406, 320, 1125, 539, 320, 2368, 49407]


def test_unknown_safetensors_lists_supported_models(tmp_path):
    from safetensors.numpy import save_file

    from exporters.image.stable_diffusion.checkpoint import load_checkpoint_source

    save_file({"some.weight": np.zeros((2,), np.float32)}, str(tmp_path / "x.safetensors"))
    with pytest.raises(ImportFormatError, match="Stable Diffusion 1.x"):
        load_checkpoint_source(str(tmp_path / "x.safetensors"))


def test_convert_pickle_loads_tensors_in_a_child_and_refuses_code(checkpoint, tmp_path):
    import os

    from safetensors.torch import load_file

    from exporters.image.stable_diffusion.checkpoint import load_checkpoint_source

    ckpt, folder = checkpoint
    state = load_file(str(ckpt))
    torch.save({"state_dict": state, "global_step": 1}, tmp_path / "model.ckpt")
    source = load_checkpoint_source(str(tmp_path / "model.ckpt"), configs=tiny_configs(tmp_path / "configs", folder), convert_pickle=True)
    original = diffusers.StableDiffusionPipeline.from_pretrained(str(folder), local_files_only=True).unet.state_dict()
    loaded = source.model.unet.state_dict()
    assert all(torch.equal(loaded[k], original[k]) for k in original)
    assert list(source.sha256) == ["model.ckpt"] and source.location.endswith("model.ckpt")

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    import pickle

    (tmp_path / "evil.ckpt").write_bytes(pickle.dumps({"state_dict": Payload()}))
    with pytest.raises(ExportError, match="Could not convert the pickle 'evil.ckpt' safely"):
        load_checkpoint_source(str(tmp_path / "evil.ckpt"), convert_pickle=True)
    assert not marker.exists()
