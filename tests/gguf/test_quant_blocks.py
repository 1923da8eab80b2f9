"""GGUF quant blocks -> MatMulNBits blocks: the weights the graph computes with equal
``gguf.quants.dequantize`` of the file, bit for bit (fp32 rounding of Q4_1/Q5_1/K offsets
aside, which these cases never hit)."""

from __future__ import annotations

import numpy as np
import pytest
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize, quantize

from desktop.engines.text.gguf.quant import BLOCK_LAYOUT, decode

# which byte offsets of a block hold fp16 scales/minimums, per type
_FP16_FIELDS = {T.Q8_0: (0,), T.Q4_0: (0,), T.Q4_1: (0, 2), T.Q5_0: (0,), T.Q5_1: (0, 2), T.Q4_K: (0, 2), T.Q5_K: (0, 2), T.Q6_K: (208,)}


def random_blocks(kind, rows: int, cols: int, seed: int = 0) -> np.ndarray:
    """Raw bytes of ``kind`` with every quant field random and the fp16 fields finite:
    covers K-quants, which gguf can read but not write."""
    rng = np.random.default_rng(seed)
    size, per = BLOCK_LAYOUT[kind]
    raw = rng.integers(0, 256, (rows, cols // per, size), dtype=np.uint8)
    for off in _FP16_FIELDS[kind]:
        halves = rng.uniform(-0.05, 0.05, raw.shape[:2]).astype(np.float16)
        raw[..., off : off + 2] = halves.view(np.uint8).reshape(*raw.shape[:2], 2)
    return raw.reshape(rows, -1)


@pytest.mark.parametrize("kind", list(BLOCK_LAYOUT), ids=lambda k: k.name)
def test_every_block_type_decodes_to_gguf_dequantize_exactly(kind):
    rows, cols = 6, 512
    raw = random_blocks(kind, rows, cols)
    weight = decode(kind, raw, rows, cols)
    np.testing.assert_array_equal(weight.dequantize(), dequantize(raw, kind).reshape(rows, cols))
    assert weight.bits in (4, 8) and weight.block in (16, 32)
    assert weight.q.max() < 2**weight.bits


@pytest.mark.parametrize("name", ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"])
def test_real_quantized_weights_decode_exactly(name):
    kind = T[name]
    w = np.random.default_rng(1).normal(0, 0.3, (64, 256)).astype(np.float32)
    raw = quantize(w, kind)
    np.testing.assert_array_equal(decode(kind, raw, 64, 256).dequantize(), dequantize(raw, kind))


@pytest.mark.parametrize("name", ["F32", "F16", "BF16"])
def test_float_types_stay_float(name):
    kind = T[name]
    w = np.random.default_rng(2).normal(0, 1, (8, 32)).astype(np.float32)
    raw = quantize(w, kind)
    np.testing.assert_array_equal(decode(kind, raw.view(np.uint8), 8, 32), dequantize(raw, kind))


def _graph_weight(model, node, folder) -> np.ndarray:
    """Reconstruct [N, K] from a MatMulNBits node (+ its offset correction), reading the
    initializers the way the op defines them, independently of our packing code."""
    from onnx import numpy_helper

    inits = {t.name: t for t in model.graph.initializer}
    arr = lambda name: numpy_helper.to_array(inits[name], base_dir=str(folder))  # noqa: E731
    attrs = {a.name: a.i for a in node.attribute}
    bits, block, n, k = attrs["bits"], attrs["block_size"], attrs["N"], attrs["K"]
    data = arr(node.input[1])
    q = np.stack([data & 0xF, data >> 4], -1).reshape(n, k // block, block) if bits == 4 else data.reshape(n, k // block, block)
    scales = arr(node.input[2]).reshape(n, -1)
    if len(node.input) > 3 and node.input[3]:
        zp = arr(node.input[3])
        zero = np.stack([zp & 0xF, zp >> 4], -1).reshape(n, -1)[:, : k // block] if bits == 4 else zp.reshape(n, -1)
    else:
        zero = np.full(scales.shape, 2 ** (bits - 1))
    w = (q.astype(np.float32) - zero[..., None]) * scales[..., None]
    out = node.output[0]
    add = next((nd for nd in model.graph.node if nd.op_type == "Add" and out in nd.input and nd.name.endswith("/AddOffsets")), None)
    if add is not None:  # the exact float minimum: blocksums(a) @ offsets
        correction = next(nd for nd in model.graph.node if nd.output[0] in add.input and nd.op_type == "MatMul")
        w += arr(correction.input[1]).T[..., None]
    return w.reshape(n, k)


@pytest.mark.parametrize("qtype", ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"])
def test_graph_weights_equal_the_files_dequantized_weights(tiny_ggufs, tmp_path, qtype):
    import onnx

    from desktop.engines.text.gguf.convert import convert_gguf
    from desktop.engines.text.gguf.reader import open_gguf

    path = tiny_ggufs(qtype)
    convert_gguf(path, tmp_path)
    model = onnx.load(str(tmp_path / "model.onnx"), load_external_data=False)
    gf = open_gguf(path)
    nodes = {nd.name: nd for nd in model.graph.node if nd.op_type == "MatMulNBits"}
    checked = 0
    for layer in range(2):
        for graph_name, tensors in ((f"/model/layers.{layer}/mlp/down_proj/MatMulNBits", ["ffn_down"]), (f"/model/layers.{layer}/mlp/gate_up_proj/MatMulNBits", ["ffn_gate", "ffn_up"]), (f"/model/layers.{layer}/attn/o_proj/MatMulNBits", ["attn_output"])):
            got = _graph_weight(model, nodes[graph_name], tmp_path)
            want = np.concatenate([_file_weight(gf, f"blk.{layer}.{t}.weight") for t in tensors])
            np.testing.assert_allclose(got, want, rtol=0, atol=np.abs(want).max() * 2**-22)
            checked += 1
    # Q and K rows come back in Hugging Face order (the file's rotary permutation undone)
    qkv = _graph_weight(model, nodes["/model/layers.0/attn/qkv_proj/MatMulNBits"], tmp_path)
    v = _file_weight(gf, "blk.0.attn_v.weight")
    np.testing.assert_allclose(qkv[-v.shape[0]:], v, rtol=0, atol=np.abs(v).max() * 2**-22)
    assert checked == 6


def _file_weight(gf, name):
    t = gf.tensors[name]
    return dequantize(t.read(), t.kind).reshape(t.rows, t.cols)
