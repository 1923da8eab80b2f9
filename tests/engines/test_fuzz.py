"""Fuzz: >= 200 generated malformed packs and inputs through the loaders, engines and
CLI - zero crashes, every failure a typed AtelierError with a clear message, nothing
written outside the library and the output folder."""

from __future__ import annotations

import pytest

from tests.fuzz_runner import _snapshot, run_fuzz, summarize
from tests.tiny_sources import tiny_text_pack  # noqa: F401 - fixture


@pytest.mark.slow
def test_fuzz_malformed_packs_and_inputs(tmp_path, tiny_text_pack):  # noqa: F811
    records = run_fuzz(tmp_path / "fuzz", tiny_text_pack)
    summary = summarize(records)
    bad = [r for r in records if r["outcome"] not in ("ok", "typed")]
    assert summary["cases"] >= 200, summary
    assert not bad, "\n".join(f"{r['outcome']}: {r['name']}: {r.get('error', '')} {r.get('message', '')}" for r in bad)
    assert set(summary["by category"]) == {"manifest", "onnx", "import", "file", "request"}
    typed = [r for r in records if r["outcome"] == "typed"]
    assert len(typed) > 0.8 * len(records)  # nearly every case is refused, not silently accepted
    assert all(len(r["message"]) > 15 for r in typed)  # a sentence, not a bare code


def test_escape_detection_sees_writes_outside_the_library(tmp_path):
    for sub in ("home", "out", "inputs", "canary"):
        (tmp_path / sub).mkdir()
    before = _snapshot(tmp_path, ("home", "out"))
    (tmp_path / "home" / "pack.onnx").write_bytes(b"x")  # allowed: the library
    (tmp_path / "out" / "image.png").write_bytes(b"x")  # allowed: the output folder
    assert _snapshot(tmp_path, ("home", "out")) == before
    (tmp_path / "canary" / "escaped.txt").write_bytes(b"x")
    assert _snapshot(tmp_path, ("home", "out")) != before
