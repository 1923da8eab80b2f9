"""A GGUF file straight to a pack: greedy tokens equal transformers' own reading of the
same file, through the importer registry that the Library and the CLI share."""

from __future__ import annotations

import hashlib
import json

import pytest

from desktop.engines.text.gguf.convert import convert_gguf
from desktop.engines.packs.importers import import_path
from desktop.engines.packs.library import Library
from desktop.engines.packs.pack import write_manifest
from tests.gguf.tiny_gguf import hf_from_gguf, hf_greedy, pack_greedy

PROMPT = "The quick brown fox jumps over"


def _pack(path, folder, exact: bool):
    folder.mkdir()
    fields = convert_gguf(path, folder, exact_activations=exact)
    roles = fields.pop("_roles")
    write_manifest(folder, fields, roles)
    return folder


# tied files cover each embedding path: 8-bit table shared with the head (Q8_0), 4-bit
# values widened for the lookup (Q4_0), per-block float minimums added after it (Q4_1)
CASES = [(q, False) for q in ("F32", "F16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1")] + [(q, True) for q in ("Q8_0", "Q4_0", "Q4_1")]


@pytest.mark.parametrize("qtype,tied", CASES, ids=[f"{q}-{'tied' if t else 'untied'}" for q, t in CASES])
def test_greedy_tokens_match_transformers(tiny_ggufs, tiny_tok, tmp_path, qtype, tied):
    """Float activations: the graph is the file's weights evaluated exactly, so greedy
    decoding of a random model (small margins everywhere) follows transformers."""
    path = tiny_ggufs(qtype, tied)
    prompt = tiny_tok(PROMPT, add_special_tokens=False).input_ids
    want = hf_greedy(hf_from_gguf(path), prompt, 20)
    got = pack_greedy(_pack(path, tmp_path / "pack", exact=True), prompt, 20)
    assert sum(a == b for a, b in zip(got, want)) >= 19, (got, want)


@pytest.mark.parametrize("qtype", ["F32", "Q8_0", "Q4_1"])
def test_fast_mode_logits_stay_close(tiny_ggufs, tiny_tok, tmp_path, qtype):
    """The default (int8 activations, llama.cpp's arithmetic) moves logits a little, never
    structurally: first-step logits within 10% of their range, same top token."""
    import numpy as np
    import torch

    from desktop.engines.packs.pack import load_pack
    from desktop.engines.providers import RuntimeSettings
    from desktop.engines.text.backends import open_backend

    path = tiny_ggufs(qtype)
    prompt = tiny_tok(PROMPT, add_special_tokens=False).input_ids
    with torch.no_grad():
        want = hf_from_gguf(path)(torch.tensor([prompt])).logits[0, -1].numpy()
    backend = open_backend(load_pack(_pack(path, tmp_path / "pack", exact=False)), RuntimeSettings(), 256)
    got = backend.extend(prompt)
    backend.close()
    assert np.abs(got - want).max() < 0.1 * (want.max() - want.min())
    assert int(np.argmax(got)) == int(np.argmax(want))


def test_import_records_source_quant_mix_and_licence(tiny_ggufs):
    path = tiny_ggufs("Q4_1")
    lib = Library()
    pack = import_path(path, lib)
    m = pack.manifest
    assert pack.name == path.stem and pack.root.parent == lib.root
    assert m["runtime"] == "onnxruntime-genai" and m["architecture"] == "llama" and m["modality"] == "text"
    assert m["source"]["kind"] == "gguf" and m["source"]["file"] == path.name
    assert m["source"]["sha256"][path.name] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert m["config"]["quantization"]["source_types"] == {"Q4_1": 16}  # 7 matrices x 2 layers + embedding + output
    assert m["config"]["quantization"]["requantized"] is False
    assert m["license"]["id"] == "apache-2.0"
    assert m["precision"] == "int4" and m["config"]["chat"] is True
    assert (pack.root / "chat_template.jinja").is_file()
    assert not list(pack.root.glob("*.gguf"))  # the pack holds the converted graph, not a copy


def test_imported_pack_chats_through_the_text_engine(tiny_ggufs):
    from desktop.engines.text.sampling import SamplingSettings
    from desktop.engines.text.engine import ChatRequest, TextEngine

    pack = import_path(tiny_ggufs("Q8_0"), Library(), name="tiny-chat")
    engine = TextEngine(pack)
    try:
        assert "<|im_start|>user\nhello<|im_end|>" in engine.template.render([{"role": "user", "content": "hello"}])
        events = list(engine.generate(ChatRequest([{"role": "user", "content": "hello"}], max_tokens=8, sampling=SamplingSettings(temperature=0), ignore_eos=True)))
    finally:
        engine.backend.close()
    assert events[-1].__class__.__name__ == "Done"
    assert sum(1 for e in events if e.__class__.__name__ == "Token") >= 1


def test_a_gguf_without_chat_template_is_a_completion_model(tiny_ggufs):
    pack = import_path(tiny_ggufs("F16", chat=False), Library())
    assert pack.manifest["config"]["chat"] is False
    assert not (pack.root / "chat_template.jinja").exists()
    assert "chat_template" not in json.loads((pack.root / "tokenizer_config.json").read_text())
    assert "Completion model" in pack.manifest["model_card"]


def test_genai_config_names_only_pack_files(tiny_ggufs):
    from desktop.engines.packs.checks import preflight

    pack = import_path(tiny_ggufs("Q4_0"), Library())
    preflight(pack)  # the same checks the engine runs before loading: graph, runtime config, memory
    cfg = json.loads((pack.root / "genai_config.json").read_text())
    assert cfg["model"]["decoder"]["filename"] == "model.onnx"
    assert cfg["model"]["decoder"]["num_key_value_heads"] == 2 and cfg["model"]["decoder"]["head_size"] == 16


@pytest.mark.parametrize("qtype", ["Q4_K", "Q5_K", "Q6_K"])
def test_k_quants_match_transformers(tiny_tok, tmp_path, qtype):
    """K-quant files (random blocks: gguf cannot write these types) on a 256-wide model:
    sub-block scales map onto 4-bit (Q4_K) or 8-bit (Q5_K; Q6_K with 16-blocks) MatMulNBits."""
    import numpy as np
    import torch

    from desktop.engines.packs.pack import load_pack
    from desktop.engines.providers import RuntimeSettings
    from desktop.engines.text.backends import open_backend
    from tests.gguf.tiny_gguf import tiny_llama, write_gguf

    model, tok = tiny_llama(hidden=256, ffn=512, layers=1)
    path = write_gguf(model, tok, tmp_path / f"k-{qtype}.gguf", qtype)
    prompt = tiny_tok(PROMPT, add_special_tokens=False).input_ids
    reference = hf_from_gguf(path)
    with torch.no_grad():
        want_logits = reference(torch.tensor([prompt])).logits[0, -1].numpy()
    want = hf_greedy(reference, prompt, 20)
    pack = _pack(path, tmp_path / "pack", exact=True)
    backend = open_backend(load_pack(pack), RuntimeSettings(), 256)
    got_logits = backend.extend(prompt)
    backend.close()
    # the head stays at int8 activations (compensated): within 1% of the logit range
    assert np.abs(got_logits - want_logits).max() < 1e-2 * (want_logits.max() - want_logits.min())
    got = pack_greedy(pack, prompt, 20)
    assert sum(a == b for a, b in zip(got, want)) >= 19, (got, want)
    assert load_pack(pack).manifest["config"]["quantization"]["source_types"] == {qtype: 9}


@pytest.mark.parametrize("qtype", ["F32", "Q4_1"])
def test_qwen2_files_match_transformers(tiny_tok, tmp_path, qtype):
    """qwen2: Q/K/V biases, and Q/K rows already in NeoX order (nothing to undo)."""
    from tests.gguf.tiny_gguf import tiny_llama, write_gguf

    model, tok = tiny_llama(arch="qwen2")
    path = write_gguf(model, tok, tmp_path / f"qwen2-{qtype}.gguf", qtype)
    prompt = tiny_tok(PROMPT, add_special_tokens=False).input_ids
    want = hf_greedy(hf_from_gguf(path), prompt, 20)
    pack = _pack(path, tmp_path / "pack", exact=True)
    got = pack_greedy(pack, prompt, 20)
    assert sum(a == b for a, b in zip(got, want)) >= 19, (got, want)
    manifest = json.loads((pack / "manifest.json").read_text())
    assert manifest["architecture"] == "qwen2"
    assert json.loads((pack / "genai_config.json").read_text())["model"]["type"] == "qwen2"
