"""The int4 scheme of decoder packs (exporters/quantize/int4.py) on a tiny random llama.

The llama's linear weights are first snapped onto a GGUF Q4_1 grid and its tied embedding
onto Q8_0, as in SmolLM2's GGUF: there the scheme must be near-lossless, while a plain
integer-zero-point 4-bit grid on the same weights is measurably off.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from exporters import quantize
from exporters.quantize import blockquant as bq
from exporters.text.validate import OnnxLogits

IDS = [5, 17, 42, 99, 150, 7, 64, 200, 31, 8, 250, 12]


def _snap_q4_1(weight: torch.Tensor) -> torch.Tensor:
    """[out, in] -> the same values rounded to d * q + m per block of 32 inputs."""
    w = weight.reshape(weight.shape[0], -1, 32)
    lo, hi = w.amin(-1, keepdim=True), w.amax(-1, keepdim=True)
    d = (hi - lo) / 15
    return (torch.round((w - lo) / d) * d + lo).reshape(weight.shape)


def _snap_q8_0(weight: torch.Tensor) -> torch.Tensor:
    w = weight.reshape(weight.shape[0], -1, 32)
    d = w.abs().amax(-1, keepdim=True) / 127
    return (torch.round(w / d) * d).reshape(weight.shape)


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    """{"fp32": folder, "int4": folder, "counts": ..., "vocab": n} for a Q4_1-grid tiny llama."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from exporters import open_config
    from tests.tiny_models import tiny_tokenizer

    root = tmp_path_factory.mktemp("int4")
    tok = tiny_tokenizer()
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=256, tie_word_embeddings=True, eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id,
    )
    model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, torch.nn.Linear) and "lm_head" not in name:
                module.weight.copy_(_snap_q4_1(module.weight * 4))  # x4: weights big enough to matter
        model.model.embed_tokens.weight.copy_(_snap_q8_0(model.model.embed_tokens.weight))
    hf = root / "hf"
    model.save_pretrained(str(hf))
    tok.save_pretrained(str(hf))
    export = open_config("text", hf)
    fp32 = export.convert(root / "work")
    int4 = root / "int4"
    int4.mkdir()
    quantize.copy_side_files(fp32, int4)
    counts = quantize.int4_offset_corrected(fp32 / "model.onnx", int4 / "model.onnx", head_rows=cfg.vocab_size)
    plain = root / "plain"
    plain.mkdir()
    quantize.copy_side_files(fp32, plain)
    quantize.matmul_nbits(fp32 / "model.onnx", plain / "model.onnx", bits=4)
    return {"fp32": fp32, "int4": int4, "plain": plain, "counts": counts, "vocab": cfg.vocab_size}


def _logits(folder, ids=IDS):
    return OnnxLogits(folder / "model.onnx", kv_heads=2, head_dim=16)(ids)


def test_every_linear_is_corrected_and_the_embedding_shares_the_head(graphs):
    import onnx

    counts = graphs["counts"]
    assert counts == {"corrected_4bit": 10, "plain_4bit": 0, "head_8bit": 1, "merged_groups": 2, "float_activations": 0, "embedding": "shares the 8-bit head"}
    model = onnx.load(str(graphs["int4"] / "model.onnx"), load_external_data=False)
    ops = [n.op_type for n in model.graph.node]
    assert "MatMul" not in ops and "Transpose" not in ops
    # per layer: qkv, o, gate+up as one (then Split), down; plus the head
    assert ops.count("MatMulNBits") == 9 and ops.count("Split") == 2 and ops.count("GatherBlockQuantized") == 1
    # no float copy of the embedding table survives: the lookup reads the 8-bit head
    floats = [list(t.dims) for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT and len(t.dims) == 2]
    assert [64, graphs["vocab"]] not in floats and [graphs["vocab"], 64] not in floats


def test_attention_inputs_can_keep_float_activations(graphs, tmp_path):
    import onnx

    src = graphs["fp32"] / "model.onnx"
    counts = quantize.int4_offset_corrected(src, tmp_path / "model.onnx", head_rows=graphs["vocab"], attention_accuracy_level=1)
    assert counts["float_activations"] == 2
    model = onnx.load(str(tmp_path / "model.onnx"), load_external_data=False)
    levels = {n.name: {a.name: a.i for a in n.attribute}["accuracy_level"] for n in model.graph.node if n.op_type == "MatMulNBits"}
    assert sorted(name for name, level in levels.items() if level == 1) == ["/model/layers.0/attn/qkv_proj/MatMul_Q", "/model/layers.1/attn/qkv_proj/MatMul_Q"]


def test_int4_logits_stay_close_to_fp32_where_plain_int4_does_not(graphs):
    ref = _logits(graphs["fp32"])
    ours = np.abs(_logits(graphs["int4"]) - ref).max()
    plain = np.abs(_logits(graphs["plain"]) - ref).max()
    spread = ref.max() - ref.min()
    # what remains is int8 activation rounding (accuracy level 4) and the 4-bit correction rows
    assert ours < 0.03 * spread, (ours, spread)
    assert ours < plain / 3, (ours, plain)


def test_weights_alone_are_reproduced_exactly_without_activation_rounding(tmp_path):
    """One MatMul on a Q4_1 grid, accuracy level 1 (float activations): only the 4-bit
    correction rows remain, which are ~1/15 of the zero-point rounding they correct."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    k, n = 96, 24
    w = torch.from_numpy(rng.standard_normal((n, k)).astype(np.float32))
    weight = _snap_q4_1(w).numpy().T.copy()  # [K, N] as ONNX stores it
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["A", "W"], ["Y"], name="mm")], "g",
        [helper.make_tensor_value_info("A", TensorProto.FLOAT, [1, "s", k])], [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, "s", n])],
        [numpy_helper.from_array(weight, "W")],
    )
    src, dst = tmp_path / "f.onnx", tmp_path / "q.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(src))
    assert quantize.int4_offset_corrected(src, dst, accuracy_level=1)["corrected_4bit"] == 1

    import onnxruntime as ort

    a = rng.standard_normal((1, 5, k)).astype(np.float32)
    got = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"]).run(None, {"A": a})[0]
    exact = a @ weight
    q, scale, zero, offset = bq.asymmetric_4bit(bq.to_blocks(weight, 32))
    rounded = a @ bq.dequantize(q, scale, zero).reshape(n, -1).T  # integer zero points, no correction
    assert np.abs(got - exact).max() < np.abs(rounded - exact).max() / 8
    assert np.abs(got - exact).max() < 1e-2 * np.abs(exact).max()


def test_int4_graph_runs_in_onnxruntime_genai(graphs):
    import onnxruntime_genai as og

    folder = graphs["int4"]
    config = json.loads((folder / "genai_config.json").read_text())
    assert config["model"]["decoder"]["filename"] == "model.onnx"
    model = og.Model(str(folder))
    params = og.GeneratorParams(model)
    params.set_search_options(max_length=64)
    generator = og.Generator(model, params)
    generator.append_tokens(np.asarray(IDS, dtype=np.int32))
    logits = [np.asarray(generator.get_logits())[0, -1]]
    fed = list(IDS)
    for _ in range(8):  # greedy decode through the in-place KV cache
        token = int(logits[-1].argmax())
        fed.append(token)
        generator.append_tokens(np.asarray([token], dtype=np.int32))
        logits.append(np.asarray(generator.get_logits())[0, -1])
    # the genai token loop and a full-sequence pass over the same tokens agree
    full = _logits(folder, fed)[len(IDS) - 1 :]
    assert np.abs(np.stack(logits) - full).max() < 0.05 * (full.max() - full.min())
    reference = _logits(graphs["fp32"], fed)[len(IDS) - 1 :]
    assert (np.stack(logits).argmax(-1) == reference.argmax(-1)).mean() >= 0.75
