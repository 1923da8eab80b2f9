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
from tests.gguf.tiny_gguf import hf_from_gguf, hf_greedy, pack_greedy

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


def test_long_context_phi3_is_refused_rather_than_converted_wrongly(tmp_path):
    import gguf
    import numpy as np

    from desktop.engines.text.gguf.reader import GGUFFormatError

    model, tok = tiny_family("phi3")
    path = write_family_gguf(model, tok, tmp_path / "phi3.gguf", "phi3")
    reader = gguf.GGUFReader(str(path))
    longrope = tmp_path / "phi3-128k.gguf"
    w = gguf.GGUFWriter(str(longrope), "phi3")
    for field in reader.fields.values():
        if field.name.startswith(("GGUF.", "general.architecture")):
            continue
        value = field.contents()
        w.add_key_value(field.name, value, field.types[0], field.types[-1] if field.types[0] == gguf.GGUFValueType.ARRAY else None)
    for t in reader.tensors:
        w.add_tensor(t.name, np.array(t.data), raw_shape=tuple(reversed([int(x) for x in t.shape])), raw_dtype=t.tensor_type)
    w.add_tensor("rope_factors_long.weight", np.ones(8, np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(GGUFFormatError, match="LongRoPE"):
        import_path(longrope, Library())
    assert not [e for e in Library().entries() if e.manifest]


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
