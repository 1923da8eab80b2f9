"""Each supported family: a tiny random model (transformers' own classes) written to GGUF the
way llama.cpp writes it, imported, and decoded greedily: tokens equal transformers' on the
same weights. The F32 files are compared with the very model that wrote them (transformers'
GGUF loader does not read every family's switches, e.g. Gemma3's local rope base), the
quantized files with transformers' reading of the file."""

from __future__ import annotations

import pytest

from desktop.engines.packs.importers import import_path
from desktop.engines.packs.library import Library
from tests.gguf.tiny_families import as_in_file, tiny_family, write_family_gguf
from tests.gguf.tiny_gguf import finish, hf_from_gguf, hf_greedy, pack_greedy

PROMPT = "The quick brown fox jumps over"
FAMILIES = ["mistral", "qwen3", "phi3", "gemma2", "gemma3"]


def _exact_pack(path, folder):
    from desktop.engines.packs.pack import write_manifest
    from desktop.engines.text.gguf.convert import convert_gguf

    folder.mkdir()
    fields = convert_gguf(path, folder, exact_activations=True)
    write_manifest(folder, fields, fields.pop("_roles"))
    return folder


@pytest.mark.parametrize("family", FAMILIES)
def test_family_greedy_tokens_match_transformers(family, tmp_path):
    model, tok = tiny_family(family)
    path = write_family_gguf(model, tok, tmp_path / f"tiny-{family}.gguf", family)
    prompt = tok(PROMPT, add_special_tokens=False).input_ids
    want = hf_greedy(model, prompt, 20)
    got = pack_greedy(_exact_pack(path, tmp_path / "pack"), prompt, 20)
    assert sum(a == b for a, b in zip(got, want)) >= 19, (got, want)


@pytest.mark.parametrize("family,qtype", [("mistral", "Q4_1")])
def test_quantized_family_files_match_transformers_reading_them(family, qtype, tmp_path):
    """transformers' own reading of a quantized file (mistral: a llama file named so)."""
    model, tok = tiny_family(family)
    path = write_family_gguf(model, tok, tmp_path / f"tiny-{family}-{qtype}.gguf", family, qtype)
    prompt = tok(PROMPT, add_special_tokens=False).input_ids
    want = hf_greedy(hf_from_gguf(path), prompt, 20)
    got = pack_greedy(_exact_pack(path, tmp_path / "pack"), prompt, 20)
    assert sum(a == b for a, b in zip(got, want)) >= 19, (got, want)


@pytest.mark.parametrize("family,qtype", [("qwen3", "Q8_0"), ("phi3", "Q4_0"), ("gemma2", "Q8_0"), ("gemma3", "Q4_1")])
def test_quantized_families_match_the_same_weights_dequantized(family, qtype, tmp_path):
    """transformers cannot read these back (qwen3's head size, phi3's padding id, gemma2's
    post-norms, gemma3's local rope base): the reference is the model that wrote the file with its matrices
    replaced by what the file dequantizes to. Imported through the library."""
    model, tok = tiny_family(family)
    path = write_family_gguf(model, tok, tmp_path / f"tiny-{family}-{qtype}.gguf", family, qtype)
    prompt = tok(PROMPT, add_special_tokens=False).input_ids
    want = hf_greedy(as_in_file(model, qtype), prompt, 20)
    pack = import_path(path, Library())
    assert pack.manifest["architecture"] == family and pack.manifest["config"]["quantization"]["requantized"] is False
    got = pack_greedy(_exact_pack(path, tmp_path / "pack"), prompt, 20)
    assert sum(a == b for a, b in zip(got, want)) >= 19, (got, want)


def _longrope_phi3(tmp_path, with_factors: bool = True):
    """A tiny Phi-3 whose original context (32) a 25-token prompt + 20 new tokens outgrows, so
    greedy decoding crosses from the short factors to the long ones; written the way
    convert_hf_to_gguf writes Phi-3 128k (factor tensors, original length, attn_factor)."""
    import math

    import gguf
    import numpy as np
    import transformers as tf

    from tests.tiny_models import tiny_tokenizer

    tok = tiny_tokenizer()
    rng = np.random.default_rng(0)
    long, short = (1 + rng.uniform(0, 3, 8)).tolist(), (1 + rng.uniform(0, 0.5, 8)).tolist()
    rope = {"rope_type": "longrope", "rope_theta": 10000.0, "long_factor": long, "short_factor": short, "original_max_position_embeddings": 32}
    cfg = tf.Phi3Config(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2, num_hidden_layers=2, max_position_embeddings=256,
        original_max_position_embeddings=32, rope_parameters=rope, initializer_range=0.25, rms_norm_eps=1e-6, pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id, tie_word_embeddings=False,
    )
    import torch

    torch.manual_seed(0)
    model = tf.Phi3ForCausalLM(cfg).eval()
    plain = write_family_gguf(model, tok, tmp_path / "phi3-plain.gguf", "phi3")
    reader = gguf.GGUFReader(str(plain))
    path = tmp_path / "phi3-128k.gguf"
    w = gguf.GGUFWriter(str(path), "phi3")
    for field in reader.fields.values():
        if field.name.startswith(("GGUF.", "general.architecture")):
            continue
        w.add_key_value(field.name, field.contents(), field.types[0], field.types[-1] if field.types[0] == gguf.GGUFValueType.ARRAY else None)
    for t in reader.tensors:
        w.add_tensor(t.name, np.array(t.data), raw_shape=tuple(reversed([int(x) for x in t.shape])), raw_dtype=t.tensor_type)
    w.add_uint32("phi3.rope.scaling.original_context_length", 32)
    w.add_float32("phi3.rope.scaling.attn_factor", math.sqrt(1 + math.log(256 / 32) / math.log(32)))
    w.add_tensor("rope_factors_long.weight", np.array(long, np.float32))
    if with_factors:
        w.add_tensor("rope_factors_short.weight", np.array(short, np.float32))
    finish(w)
    return model, tok, path


def test_long_context_phi3_follows_transformers_across_the_original_length(tmp_path):
    model, tok, path = _longrope_phi3(tmp_path)
    prompt = tok(PROMPT, add_special_tokens=False).input_ids
    assert len(prompt) < 32 < len(prompt) + 20
    want = _stepwise_greedy(model, prompt, 20)
    pack = import_path(path, Library())
    assert pack.manifest["architecture"] == "phi3"
    got = pack_greedy(_exact_pack(path, tmp_path / "pack"), prompt, 20)
    assert sum(a == b for a, b in zip(got, want)) >= 19, (got, want)
    # the short table alone (the graph before LongRoPE) decodes another model past position 32
    rotary = model.model.rotary_emb
    delattr(rotary, "long_inv_freq")
    rotary.register_buffer("long_inv_freq", rotary.original_inv_freq.clone(), persistent=False)
    assert sum(a == b for a, b in zip(_stepwise_greedy(model, prompt, 20), want)) < 19


def _stepwise_greedy(model, prompt: list[int], n: int) -> list[int]:
    """transformers' forward one token at a time with its cache: LongRoPE picks its table by
    the length so far, as the graph does (``generate`` took another route here and parted
    from both at the switch; llama.cpp picks by the context size it was opened with)."""
    import torch

    out, tokens = None, []
    with torch.no_grad():
        step = model(torch.tensor([prompt]), use_cache=True)
        for _ in range(n):
            tokens.append(int(step.logits[0, -1].argmax()))
            position = len(prompt) + len(tokens) - 1
            step = model(torch.tensor([[tokens[-1]]]), past_key_values=step.past_key_values, use_cache=True, position_ids=torch.tensor([[position]]))
    return tokens


def test_long_context_phi3_missing_a_factor_table_is_refused(tmp_path):
    from desktop.engines.text.gguf.reader import GGUFFormatError

    _, _, path = _longrope_phi3(tmp_path, with_factors=False)
    with pytest.raises(GGUFFormatError, match="LongRoPE rope factors but not both"):
        import_path(path, Library())


def test_mistral3_text_file_converts_as_the_llama_it_is(tmp_path):
    """llama.cpp writes Mistral Small 3.x as 'mistral3' with llama's tensors and Q/K
    permutation; the same weights named either way decode the same tokens, and those are
    transformers' own reading of the llama file."""
    from tests.gguf.tiny_gguf import tiny_llama, write_gguf

    model, tok = tiny_llama()
    llama = write_gguf(model, tok, tmp_path / "tiny-llama.gguf", "Q8_0")
    mistral3 = write_gguf(model, tok, tmp_path / "tiny-mistral3.gguf", "Q8_0", file_arch="mistral3")
    prompt = tok(PROMPT, add_special_tokens=False).input_ids
    want = hf_greedy(hf_from_gguf(llama), prompt, 20)
    pack = import_path(mistral3, Library())
    assert pack.manifest["architecture"] == "mistral3"
    got = pack_greedy(_exact_pack(mistral3, tmp_path / "pack"), prompt, 20)
    assert sum(a == b for a, b in zip(got, want)) >= 19, (got, want)
    assert pack_greedy(pack.root, prompt, 20) == pack_greedy(import_path(llama, Library(), name="as-llama").root, prompt, 20)


@pytest.mark.parametrize("key,value", [("mistral3.rope.scaling.type", "yarn"), ("mistral3.attention.temperature_scale", 0.1)])
def test_mistral3_with_yarn_or_attention_temperature_is_refused_by_name(tmp_path, key, value):
    import gguf

    from desktop.engines.text.gguf.reader import GGUFFormatError
    from tests.gguf.tiny_gguf import tiny_llama, write_gguf

    model, tok = tiny_llama()
    kind = gguf.GGUFValueType.STRING if isinstance(value, str) else gguf.GGUFValueType.FLOAT32
    path = write_gguf(model, tok, tmp_path / "ministral.gguf", "Q8_0", file_arch="mistral3", extra={key: (value, kind)})
    with pytest.raises(GGUFFormatError, match="mistral3 model with .*(yarn|temperature)"):
        import_path(path, Library())


def test_gemma2_final_logit_softcap_is_applied(tmp_path):
    """Gemma 2 caps its logits (cap * tanh(logits / cap)). Greedy tokens never showed the cap
    missing (tanh keeps the order); a sampler does. A small cap makes it visible."""
    import numpy as np
    import torch

    from desktop.engines.packs.pack import load_pack
    from desktop.engines.providers import RuntimeSettings
    from desktop.engines.text.backends import open_backend

    model, tok = tiny_family("gemma2")
    model.config.final_logit_softcapping = 0.5
    path = write_family_gguf(model, tok, tmp_path / "tiny-gemma2.gguf", "gemma2")
    prompt = tok(PROMPT, add_special_tokens=False).input_ids
    with torch.no_grad():
        want = model(torch.tensor([prompt])).logits[0, -1].numpy()
    backend = open_backend(load_pack(_exact_pack(path, tmp_path / "pack")), RuntimeSettings(), 512)
    try:
        got = np.asarray(backend.extend(prompt), np.float32).reshape(-1)
    finally:
        backend.close()
    assert np.abs(want).max() <= 0.5 and np.abs(want).max() > 0.3  # the cap shapes these logits
    np.testing.assert_allclose(got, want, atol=2e-3)
