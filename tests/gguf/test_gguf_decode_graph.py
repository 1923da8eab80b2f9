"""The decode graph's shape: what each generated token costs. The head matrix is read once
per token (its best candidates rescored exactly from their own rows, not a second pass over
the whole head), and packed Q/K/V go into GroupQueryAttention without a Split."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from desktop.engines.packs.pack import load_pack, write_manifest
from desktop.engines.providers import RuntimeSettings
from desktop.engines.text.backends import open_backend
from desktop.engines.text.gguf.convert import convert_gguf
from desktop.engines.text.gguf.llama_graph import ROLES
from tests.gguf.tiny_gguf import hf_from_gguf

PROMPT = "The quick brown fox jumps over"


def _pack(path, folder, **options):
    folder.mkdir()
    fields = convert_gguf(path, folder, **options)
    write_manifest(folder, fields, fields.pop("_roles"))
    return folder


def _nodes(folder) -> list:
    return list(onnx.load(str(folder / "model.onnx"), load_external_data=False).graph.node)


@pytest.mark.parametrize("qtype,tied", [("Q8_0", True), ("Q4_1", False), ("Q4_0", True)])
def test_head_runs_once_and_its_best_logits_are_exact(tiny_ggufs, tiny_tok, tmp_path, qtype, tied):
    """Every layer at float activations and the head at int8 ones (the default head): the
    logits a sampler can pick from equal a float evaluation of the file's weights."""
    path = tiny_ggufs(qtype, tied)
    pack = _pack(path, tmp_path / "pack", float_roles=ROLES)
    nodes = _nodes(pack)
    head_reads = [n for n in nodes if n.op_type == "MatMulNBits" and n.input[1] == "/lm_head.qweight"]
    assert len(head_reads) == 1
    # candidates of the last position only: a 4,096-token prompt chunk must not gather 4,096 x 64 rows
    made_by = {o: n for n in nodes for o in n.output}
    (top,) = [n for n in nodes if n.op_type == "TopK"]
    assert made_by[top.input[0]].op_type == "Slice"
    prompt = tiny_tok(PROMPT, add_special_tokens=False).input_ids
    with torch.no_grad():
        want = hf_from_gguf(path)(torch.tensor([prompt])).logits[0, -1].numpy()
    backend = open_backend(load_pack(pack), RuntimeSettings(), 256)
    got = backend.extend(prompt)
    backend.close()
    best = np.argsort(-want)[:40]
    assert np.abs(got[best] - want[best]).max() < 1e-4 * (want.max() - want.min())
    assert int(np.argmax(got)) == int(np.argmax(want))


def test_packed_qkv_feeds_attention_directly(tiny_ggufs, tmp_path):
    nodes = _nodes(_pack(tiny_ggufs("Q4_1"), tmp_path / "pack"))
    attention = [n for n in nodes if n.op_type == "GroupQueryAttention"]
    assert attention and all(list(n.input[1:3]) == ["", ""] for n in attention)
    assert sum(n.op_type == "Split" for n in nodes) == len(attention)  # gate/up only
