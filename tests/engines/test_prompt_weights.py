"""Prompt weighting in the A1111 syntax: the parser, and its effect on the tiny SD pack."""

from __future__ import annotations

import numpy as np
import pytest

from desktop.engines.events import ImageResult
from desktop.engines.image.engine import ImageEngine, ImageRequest
from desktop.engines.image.prompt_weights import Chunk, apply, parse, plain_text
from desktop.engines.packs.pack import load_pack
from desktop.engines.providers import RuntimeSettings
from tests.tiny_sd import tiny_sd_pack


def weights(prompt):
    return [(c.text, round(c.weight, 4)) for c in parse(prompt)]


@pytest.mark.parametrize(
    "prompt, expected",
    [
        ("a red apple", [("a red apple", 1.0)]),
        ("a (red) apple", [("a ", 1.0), ("red", 1.1), (" apple", 1.0)]),
        ("a ((red)) apple", [("a ", 1.0), ("red", 1.21), (" apple", 1.0)]),
        ("a [red] apple", [("a ", 1.0), ("red", round(1 / 1.1, 4)), (" apple", 1.0)]),
        ("a (red:1.5) apple", [("a ", 1.0), ("red", 1.5), (" apple", 1.0)]),
        ("(a (red:2) apple:0.5)", [("a ", 0.5), ("red", 1.0), (" apple", 0.5)]),
        ("a (red: 0.8 ) apple", [("a ", 1.0), ("red", 0.8), (" apple", 1.0)]),
        (r"a \(red\) apple", [("a (red) apple", 1.0)]),
        ("a (red apple", [("a ", 1.0), ("red apple", 1.1)]),
        ("smile :) and ]", [("smile : and ", 1.0)]),
    ],
)
def test_parse(prompt, expected):
    assert weights(prompt) == expected


def test_an_absurd_weight_is_capped():
    assert weights("(glow:1000)") == [("glow", 10.0)] and weights("(glow:-50)") == [("glow", -10.0)]


def test_plain_text_is_what_the_model_reads():
    assert plain_text("a (red:1.3) [shiny] apple") == "a red shiny apple"
    assert parse("") == [Chunk("", 1.0)]


def test_apply_scales_tokens_and_keeps_the_mean():
    rng = np.random.default_rng(0)
    hidden = rng.normal(1.0, 1.0, (1, 5, 4)).astype(np.float32)
    w = np.array([[1.0, 1.5, 1.0, 1.0, 1.0]], dtype=np.float32)
    out = apply(hidden, w)
    assert np.isclose(out.mean(), hidden.mean(), atol=1e-5)
    ratio = (out[0, 1] / hidden[0, 1]) / (out[0, 0] / hidden[0, 0])
    assert np.allclose(ratio, 1.5, atol=1e-4)


@pytest.fixture(scope="module")
def engine(cache_dir):
    e = ImageEngine(load_pack(tiny_sd_pack(cache_dir)), RuntimeSettings(provider="cpu"))
    yield e
    e.close()


def picture(engine, prompt):
    events = engine.generate(ImageRequest(prompt=prompt, width=32, height=32, steps=3, seed=7))
    return next(e for e in events if isinstance(e, ImageResult)).image


def test_weights_change_the_picture_and_weight_one_does_not(engine):
    plain = picture(engine, "smiling cat")
    assert np.array_equal(picture(engine, "(smiling cat:1.0)"), plain)
    assert np.array_equal(picture(engine, r"smiling cat"), plain)
    assert not np.array_equal(picture(engine, "(smiling:1.6) cat"), plain)
    assert not np.array_equal(picture(engine, "(smiling:1.6) cat"), picture(engine, "[smiling] cat"))


def test_weighted_tokens_match_the_plain_tokenization(engine):
    tok = engine.pipeline.tokenizer
    enc, w = tok.encode_weighted(parse("a (smiling:1.5) cat"))
    assert enc.ids == tok.encode("a smiling cat").ids
    body = [x for x in w[1:] if x != 1.0]
    assert body and all(x == 1.5 for x in body) and len(w) == len(enc.ids)
