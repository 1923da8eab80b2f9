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


def _ancestors(name: str, made_by: dict) -> set[str]:
    """Names of the nodes ``name`` is computed from."""
    seen, todo = set(), [name]
    while todo:
        node = made_by.get(todo.pop())
        if node is not None and node.name not in seen:
            seen.add(node.name)
            todo.extend(node.input)
    return seen


@pytest.mark.parametrize("qtype,tied,head_filter", [("Q8_0", True, False), ("Q4_1", False, False), ("Q4_0", True, False), ("Q8_0", True, True), ("Q4_1", False, True)])
def test_head_runs_once_and_its_best_logits_are_exact(tiny_ggufs, tiny_tok, tmp_path, qtype, tied, head_filter):
    """Every layer at float activations and the head at int8 ones (the default head): the
    logits a sampler can pick from equal a float evaluation of the file's weights, also when
    a 4-bit copy of the head only picks the candidates (``head_filter``)."""
    path = tiny_ggufs(qtype, tied)
    pack = _pack(path, tmp_path / "pack", float_roles=ROLES, head_filter=head_filter)
    nodes = _nodes(pack)
    made_by = {o: n for n in nodes for o in n.output}
    reads = lambda weight: sorted(made_by[n.input[0]].name.rsplit("/", 1)[-1] for n in nodes if n.op_type == "MatMulNBits" and n.input[1] == weight)  # noqa: E731
    # one pass for the positions before the last (none in a decode step), one for the last
    if head_filter:
        assert reads("/lm_head.qweight") == ["EarlierHidden"] and reads("/lm_head/candidates.qweight") == ["LastHidden"]
    else:
        assert reads("/lm_head.qweight") == ["EarlierHidden", "LastHidden"]
    # candidates of the last position only: a 4,096-token prompt chunk must not gather 4,096 x 64 rows
    (top,) = [n for n in nodes if n.op_type == "TopK"]
    sources = _ancestors(top.input[0], made_by)
    assert any(n.endswith("LastHidden") for n in sources) and not any(n.endswith("EarlierHidden") for n in sources)
    prompt = tiny_tok(PROMPT, add_special_tokens=False).input_ids
    model = hf_from_gguf(path)
    backend = open_backend(load_pack(pack), RuntimeSettings(), 256)
    # the prompt, then two one-token steps (no earlier positions: that head pass is empty)
    steps = [backend.extend(prompt)]
    for _ in range(2):
        steps.append(backend.extend([int(np.argmax(steps[-1]))]))
    backend.close()
    ids = prompt + [int(np.argmax(g)) for g in steps[:-1]]
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].numpy()
    for got, want in zip(steps, logits[len(prompt) - 1 :]):
        best = np.argsort(-want)[:40]
        assert np.abs(got[best] - want[best]).max() < 1e-4 * (want.max() - want.min())
        assert int(np.argmax(got)) == int(np.argmax(want))


def test_packed_qkv_feeds_attention_directly(tiny_ggufs, tmp_path):
    nodes = _nodes(_pack(tiny_ggufs("Q4_1"), tmp_path / "pack"))
    attention = [n for n in nodes if n.op_type == "GroupQueryAttention"]
    assert attention and all(list(n.input[1:3]) == ["", ""] for n in attention)
    assert sum(n.op_type == "Split" for n in nodes) == len(attention)  # gate/up only
