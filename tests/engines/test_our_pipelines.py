"""What each of our packs does beyond plain generation: morphs (GAN, VAE, through the
latent-generator pipeline), exact cropped sampling (PixelCNN), vocabulary notices,
schedulers and img2img (emoji diffusion)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from desktop.engines.errors import RequestError
from desktop.engines.events import Done, ImageResult, Notice, Step
from desktop.engines.image.engine import ImageEngine, ImageRequest
from desktop.engines.packs.pack import load_pack
from desktop.engines.providers import RuntimeSettings

MODELS = Path(__file__).resolve().parents[2] / "resources" / "models"


def open_engine(name: str) -> ImageEngine:
    return ImageEngine(load_pack(MODELS / name), RuntimeSettings(threads=2))


def images(events):
    return [e.image for e in events if isinstance(e, ImageResult)]


@pytest.mark.parametrize("name", ["atelier-fashion-gan", "atelier-fashion-vae"])
def test_morph_walks_from_seed_a_to_seed_b(name):
    engine = open_engine(name)
    label = engine.capabilities.classes[7]
    req = ImageRequest(class_label=label, width=28, height=28)
    events = list(engine.morph(req, 5, 9, 8))
    frames = images(events)
    assert len(frames) == 8 and isinstance(events[-1], Done)
    start = images(engine.generate(ImageRequest(class_label=label, seed=5, width=28, height=28)))[0]
    end = images(engine.generate(ImageRequest(class_label=label, seed=9, width=28, height=28)))[0]
    assert np.array_equal(frames[0], start) and np.array_equal(frames[-1], end)
    steps = np.array([np.abs(frames[i + 1].astype(int) - frames[i]).mean() for i in range(7)])
    assert (steps > 0).all(), "a morph frame repeated the previous one"
    # a walk, not a jump: no single step carries most of the change
    assert steps.max() < 0.6 * np.abs(end.astype(int) - start).mean() + 1e-9
    meta = [e.metadata for e in events if isinstance(e, ImageResult)]
    assert [m["morph"]["frame"] for m in meta] == list(range(8)) and meta[3]["morph"]["seed_b"] == 9
    engine.close()


def test_pixelcnn_refuses_morph_and_samples_rows_exactly():
    engine = open_engine("atelier-fashion-pixelcnn")
    with pytest.raises(RequestError):
        list(engine.morph(ImageRequest(), 1, 2, 4))
    pipe = engine.pipeline
    rng = np.random.default_rng(0)
    canvas = (rng.integers(0, pipe.levels, (2, 1, 28, 28)) / (pipe.levels - 1)).astype(np.float32)
    w = np.stack([pipe.one_hot(0), pipe.one_hot(8)])
    full = pipe.logits(canvas, w)
    for r in (3, 15, 27):
        top = max(0, r - pipe.receptive_rows)
        cropped = pipe.logits(canvas[:, :, top : r + 1], w)[:, :, -1]
        np.testing.assert_allclose(cropped, full[:, :, r], atol=1e-4)
    # one row fewer than the receptive field is no longer exact: the field is not oversized
    r = 20
    short = pipe.logits(canvas[:, :, r - pipe.receptive_rows + 1 : r + 1], w)[:, :, -1]
    assert np.abs(short - full[:, :, r]).max() > 1e-4
    engine.close()


def test_pixelcnn_yields_a_preview_per_row():
    engine = open_engine("atelier-fashion-pixelcnn")
    events = list(engine.generate(ImageRequest(class_label="Trouser", seed=2, width=28, height=28)))
    steps = [e for e in events if isinstance(e, Step)]
    assert [s.index for s in steps] == list(range(1, 29)) and steps[0].total == 28
    assert steps[5].preview[8:].max() == 0, "rows not drawn yet must still be empty"
    engine.close()


@pytest.fixture(scope="module")
def emoji():
    engine = open_engine("atelier-emoji-diffusion")
    yield engine
    engine.close()


def test_emoji_unknown_words_give_a_notice(emoji):
    events = list(emoji.generate(ImageRequest(prompt="red apple zyxwvut", seed=1, steps=4, width=32, height=32)))
    notices = [e.message for e in events if isinstance(e, Notice)]
    assert any("zyxwvut" in m for m in notices)
    assert len(images(events)) == 1


def test_emoji_steps_and_schedulers(emoji):
    for scheduler in emoji.capabilities.schedulers:
        events = list(emoji.generate(ImageRequest(prompt="blue heart", seed=4, steps=6, scheduler=scheduler, width=32, height=32)))
        assert len([e for e in events if isinstance(e, Step)]) == 6, scheduler
        assert images(events)[0].std() > 10, scheduler


def test_emoji_img2img_keeps_the_starting_picture_at_low_strength(emoji):
    start = np.zeros((128, 128, 3), dtype=np.uint8)
    start[:, :64] = (220, 30, 30)
    start[:, 64:] = (30, 30, 220)
    def draw(strength):
        req = ImageRequest(prompt="star", seed=8, init_image=start, strength=strength)
        return images(emoji.generate(req))[0].astype(int)
    low, high = draw(0.3), draw(1.0)
    assert np.abs(low - start).mean() < np.abs(high - start).mean()
    assert low[:, :64, 0].mean() > low[:, 64:, 0].mean(), "the red half should stay redder"


def test_emoji_vocabulary_matches_the_recipe(emoji):
    from training.emoji_captions import Vocabulary

    vocab = emoji.pipeline.vocab
    recipe = Vocabulary(vocab.tokens)
    for text in ["Red apples and smiling cats!", "the face with tears of joy", "", "Hearts, hearts, HEARTS", "a b c d e f g h i j k l m n o p q r s t"]:
        ids, _, _ = vocab.encode(text)
        # the pack's file (stopwords, max length, ids) encodes exactly as the recipe did
        assert (ids == recipe.encode(text)[0]).all()


def test_emoji_sessions_follow_the_pipeline_contract(emoji):
    """Made by the shared image-session factory: worker threads sleep between operators
    instead of spinning (spinning took the cores other work needs)."""
    for session in (emoji.pipeline.text_encoder, emoji.pipeline.unet):
        options = session.get_session_options()
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
        assert options.get_session_config_entry("session.inter_op.allow_spinning") == "0"


def test_emoji_runs_the_shared_denoising_loop(emoji):
    from desktop.engines.image import denoising
    from desktop.engines.image.pipelines import emoji_diffusion, sd

    assert emoji_diffusion.denoise_batch is sd.denoise_batch is denoising.denoise_batch
    batch = images(emoji.generate(ImageRequest(prompt="sun", seed=10, steps=3, batch_count=2, width=32, height=32)))
    alone = images(emoji.generate(ImageRequest(prompt="sun", seed=11, steps=3, width=32, height=32)))
    assert np.array_equal(batch[1], alone[0])  # the loop's promise: image i is seed + i on its own
