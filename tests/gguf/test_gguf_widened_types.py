"""GGUF types with no MatMulNBits form (Q2_K, Q3_K, IQ*): stored at 8 bits (exactly where the
type is an integer grid times a block unit, else gguf's dequantization rounded to int8), with a
notice the import shows; the model still answers like transformers' reading of the same file."""

from __future__ import annotations

import numpy as np
import pytest
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize

from desktop.engines.packs.importers import import_path
from desktop.engines.packs.library import Library
from desktop.engines.text.gguf.quant import DEQUANTIZED, decode
from tests.gguf.tiny_gguf import hf_from_gguf, hf_greedy, random_k_blocks, tiny_llama, write_gguf

PROMPT = "The quick brown fox jumps over"


@pytest.mark.parametrize("name", ["IQ2_XXS", "IQ3_S"])
def test_decoded_weights_are_gguf_dequantize_within_int8_rounding(name):
    kind = T[name]
    assert kind in DEQUANTIZED
    rows, cols = 5, 512
    raw = random_k_blocks(kind, rows, cols, seed=3)
    weight = decode(kind, raw, rows, cols)
    want = dequantize(raw, kind).reshape(rows, cols)
    assert (weight.bits, weight.block, weight.zero, weight.offset) == (8, 32, None, None)
    got = weight.dequantize()
    # symmetric int8 per block of 32: at most half a step, amax / 254, off each value
    step = np.abs(want.reshape(rows, -1, 32)).max(-1, keepdims=True) / 127
    err = np.abs(got - want).reshape(rows, -1, 32)
    assert np.all(err <= step * 0.5 + 1e-7), float(err.max())
    assert np.abs(want).max() > 0.01  # real data, not zeros that trivially match


@pytest.mark.parametrize("name, block", [("IQ4_NL", 32), ("IQ4_XS", 32), ("Q3_K", 16), ("Q2_K", 16)])
def test_integer_grid_types_are_stored_at_8_bits_exactly(name, block):
    """IQ4 values are a block unit times an int8 grid value, Q3_K/Q2_K small integers times a
    16-value sub-block's scale (Q2_K minus its minimum): 8-bit blocks hold them with no second
    rounding (the symmetric amax/127 requantization cost IQ4_NL 0.977 agreement)."""
    kind = T[name]
    rows, cols = 6, 768
    raw = random_k_blocks(kind, rows, cols, seed=5)
    weight = decode(kind, raw, rows, cols)
    assert (weight.bits, weight.block) == (8, block)
    want = dequantize(raw, kind).reshape(rows, cols)
    got = weight.dequantize()
    # Q2_K's minimum goes through an integer zero point and a float remainder (as Q4_1's)
    np.testing.assert_allclose(got, want, rtol=0, atol=0 if name != "Q2_K" else 1e-6)
    assert np.abs(want).max() > 0.01 and len(np.unique(want)) > 100


@pytest.fixture(scope="module")
def wide_model():
    """IQ and K types need rows of 256 values: a 256-wide tiny llama."""
    return tiny_llama(seed=1, hidden=256, ffn=256, layers=2)


@pytest.mark.parametrize("name", ["IQ4_XS", "Q2_K", "IQ4_NL", "Q3_K"])
def test_import_widens_with_a_notice_and_follows_transformers(wide_model, tmp_path, name):
    model, tok = wide_model
    path = write_gguf(model, tok, tmp_path / f"tiny-{name}.gguf", name)
    lib = Library()
    pack = import_path(path, lib)
    q = pack.manifest["config"]["quantization"]
    assert q["requantized"] is True and q["source_types"][name] == 16
    assert name in q["notice"] and "8 bits" in q["notice"] and path.name in q["notice"]
    assert "\n" not in q["notice"] and q["notice"] in pack.manifest["model_card"]
    assert pack.manifest["precision"] == "int8"
    prompt = tok(PROMPT, add_special_tokens=False).input_ids
    want = hf_greedy(hf_from_gguf(path), prompt, 20)
    # teacher-forced: int8 activations (the default mode) may flip one close call;
    # free-running, that one flip would change every later token
    got = _teacher_forced_argmax(pack.root, prompt, want)
    assert sum(a == b for a, b in zip(got, want)) >= 19, (got, want)


def _teacher_forced_argmax(pack_dir, prompt: list[int], tokens: list[int]) -> list[int]:
    from desktop.engines.packs.pack import load_pack
    from desktop.engines.providers import RuntimeSettings
    from desktop.engines.text.backends import open_backend

    backend = open_backend(load_pack(pack_dir), RuntimeSettings(), 512)
    try:
        logits, out = backend.extend(prompt), []
        for token in tokens:
            out.append(int(np.argmax(logits)))
            logits = backend.extend([token])
        return out
    finally:
        backend.close()


def test_cli_import_prints_the_notice(wide_model, tmp_path, capsys):
    from desktop.cli import main as cli_main

    model, tok = wide_model
    path = write_gguf(model, tok, tmp_path / "tiny-IQ4_NL.gguf", "IQ4_NL")
    assert cli_main(["models", "import", str(path)]) == 0
    captured = capsys.readouterr()
    assert "imported 'tiny-IQ4_NL'" in captured.out
    assert "note: 'tiny-IQ4_NL.gguf': 16 of 16 tensors are IQ4_NL" in captured.err



def test_library_import_shows_the_notice(wide_model, tmp_path, qtbot, atelier_home):
    from desktop.settings import Settings
    from desktop.ui.library import LibraryPage
    from desktop.ui.main_window import AppContext
    from desktop.ui.notifier import Notifier
    from tests.desktop.app_helpers import messages

    ctx = AppContext(Settings(), Notifier(), Library())
    model, tok = wide_model
    path = write_gguf(model, tok, tmp_path / "tiny-Q2_K.gguf", "Q2_K")
    page = LibraryPage(ctx)
    qtbot.addWidget(page)
    assert page.import_path(path) is not None
    qtbot.waitUntil(lambda: any(m.startswith("Imported 'tiny-Q2_K'") for m in messages(ctx)), timeout=120_000)
    warnings = messages(ctx, "warning")
    assert any("tiny-Q2_K.gguf" in w and "8 bits" in w for w in warnings), warnings
