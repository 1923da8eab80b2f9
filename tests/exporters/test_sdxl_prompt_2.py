"""SDXL's second prompt: prompt_2 / negative_prompt_2 reach the second text encoder only (an
empty one means "read the first prompt"), as in diffusers' StableDiffusionXLPipeline; the PNG
record carries them as written; a pack with one text encoder refuses them by name."""

from __future__ import annotations

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

SIZE = dict(width=32, height=32, steps=4, guidance=5.0, scheduler="euler", seed=11)


@pytest.fixture(scope="module")
def engine(cache_dir):
    e = ImageEngine(load_pack(tiny_sdxl_pack(cache_dir)), RuntimeSettings(provider="cpu"))
    yield e
    e.close()


@pytest.fixture(scope="module")
def pipe(cache_dir):
    return diffusers.StableDiffusionXLPipeline.from_pretrained(str(tiny_sdxl_source(cache_dir)), local_files_only=True)


def ours(engine, **kw) -> ImageResult:
    return next(e for e in engine.generate(ImageRequest(**SIZE, **kw)) if isinstance(e, ImageResult))


def theirs(pipe, engine, **kw) -> np.ndarray:
    shape = engine.pipeline.latent_shape(SIZE["width"], SIZE["height"])
    with torch.inference_mode():
        ref = pipe(height=SIZE["height"], width=SIZE["width"], num_inference_steps=SIZE["steps"], guidance_scale=SIZE["guidance"],
                   latents=torch.from_numpy(initial_noise(np.random.default_rng(SIZE["seed"]), shape)), output_type="np", **kw).images
    return np.round(ref[0] * 255).astype(np.uint8)


def assert_close(image, ref):
    assert image.std() > 1  # not a constant picture
    diff = np.abs(image.astype(int) - ref.astype(int))
    assert diff.max() <= 2 and diff.mean() < 0.05, (diff.max(), diff.mean())


@pytest.mark.parametrize(
    "texts, their_texts",
    [
        # the second encoder reads its own prompt; the negative goes to both
        (dict(prompt="a red apple", prompt_2="smiling cat", negative_prompt="blurry"),
         dict(prompt="a red apple", prompt_2="smiling cat", negative_prompt="blurry")),
        # only the second encoder is told what to avoid: the first reads "" (not zeros)
        (dict(prompt="a red apple", prompt_2="smiling cat", negative_prompt_2="blurry"),
         dict(prompt="a red apple", prompt_2="smiling cat", negative_prompt="", negative_prompt_2="blurry")),
    ],
)
def test_second_prompt_matches_diffusers(engine, pipe, texts, their_texts):
    result = ours(engine, **texts)
    assert_close(result.image, theirs(pipe, engine, **their_texts))
    plain = ours(engine, **{k: v for k, v in texts.items() if not k.endswith("_2")})
    assert np.abs(result.image.astype(int) - plain.image.astype(int)).mean() > 0.2  # the second prompt changes the picture


def test_second_prompt_is_recorded_as_written_and_only_when_given(engine):
    given = ours(engine, prompt="a red apple", prompt_2="(smiling:1.2) cat", negative_prompt_2="blurry")
    assert (given.metadata["prompt_2"], given.metadata["negative_prompt_2"]) == ("(smiling:1.2) cat", "blurry")
    plain = ours(engine, prompt="a red apple")
    assert "prompt_2" not in plain.metadata and "negative_prompt_2" not in plain.metadata


def test_pack_with_one_text_encoder_refuses_a_second_prompt(cache_dir):
    from tests.tiny_sd import tiny_sd_pack

    sd = ImageEngine(load_pack(tiny_sd_pack(cache_dir)), RuntimeSettings(provider="cpu"))
    try:
        assert not sd.capabilities.prompt_2
        with pytest.raises(RequestError, match="no second text encoder: a second prompt is for SDXL"):
            list(sd.generate(ImageRequest(prompt="a red apple", prompt_2="smiling cat", **SIZE)))
    finally:
        sd.close()
