"""Sampling defaults follow llama.cpp (temperature 0.8, top-k 40, top-p 0.95, min-p 0.05,
no repetition penalty) unless the pack carries its maker's recommendation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from desktop.engines.errors import RequestError
from desktop.engines.packs.importers import import_path
from desktop.engines.packs.library import Library
from desktop.engines.text.sampling import Sampler, SamplingSettings, pack_defaults


def test_defaults_are_llama_cpps():
    s = SamplingSettings()
    assert (s.temperature, s.top_k, s.top_p, s.min_p, s.repetition_penalty) == (0.8, 40, 0.95, 0.05, 1.0)


def test_min_p_drops_tokens_far_below_the_top_one():
    # probabilities 0.5, 0.3, 0.15, 0.04, 0.01: min-p 0.1 keeps those >= 0.05
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.04, 0.01], np.float32))
    seen = {Sampler(SamplingSettings(temperature=1.0, top_k=0, top_p=1.0, min_p=0.1, seed=i))(logits, []) for i in range(300)}
    assert seen == {0, 1, 2}
    seen = {Sampler(SamplingSettings(temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, seed=i))(logits, []) for i in range(300)}
    assert seen == {0, 1, 2, 3, 4}


def test_min_p_is_applied_before_temperature():
    # a high temperature flattens the distribution but does not let back what min-p cut
    logits = np.array([5.0, 4.0, 0.0, -1.0], np.float32)
    seen = {Sampler(SamplingSettings(temperature=5.0, top_k=0, top_p=1.0, min_p=0.05, seed=i))(logits, []) for i in range(300)}
    assert seen == {0, 1}
    assert math.exp(0.0 - 5.0) < 0.05 < math.exp(4.0 - 5.0)


@pytest.mark.parametrize("bad", [-0.1, 1.0, float("nan"), "high"])
def test_min_p_is_validated(bad):
    with pytest.raises(RequestError, match="Min[- ]p"):
        SamplingSettings(min_p=bad).validate()


def test_pack_recommendation_overrides_defaults(tiny_ggufs, tmp_path):
    """A GGUF's general.sampling.* keys travel to the pack; invalid ones are ignored."""
    import gguf

    from tests.gguf.tiny_gguf import tiny_llama, write_gguf

    model, tok = tiny_llama()
    extra = {
        "general.sampling.temp": (0.6, gguf.GGUFValueType.FLOAT32),
        "general.sampling.top_k": (20, gguf.GGUFValueType.INT32),
        "general.sampling.min_p": (7.0, gguf.GGUFValueType.FLOAT32),  # impossible: ignored
    }
    path = write_gguf(model, tok, tmp_path / "recommends.gguf", "Q8_0", extra=extra)
    pack = import_path(path, Library())
    assert pack.manifest["config"]["sampling"] == {"temperature": pytest.approx(0.6), "top_k": 20, "min_p": 7.0}
    s = pack_defaults(pack)
    assert (round(s.temperature, 4), s.top_k, s.top_p, s.min_p) == (0.6, 20, 0.95, 0.05)
    assert json.loads((pack.root / "generation_config.json").read_text())["top_k"] == 20


def test_pack_without_recommendation_gets_defaults(tiny_ggufs):
    pack = import_path(tiny_ggufs("Q8_0"), Library())
    assert pack_defaults(pack) == SamplingSettings()
    assert not (pack.root / "generation_config.json").exists()
