"""Tiny random llama and gpt2 -> our exporters -> our engine: greedy tokens equal PyTorch's."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM

from desktop.engines.errors import UnsupportedArchitectureError
from desktop.engines.events import Token
from desktop.engines.packs.pack import load_pack
from desktop.engines.text.sampling import SamplingSettings
from desktop.engines.text.engine import ChatRequest, TextEngine


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_engine_greedy_matches_pytorch(tiny_packs, kind):
    pack = load_pack(tiny_packs[kind])
    engine = TextEngine(pack)
    messages = [{"role": "user", "content": "Explain the with statement."}]
    request = ChatRequest(messages, max_tokens=24, sampling=SamplingSettings(temperature=0, repetition_penalty=1.0))
    ours = [ev.token_id for ev in engine.generate(request) if isinstance(ev, Token) and ev.token_id is not None]
    engine.close()

    model = AutoModelForCausalLM.from_pretrained(str(tiny_packs[kind].parent / f"hf-{kind}")).eval()
    prompt = engine.encode_chat(messages)
    with torch.inference_mode():
        out = model.generate(torch.tensor([prompt]), max_new_tokens=24, do_sample=False, eos_token_id=sorted(engine.eos_ids))
    theirs = [t for t in out[0, len(prompt) :].tolist() if t not in engine.eos_ids]
    assert len(ours) > 0
    assert ours == theirs


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_manifest_has_validation_report(tiny_packs, kind):
    manifest = json.loads((tiny_packs[kind] / "manifest.json").read_text())
    report = manifest["validation"]["reports"]["fp32"]
    assert report["teacher_forced_agreement"] == 1.0
    assert report["max_abs_logit_diff"] < 1e-3
    assert abs(report["perplexity_ratio"] - 1.0) < 1e-3
    assert report["prompts"] >= 5 and report["agreement_tokens"] > 0
    assert manifest["source"]["kind"] == "hf-folder" and manifest["source"]["sha256"]


@pytest.mark.parametrize("precision", ["int8", "int4"])
def test_quantized_tiny_llama_exports_and_runs(tmp_path, precision):
    from tests.tiny_models import export_tiny

    pack = load_pack(export_tiny("llama", tmp_path, precision))
    report = pack.manifest["validation"]["reports"][precision]
    assert pack.precision == precision
    assert report["perplexity_ratio"] < 1.1  # a random tiny model: quantization barely moves it
    engine = TextEngine(pack)
    tokens = [ev for ev in engine.generate(ChatRequest([{"role": "user", "content": "hi"}], max_tokens=5, sampling=SamplingSettings(temperature=0))) if isinstance(ev, Token)]
    engine.close()
    assert tokens


def test_unsupported_architecture_lists_supported(tmp_path):
    from exporters import export

    folder = tmp_path / "weird"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(UnsupportedArchitectureError) as info:
        export("text", folder, tmp_path / "out")
    assert "bert" in str(info.value) and "llama" in str(info.value) and "gpt2" in str(info.value)


def test_export_refuses_non_empty_output(tiny_packs, tmp_path, capsys):
    from exporters.__main__ import main

    out = tmp_path / "busy"
    out.mkdir()
    (out / "something").write_text("x")
    src = tiny_packs["gpt2"].parent / "hf-gpt2"
    assert main(["text", str(src), "--out", str(out)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (out / "something").read_text() == "x"
