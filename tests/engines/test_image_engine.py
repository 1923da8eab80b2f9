"""The image engine on a tiny exported SD pack: requests, bad input (one test each),
determinism, previews, the CLIP tokenizer, the optimum-folder importer, broken packs."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

from desktop.engines.errors import ImportFormatError, PackFormatError, PackIntegrityError, RequestError
from desktop.engines.events import Done, ImageResult, Notice, Step
from desktop.engines.image.engine import ImageEngine, ImageRequest
from desktop.engines.image.capabilities import Capabilities
from desktop.engines.image.pipelines import known_architectures, pipeline_class
from desktop.engines.packs.pack import load_pack, write_manifest
from desktop.engines.providers import RuntimeSettings
from tests.tiny_sd import tiny_sd_pack, tiny_sd_source, write_tiny_clip_tokenizer

CPU = RuntimeSettings(provider="cpu")


@pytest.fixture(scope="module")
def pack_dir(cache_dir):
    return tiny_sd_pack(cache_dir)


@pytest.fixture(scope="module")
def engine(pack_dir):
    e = ImageEngine(load_pack(pack_dir), CPU)
    yield e
    e.close()


def run(engine, **kw):
    return list(engine.generate(ImageRequest(**kw)))


def images(events):
    return [e for e in events if isinstance(e, ImageResult)]


# -- bad input: one test each -----------------------------------------------------------
def test_size_not_multiple_of_8_is_refused():
    with pytest.raises(RequestError, match="multiples of 8.*try 96×512"):
        ImageRequest(prompt="a cat", width=100, height=512).validate()


def test_8192_square_is_refused_with_a_memory_estimate(engine):
    with pytest.raises(RequestError, match=r"8192×8192 would need about [\d,.]+ GB of memory"):
        ImageRequest(prompt="a cat", width=8192, height=8192).validate()
    with pytest.raises(RequestError, match="GB of memory"):  # refused by the engine before any work
        run(engine, prompt="a cat", width=8192, height=8192, steps=1)
    # the pipeline's own estimate: unfused attention holds every score, fused works in tiles
    pipe = engine.pipeline
    big = ImageRequest(prompt="a", width=1024, height=1024, guidance=7.5)
    fused = pipe.estimate_memory(big)
    pipe.attention = dict(pipe.attention, fused=False)
    try:
        assert pipe.estimate_memory(big) > 20 * fused
    finally:
        pipe.attention = dict(pipe.attention, fused=True)


def test_zero_steps_is_refused():
    with pytest.raises(RequestError, match="Steps must be a whole number from 1"):
        ImageRequest(prompt="a cat", steps=0).validate()


def test_nan_guidance_is_refused():
    with pytest.raises(RequestError, match="finite"):
        ImageRequest(prompt="a cat", guidance=math.nan).validate()


def test_empty_prompt_is_refused_for_text_conditioned_packs(engine):
    with pytest.raises(RequestError, match="Type a prompt first"):
        run(engine, prompt="   ")


def test_10000_character_prompt_is_refused():
    with pytest.raises(RequestError, match="10,000 characters; the limit is 2,000"):
        ImageRequest(prompt="x" * 10_000).validate()


def test_pack_with_a_missing_component(pack_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(pack_dir, broken)
    (broken / "unet" / "model.onnx").unlink()
    with pytest.raises(PackIntegrityError, match="incomplete: file 'unet/model.onnx' is missing"):
        load_pack(broken)
    # a manifest that never listed the UNet: the engine names the component
    manifest = json.loads((broken / "manifest.json").read_text())
    manifest.pop("files")
    shutil.rmtree(broken / "unet")
    write_manifest(broken, manifest, {"text_encoder/model.onnx": "text_encoder", "vae_decoder/model.onnx": "vae_decoder"})
    with pytest.raises(PackFormatError, match="missing its unet component"):
        ImageEngine(load_pack(broken), CPU)


# -- what a request may be --------------------------------------------------------------
def test_other_bad_requests_have_clear_messages(engine):
    caps = engine.capabilities
    with pytest.raises(RequestError, match="Unknown scheduler 'plms'"):
        run(engine, prompt="a cat", scheduler="plms")
    with pytest.raises(RequestError, match="no classes"):
        run(engine, prompt="a cat", class_label="boot")
    with pytest.raises(RequestError, match="Strength"):
        ImageRequest(prompt="a", strength=0).validate()
    with pytest.raises(RequestError, match="Batch count"):
        ImageRequest(prompt="a", batch_count=0).validate()
    with pytest.raises(RequestError, match="only"):  # fixed-size packs list their sizes
        ImageRequest(width=32, height=32, capabilities=Capabilities(sizes=[(28, 28)])).validate()
    ImageRequest(width=28, height=28, capabilities=Capabilities(sizes=[(28, 28)])).validate()
    assert caps.prompt and caps.img2img and caps.schedulers[0] == "euler"


def test_unknown_architecture_lists_what_runs():
    assert "stable-diffusion" in known_architectures()
    with pytest.raises(PackFormatError, match="stable-diffusion"):
        pipeline_class("stylegan9")


# -- generation -------------------------------------------------------------------------
def test_steps_previews_results_and_stats(engine):
    events = run(engine, prompt="a red apple", negative_prompt="blurry", width=40, height=24, steps=3, seed=11, batch_count=2)
    steps = [e for e in events if isinstance(e, Step)]
    assert [s.index for s in steps] == list(range(1, 7)) and {s.total for s in steps} == {6}
    assert all(s.preview is not None and s.preview.dtype == np.uint8 and s.preview.shape == (12, 20, 3) for s in steps)
    results = images(events)
    assert [r.seed for r in results] == [11, 12]
    for r in results:
        assert r.image.shape == (24, 40, 3) and r.image.dtype == np.uint8 and r.image.std() > 1
        meta = r.metadata
        assert meta["seed"] == r.seed and meta["prompt"] == "a red apple" and meta["negative_prompt"] == "blurry"
        assert (meta["width"], meta["height"], meta["steps"], meta["guidance"], meta["scheduler"]) == (40, 24, 3, 7.5, "euler")
        assert meta["pack"] == engine.pack.name and json.dumps(meta)
    done = events[-1]
    assert isinstance(done, Done) and done.stats["unet_calls"] == 6 and done.stats["seconds_per_unet_call"] > 0


def test_same_settings_and_seed_give_the_same_pixels(engine):
    kw = dict(prompt="smiling cat", width=32, height=32, steps=4, scheduler="euler_a", seed=123)
    a, b = images(run(engine, **kw))[0].image, images(run(engine, **kw))[0].image
    assert np.array_equal(a, b)
    c = images(run(engine, **dict(kw, seed=124)))[0].image
    assert not np.array_equal(a, c)
    # image 2 of a batch is reproduced alone with its own seed
    batch = images(run(engine, **dict(kw, batch_count=2)))
    assert np.array_equal(batch[1].image, c)


def test_random_seed_is_reported(engine):
    r = images(run(engine, prompt="a red apple", width=16, height=16, steps=1))[0]
    assert isinstance(r.seed, int) and r.metadata["seed"] == r.seed


def test_negative_prompt_and_guidance_change_the_picture(engine):
    kw = dict(prompt="a red apple", width=32, height=32, steps=4, seed=3)
    base = images(run(engine, **kw))[0].image.astype(int)
    neg = images(run(engine, **dict(kw, negative_prompt="smiling cat")))[0].image.astype(int)
    g1 = images(run(engine, **dict(kw, guidance=1.0)))[0].image.astype(int)
    assert np.abs(base - neg).mean() > 0.5 and np.abs(base - g1).mean() > 0.5


def test_img2img_strength_sets_the_steps_and_the_init_image_matters(engine):
    # (pixel agreement with diffusers' img2img is tested in tests/exporters)
    red = np.zeros((32, 32, 3), np.uint8)
    red[:, :16] = (230, 30, 30)
    blue = red[:, :, ::-1].copy()
    kw = dict(prompt="a red apple", steps=10, seed=1, width=32, height=32)
    low = run(engine, init_image=red, strength=0.2, **kw)
    high = run(engine, init_image=red, strength=1.0, **kw)
    assert sum(isinstance(e, Step) for e in low) == 2 and sum(isinstance(e, Step) for e in high) == 10
    from_red = images(run(engine, init_image=red, strength=0.5, **kw))[0].image.astype(int)
    from_blue = images(run(engine, init_image=blue, strength=0.5, **kw))[0].image.astype(int)
    assert np.abs(from_red - from_blue).mean() > 1
    assert images(low)[0].metadata["strength"] == 0.2 and len(images(low)[0].metadata["init_image_sha256"]) == 64
    # an init image of another size is fitted to the request
    odd = np.full((50, 70, 3), 128, np.uint8)
    assert images(run(engine, prompt="x", init_image=odd, strength=0.5, steps=2, seed=1, width=32, height=32))[0].image.shape == (32, 32, 3)


def test_long_prompt_is_cut_with_a_notice(engine):
    events = run(engine, prompt="red apple " * 60, width=16, height=16, steps=1, seed=0)
    notices = [e for e in events if isinstance(e, Notice)]
    assert notices and "ignored" in notices[0].message and "apple" in notices[0].message


# -- tokenizer --------------------------------------------------------------------------
@pytest.mark.parametrize("from_vocab", [True, False])
def test_clip_tokenizer_matches_transformers(tmp_path, cache_dir, from_vocab):
    transformers = pytest.importorskip("transformers")
    from desktop.engines.image.clip_tokenizer import ClipTokenizer

    if from_vocab:
        folder = write_tiny_clip_tokenizer(tmp_path / "tok")
        ref = transformers.CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77)
    else:
        folder = tiny_sd_source(cache_dir) / "tokenizer"
        ref = transformers.CLIPTokenizer.from_pretrained(str(folder))
    ours = ClipTokenizer(folder)
    for text in ("a red apple", "Smiling   CAT!!", "photo of the sea at night, 4k", "", "it's a blue heart's day", "cafe\u0301 \u00e9t\u00e9 123"):
        expected = ref(text, padding="max_length", max_length=77, truncation=True).input_ids
        assert ours.encode(text).ids == expected, text


# -- importing an optimum-layout folder -------------------------------------------------
def optimum_layout(pack_dir, source, dest):
    """Our pack rearranged the way optimum writes a folder: no manifest, config.json in
    each component, the slow tokenizer's vocab.json + merges.txt."""
    shutil.copytree(pack_dir, dest, ignore=shutil.ignore_patterns("manifest.json"))
    shutil.copy(source / "unet" / "config.json", dest / "unet")
    for part in ("vae_decoder", "vae_encoder"):
        shutil.copy(source / "vae" / "config.json", dest / part)
    shutil.rmtree(dest / "tokenizer")
    write_tiny_clip_tokenizer(dest / "tokenizer")
    return dest


def test_import_optimum_folder_generates_the_same_pixels(pack_dir, cache_dir, tmp_path, engine):
    from desktop.engines.packs.importers import import_path
    from desktop.engines.packs.library import Library

    folder = optimum_layout(pack_dir, tiny_sd_source(cache_dir), tmp_path / "sd-optimum")
    pack = import_path(folder, Library(), name="tiny-optimum")
    assert pack.modality == "image" and pack.architecture == "stable-diffusion"
    assert pack.config["size_multiple"] == 8 and len(pack.config["latent_rgb"]["matrix"]) == 4
    imported = ImageEngine(pack, CPU)
    kw = dict(prompt="a red apple", width=32, height=32, steps=3, seed=8)
    assert np.array_equal(images(run(imported, **kw))[0].image, images(run(engine, **kw))[0].image)
    imported.close()


def test_import_refuses_incomplete_or_foreign_folders(pack_dir, cache_dir, tmp_path):
    from desktop.engines.packs.importers import import_path
    from desktop.engines.packs.library import Library

    lib = Library()
    folder = optimum_layout(pack_dir, tiny_sd_source(cache_dir), tmp_path / "no-unet")
    shutil.rmtree(folder / "unet")
    with pytest.raises(ImportFormatError, match="missing the Stable Diffusion component.*unet/"):
        import_path(folder, lib)
    assert not any(p.name == "no-unet" for p in lib.root.iterdir())  # nothing half-imported
    dit = optimum_layout(pack_dir, tiny_sd_source(cache_dir), tmp_path / "dit")
    (dit / "transformer").mkdir()
    with pytest.raises(ImportFormatError, match="diffusion transformer"):
        import_path(dit, lib)
