"""Damaged, truncated, lying or unsupported GGUF files: one typed error naming the file,
one line long, and nothing left in the library."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from desktop.engines.errors import ImportFormatError
from desktop.engines.text.gguf.reader import GGUFFormatError, open_gguf
from desktop.engines.packs.importers import import_path
from desktop.engines.packs.library import Library


def _refused(path, match: str):
    lib = Library()
    with pytest.raises(GGUFFormatError, match=match) as info:
        import_path(path, lib)
    assert isinstance(info.value, ImportFormatError)
    assert "\n" not in str(info.value) and path.name in str(info.value)
    assert not [p for p in lib.root.glob("*") if not p.name.startswith(".")]  # nothing half-imported
    return info.value


def _copy(tiny_ggufs, tmp_path, name="bad.gguf") -> tuple[bytearray, object]:
    data = bytearray(tiny_ggufs("Q4_0").read_bytes())
    return data, tmp_path / name


def _tensor_info_at(data: bytearray, name: str) -> int:
    """Offset of the tensor info fields (n_dims) following ``name`` in the header."""
    encoded = name.encode()
    return data.index(struct.pack("<Q", len(encoded)) + encoded) + 8 + len(encoded)


def test_not_a_gguf(tmp_path):
    path = tmp_path / "notes.gguf"
    path.write_text("just some text that happens to be named .gguf")
    _refused(path, "not a GGUF file")


def test_truncated_in_the_weights(tiny_ggufs, tmp_path):
    data, path = _copy(tiny_ggufs, tmp_path)
    path.write_bytes(data[: len(data) // 2])
    _refused(path, "runs past the end")


def test_truncated_in_the_header(tiny_ggufs, tmp_path):
    data, path = _copy(tiny_ggufs, tmp_path)
    path.write_bytes(data[:300])
    _refused(path, "damaged|more than")


def test_lying_tensor_count(tiny_ggufs, tmp_path):
    data, path = _copy(tiny_ggufs, tmp_path)
    data[8:16] = struct.pack("<Q", 2**40)
    path.write_bytes(data)
    _refused(path, "claims 1,099,511,627,776 tensors")


def test_lying_tensor_offset(tiny_ggufs, tmp_path):
    data, path = _copy(tiny_ggufs, tmp_path)
    at = _tensor_info_at(data, "blk.1.ffn_down.weight")
    dims = struct.unpack_from("<I", data, at)[0]
    struct.pack_into("<Q", data, at + 4 + 8 * dims + 4, 2**50)
    path.write_bytes(data)
    _refused(path, "blk.1.ffn_down.weight.*runs past the end")


def test_lying_array_length(tiny_ggufs, tmp_path):
    data, path = _copy(tiny_ggufs, tmp_path)
    key = b"tokenizer.ggml.tokens"
    at = data.index(struct.pack("<Q", len(key)) + key) + 8 + len(key)
    struct.pack_into("<Q", data, at + 4 + 4, 2**45)  # value type, item type, then the count
    path.write_bytes(data)
    _refused(path, "claims .* items")


def test_unknown_tensor_type(tiny_ggufs, tmp_path):
    data, path = _copy(tiny_ggufs, tmp_path)
    at = _tensor_info_at(data, "blk.0.attn_q.weight")
    dims = struct.unpack_from("<I", data, at)[0]
    struct.pack_into("<I", data, at + 4 + 8 * dims, 999)
    path.write_bytes(data)
    _refused(path, "unknown type 999")


def test_quant_type_we_cannot_map_is_named_with_the_supported_lists(tiny_ggufs, tmp_path):
    """I8 (1 byte per value, no block scale) is a type neither MatMulNBits nor gguf's
    dequantizer takes: refused by name, with what is kept exact and what is widened."""
    from gguf import GGMLQuantizationType

    data, path = _copy(tiny_ggufs, tmp_path)
    at = _tensor_info_at(data, "blk.0.attn_q.weight")
    dims = struct.unpack_from("<I", data, at)[0]
    struct.pack_into("<I", data, at + 4 + 8 * dims, int(GGMLQuantizationType.I8))
    path.write_bytes(data)
    error = _refused(path, "is I8, which Atelier cannot convert")
    assert "Q4_K" in str(error) and "IQ4_XS" in str(error) and "stored at 8 bits" in str(error)


def test_other_architectures_are_refused_by_name(tmp_path):
    import gguf

    path = tmp_path / "other.gguf"
    w = gguf.GGUFWriter(str(path), "mamba")
    w.add_tensor("token_embd.weight", np.zeros((4, 32), np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    _refused(path, "'mamba' model")


def test_missing_tensor_is_named(tiny_ggufs, tmp_path):
    data, path = _copy(tiny_ggufs, tmp_path)
    name = b"blk.1.ffn_up.weight"
    at = data.index(struct.pack("<Q", len(name)) + name)
    data[at + 8 : at + 8 + len(name)] = b"blk.1.ffn_xx.weight"
    path.write_bytes(data)
    _refused(path, "no tensor 'blk.1.ffn_up.weight'")


def test_header_parse_is_bounded(tiny_ggufs):
    gf = open_gguf(tiny_ggufs("Q4_0"))
    assert gf.architecture == "llama" and len(gf.array("tokenizer.ggml.tokens")) == gf.get("llama.vocab_size")
    t = gf.tensors["token_embd.weight"]
    assert t.read().nbytes == t.nbytes and t.offset + t.nbytes <= gf.size


def test_moe_and_multimodal_files_are_refused_by_name(tmp_path):
    """A mixture-of-experts or vision GGUF says what it is, not "unknown architecture"."""
    import gguf

    from desktop.engines.text.gguf.convert import convert_gguf
    from desktop.engines.text.gguf.reader import GGUFFormatError

    def write(name: str, arch: str, **keys):
        w = gguf.GGUFWriter(str(tmp_path / name), arch)
        for key, value in keys.items():
            w.add_uint32(key, value)
        w.add_tensor("token_embd.weight", np.zeros((8, 32), np.float32))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        return tmp_path / name

    cases = {"mixture-of-experts": write("moe.gguf", "qwen3moe", **{"qwen3moe.expert_count": 8}), "multimodal": write("vl.gguf", "qwen2vl"), "'mamba' model": write("ssm.gguf", "mamba")}
    for said, path in cases.items():
        (tmp_path / "out").mkdir()
        with pytest.raises(GGUFFormatError) as err:
            convert_gguf(path, tmp_path / "out")
        assert said in str(err.value) and "gemma3" in str(err.value)
        assert not list((tmp_path / "out").iterdir())
        (tmp_path / "out").rmdir()
