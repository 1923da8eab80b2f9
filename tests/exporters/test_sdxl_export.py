"""Tiny random SDXL (diffusers config classes) -> our exporter -> our engine, compared with
diffusers' StableDiffusionXLPipeline on the same latents: text to image with and without a
negative prompt, img2img, prompt weighting on both encoders, the fp16 VAE rule, and the
manifest the Library and the engine read."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

from desktop.engines.events import ImageResult, Step  # noqa: E402
from desktop.engines.image.engine import ImageEngine, ImageRequest  # noqa: E402
from desktop.engines.image.pipelines.sd import initial_noise  # noqa: E402
from desktop.engines.packs.pack import load_pack  # noqa: E402
from desktop.engines.providers import RuntimeSettings  # noqa: E402
from tests.tiny_sdxl import tiny_sdxl_pack, tiny_sdxl_source  # noqa: E402


@pytest.fixture(scope="module")
def pack(cache_dir):
    return tiny_sdxl_pack(cache_dir)


@pytest.fixture(scope="module")
def pipe(cache_dir):
    return diffusers.StableDiffusionXLPipeline.from_pretrained(str(tiny_sdxl_source(cache_dir)), local_files_only=True)


def ours(pack_dir, **kw):
    engine = ImageEngine(load_pack(pack_dir), RuntimeSettings(provider="cpu"))
    try:
        events = list(engine.generate(ImageRequest(**kw)))
        shape = engine.pipeline.latent_shape(kw["width"], kw["height"])
    finally:
        engine.close()
    return next(e.image for e in events if isinstance(e, ImageResult)), events, shape


def as_pixels(images) -> np.ndarray:
    return np.round(images[0] * 255).astype(np.uint8)


def assert_close(image, ref):
    assert image.shape == ref.shape
    assert image.std() > 1  # not a constant picture
    diff = np.abs(image.astype(int) - ref.astype(int))
    assert diff.max() <= 2 and diff.mean() < 0.05, (diff.max(), diff.mean())


@pytest.mark.parametrize("negative", ["blurry", ""])
def test_engine_matches_diffusers_sdxl_on_same_latents(pack, pipe, negative):
    # 40x24: not square (the size ids are height first) and not the native size; an empty
    # negative prompt is zeros in SDXL, which diffusers does when none is given
    w, h = 40, 24
    image, _, shape = ours(pack, prompt="a red apple", negative_prompt=negative, width=w, height=h, steps=5, guidance=5.0, scheduler="euler", seed=42)
    noise = initial_noise(np.random.default_rng(42), shape)
    with torch.inference_mode():
        ref = pipe("a red apple", negative_prompt=negative or None, height=h, width=w, num_inference_steps=5, guidance_scale=5.0,
                   latents=torch.from_numpy(noise), output_type="np").images
    assert_close(image, as_pixels(ref))


def test_img2img_matches_diffusers_sdxl(pack, pipe, monkeypatch):
    from PIL import Image

    init = np.random.default_rng(9).uniform(0, 255, (32, 32, 3)).astype(np.uint8)
    image, events, shape = ours(pack, prompt="smiling cat", width=32, height=32, steps=10, guidance=5.0, scheduler="euler", seed=7, init_image=init, strength=0.6)
    assert sum(isinstance(e, Step) for e in events) == 6  # strength 0.6 of 10 steps
    rng = np.random.default_rng(7)  # our order: starting noise, then the VAE's posterior sample
    noise, posterior = initial_noise(rng, shape), rng.standard_normal(shape, dtype=np.float32)
    draws = [torch.from_numpy(posterior), torch.from_numpy(noise)]
    monkeypatch.setattr("diffusers.models.autoencoders.vae.randn_tensor", lambda *a, **k: draws.pop(0))
    monkeypatch.setattr("diffusers.pipelines.stable_diffusion_xl.pipeline_stable_diffusion_xl_img2img.randn_tensor", lambda *a, **k: draws.pop(0))
    i2i = diffusers.StableDiffusionXLImg2ImgPipeline(**pipe.components)
    with torch.inference_mode():
        ref = i2i(prompt="smiling cat", image=Image.fromarray(init), strength=0.6, num_inference_steps=10, guidance_scale=5.0, output_type="np").images
    assert not draws
    assert_close(image, as_pixels(ref))


def test_prompt_weights_reach_both_encoders(pack, pipe):
    """(word:w) scales that word's tokens in both encoders' states (then A1111's mean restore);
    diffusers, handed the same weighted embeddings, makes the same picture."""
    from desktop.engines.image import prompt_weights

    kw = dict(negative_prompt="blurry", width=32, height=32, steps=4, guidance=5.0, scheduler="euler", seed=5)
    weighted, _, shape = ours(pack, prompt="a (red:4) apple", **kw)
    plain, _, _ = ours(pack, prompt="a red apple", **kw)
    assert np.abs(weighted.astype(int) - plain.astype(int)).mean() > 0.2  # the weight changes the picture

    def embeds(text, weights):
        ids = [tok(text, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids for tok in (pipe.tokenizer, pipe.tokenizer_2)]
        with torch.inference_mode():
            one = pipe.text_encoder(ids[0], output_hidden_states=True).hidden_states[-2].numpy()
            two = pipe.text_encoder_2(ids[1], output_hidden_states=True)
        states = [prompt_weights.apply(s, weights) for s in (one, two.hidden_states[-2].numpy())]
        return torch.from_numpy(np.concatenate(states, axis=-1)), two.text_embeds

    weights = np.ones((1, 77), np.float32)
    weights[0, 2] = 4.0  # <bos> a red ...: one token per word in the tiny vocabulary
    cond, pooled = embeds("a red apple", weights)
    uncond, pooled_uncond = embeds("blurry", np.ones((1, 77), np.float32))
    with torch.inference_mode():
        ref = pipe(prompt_embeds=cond, pooled_prompt_embeds=pooled, negative_prompt_embeds=uncond, negative_pooled_prompt_embeds=pooled_uncond,
                   height=32, width=32, num_inference_steps=4, guidance_scale=5.0,
                   latents=torch.from_numpy(initial_noise(np.random.default_rng(5), shape)), output_type="np").images
    assert_close(weighted, as_pixels(ref))


def test_manifest_has_what_the_engine_and_library_read(pack):
    m = json.loads((pack / "manifest.json").read_text())
    assert m["architecture"] == "stable-diffusion-xl" and m["modality"] == "image"
    cfg = m["config"]
    assert cfg["scaling_factor"] == pytest.approx(0.13025)
    assert cfg["force_zeros_for_empty_prompt"] is True
    assert (cfg["vae_force_upcast"], cfg["vae_precision"]) == (True, "fp32")
    assert (cfg["family"], cfg["native_size"], cfg["default_steps"], cfg["default_guidance"], cfg["default_scheduler"]) == ("sdxl", 32, 25, 5.0, "euler")
    assert m["io"]["unet"]["inputs"] == ["sample", "timestep", "encoder_hidden_states", "text_embeds", "time_ids"]
    roles = {f["role"] for f in m["files"]}
    assert {"text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "unet", "vae_decoder", "vae_encoder", "scheduler"} <= roles
    report = m["validation"]["reports"]["fp32"]
    for role in ("text_encoder", "text_encoder_2", "text_encoder_2.text_embeds", "unet", "vae_decoder", "vae_encoder"):
        assert report["components"][role]["max_abs"] < 1e-4
    assert report["end_to_end"]["pixel_max_abs"] <= 2
    assert json.loads((pack / "tokenizer_2" / "tokenizer_config.json").read_text())["pad_token"] == "!"


@pytest.mark.parametrize("force_upcast", [True, False])
def test_fp16_keeps_the_vae_fp32_unless_its_config_says_it_is_safe(pack, pipe, tmp_path, force_upcast):
    import onnx
    from diffusers import AutoencoderKL

    from exporters.image.stable_diffusion.sdxl import StableDiffusionXLExport
    from exporters.pipeline import Source

    vae = AutoencoderKL.from_config(dict(pipe.vae.config, force_upcast=force_upcast))
    config = StableDiffusionXLExport(Source("stable-diffusion-xl", diffusers.StableDiffusionXLPipeline(**{**pipe.components, "vae": vae}), str(pack), "diffusers-folder"))
    config.quantize(pack, "fp16", tmp_path)

    def halves(role):
        return any(t.data_type == onnx.TensorProto.FLOAT16 for t in onnx.load(str(tmp_path / role / "model.onnx")).graph.initializer)

    assert halves("unet") and halves("text_encoder") and halves("text_encoder_2")
    assert halves("vae_decoder") is (not force_upcast) and halves("vae_encoder") is (not force_upcast)
    assert config.draft_manifest(tmp_path, "fp16")["config"]["vae_precision"] == ("fp32" if force_upcast else "fp16")


def _rewritten(pack, tmp_path, drop: tuple[str, ...] = (), graphs_from=None):
    """The pack copied without some component folders (or with another pack's UNet), its
    manifest rewritten to match."""
    import shutil

    from desktop.engines.packs.pack import write_manifest

    copy = tmp_path / "pack"
    shutil.copytree(pack, copy, ignore=shutil.ignore_patterns("manifest.json", *drop))
    m = json.loads((pack / "manifest.json").read_text())
    roles = {f["path"]: f["role"] for f in m.pop("files") if f["path"].split("/")[0] not in drop}
    if graphs_from is not None:
        shutil.rmtree(copy / "unet")
        shutil.copytree(graphs_from / "unet", copy / "unet")
        roles = {k: v for k, v in roles.items() if not k.startswith("unet/")}
        roles.update({f.relative_to(copy).as_posix(): "unet" for f in (copy / "unet").iterdir() if f.name == "model.onnx"})
    return write_manifest(copy, m, roles)


def test_pack_without_its_second_encoder_is_refused_by_name(pack, tmp_path):
    from desktop.engines.errors import PackFormatError

    with pytest.raises(PackFormatError, match="missing its text_encoder_2 and tokenizer_2.*two text encoders"):
        ImageEngine(_rewritten(pack, tmp_path, drop=("text_encoder_2", "tokenizer_2")), RuntimeSettings(provider="cpu"))


def test_sd_unet_in_an_sdxl_pack_is_refused_by_name(pack, cache_dir, tmp_path):
    from desktop.engines.errors import PackFormatError
    from tests.tiny_sd import tiny_sd_pack

    with pytest.raises(PackFormatError, match="no text_embeds or time_ids input; it is not an SDXL UNet"):
        ImageEngine(_rewritten(pack, tmp_path, graphs_from=tiny_sd_pack(cache_dir)), RuntimeSettings(provider="cpu"))


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_quantized_sdxl_packs_pass_their_floor(cache_dir, precision):
    q = tiny_sdxl_pack(cache_dir, precision)
    m = json.loads((q / "manifest.json").read_text())
    assert m["precision"] == precision and m["validation"]["passed_floor"]
    assert m["config"]["vae_precision"] == "fp32"  # the tiny VAE says force_upcast, as SDXL's does
    assert m["validation"]["reports"][precision]["end_to_end"]["pixel_mean_abs"] <= {"fp16": 4.0, "int8": 12.0}[precision]
    image, _, _ = ours(q, prompt="a red apple", width=32, height=32, steps=3, guidance=5.0, scheduler="euler", seed=1)
    assert image.std() > 1
