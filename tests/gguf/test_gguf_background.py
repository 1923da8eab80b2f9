"""The GGUF import as worker events: per-layer progress, and a Cancel that leaves nothing."""

from __future__ import annotations

from desktop.engines.events import Progress
from desktop.engines.packs.library import Library
from desktop.engines.text.gguf.background import import_gguf_events


def _library_is_empty(lib: Library) -> bool:
    return not [e for e in lib.entries() if e.manifest] and not [p for p in lib.root.iterdir() if not p.name.startswith(".")]


def test_progress_per_layer_then_the_pack(tiny_ggufs):
    lib = Library()
    events = list(import_gguf_events(tiny_ggufs("Q4_0"), lib))
    fractions = [e.fraction for e in events if isinstance(e, Progress)]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and fractions == sorted(fractions) and len(fractions) == 3  # start + 2 layers
    pack = events[-1]
    assert pack.manifest["source"]["kind"] == "gguf" and [e.name for e in lib.entries() if e.manifest] == [pack.name]


def test_cancel_during_the_conversion_leaves_nothing(tmp_path):
    """Closed after the first layer's report (as the worker's Cancel does): the conversion
    stops at its next layer and the staging folder goes with it."""
    from tests.gguf.tiny_gguf import tiny_llama, write_gguf

    model, tok = tiny_llama(layers=6)
    path = write_gguf(model, tok, tmp_path / "six-layers.gguf", "Q8_0")
    lib = Library()
    events = import_gguf_events(path, lib)
    assert next(events).fraction == 0.0
    first = next(events)
    assert isinstance(first, Progress) and "layer 1 of 6" in first.message
    events.close()
    assert _library_is_empty(lib), list(lib.root.iterdir())


def test_a_damaged_file_raises_its_one_line_error(tmp_path):
    import pytest

    from desktop.engines.text.gguf.reader import GGUFFormatError

    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\xff" * 16)
    lib = Library()
    with pytest.raises(GGUFFormatError) as err:
        list(import_gguf_events(bad, lib))
    assert "broken.gguf" in str(err.value) and "\n" not in str(err.value)
    assert _library_is_empty(lib)
