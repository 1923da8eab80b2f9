"""Only listed, hashed, regular files inside the pack are ever read.

A chat template (or tokenizer, or config) lying unlisted in the folder - or a symbolic
link to a file outside it - is refused by name, never used; ``models verify`` reports it;
the voice-graph cache outside the pack is checked against its record before use.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from desktop.cli import main
from desktop.engines.base import open_engine
from desktop.engines.errors import PackIntegrityError, UnsafePathError
from desktop.engines.packs.library import Library
from desktop.engines.packs.pack import load_pack, write_manifest
from tests.fuzz_cases import _rehash
from tests.tiny_sources import tiny_text_pack  # noqa: F401 - fixture

EVIL_TEMPLATE = "PWNED {% for m in messages %}{{ m['content'] }}{% endfor %}"


@pytest.fixture()
def pack(tmp_path, tiny_text_pack):  # noqa: F811
    dest = tmp_path / "pack"
    shutil.copytree(tiny_text_pack, dest)
    return dest


def _render(pack_dir: Path) -> str:
    engine = open_engine(load_pack(pack_dir))
    try:
        return engine.template.render([{"role": "user", "content": "hi"}])
    finally:
        engine.close()


def _without_listed_template(pack_dir: Path) -> None:
    """Drop the listed template so an unlisted one could take its place."""
    (pack_dir / "chat_template.jinja").unlink()
    _rehash(pack_dir)


def test_an_unlisted_chat_template_is_refused_not_used(pack, capsys):
    _without_listed_template(pack)
    before = _render(pack)  # from tokenizer_config.json, the listed source
    (pack / "chat_template.jinja").write_text(EVIL_TEMPLATE)
    with pytest.raises(UnsafePathError, match="chat_template.jinja"):
        _render(pack)
    assert "PWNED" not in before
    assert main(["models", "verify", str(pack)]) != 0
    assert "chat_template.jinja" in capsys.readouterr().err


def test_a_symlinked_template_outside_the_pack_is_refused(pack, tmp_path, capsys):
    _without_listed_template(pack)
    outside = tmp_path / "outside.jinja"
    outside.write_text(EVIL_TEMPLATE)
    (pack / "chat_template.jinja").symlink_to(outside)
    with pytest.raises(UnsafePathError, match="chat_template.jinja"):
        _render(pack)
    assert main(["models", "verify", str(pack)]) != 0
    assert "chat_template.jinja" in capsys.readouterr().err


def test_a_listed_file_that_is_a_symlink_is_refused_even_inside_the_pack(pack):
    real = pack / "tokenizer_config.json"
    shutil.move(real, pack / "elsewhere.json")
    real.symlink_to(pack / "elsewhere.json")
    with pytest.raises(UnsafePathError, match="symbolic link"):
        load_pack(pack)


def test_a_listed_template_edited_after_load_is_refused_by_its_hash(pack):
    loaded = load_pack(pack)
    (pack / "chat_template.jinja").write_text(EVIL_TEMPLATE)
    with pytest.raises(PackIntegrityError, match="chat_template.jinja"):
        open_engine(loaded)


def test_verify_passes_a_clean_pack_and_import_refuses_strays(pack, capsys):
    assert main(["models", "verify", str(pack)]) == 0
    (pack / "notes.txt").write_text("not in the manifest")
    assert main(["models", "import", str(pack), "--name", "strays"]) != 0
    assert "notes.txt" in capsys.readouterr().err
    assert Library().entries() == []


def test_the_library_page_verify_reports_unlisted_files(pack):
    from desktop.pack_info import VerifyResult, verify_pack

    (pack / "extra.json").write_text("{}")
    result = [ev for ev in verify_pack(pack) if isinstance(ev, VerifyResult)][0]
    assert not result.ok and "extra.json" in result.problem


# -- the voice-graph cache ---------------------------------------------------------------------
def _graph(path: Path, add: float) -> None:
    import onnx
    from onnx import TensorProto, helper

    const = helper.make_tensor("c", TensorProto.FLOAT, [1], [add])
    node = helper.make_node("Add", ["x", "c"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])], [const])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def _voice_pack(folder: Path) -> Path:
    folder.mkdir()
    _graph(folder / "voice.onnx", 1.0)
    write_manifest(folder, {"name": "cache-voice", "modality": "speech", "architecture": "vits", "runtime": "onnxruntime", "precision": "fp32"}, {"voice.onnx": "model"})
    return folder


def _run(pack) -> float:
    from desktop.engines.providers import RuntimeSettings
    from desktop.engines.speech.voice_session import voice_session

    session, _ = voice_session(pack, RuntimeSettings())
    return float(session.run(None, {"x": np.array([1.0], dtype=np.float32)})[0][0])


def test_an_edited_voice_cache_is_rebuilt_from_the_pack(tmp_path, atelier_home):
    pack = load_pack(_voice_pack(tmp_path / "voice"))
    assert _run(pack) == 2.0  # first load writes the cache
    cached = [p for p in (atelier_home / "cache" / "voices").glob("*.onnx")]
    assert len(cached) == 1 and cached[0].with_suffix(".json").is_file()
    record = json.loads(cached[0].with_suffix(".json").read_text())
    assert record["source_sha256"] == pack.files[0].sha256  # keyed by the source graph's content
    _graph(cached[0], 100.0)  # someone swaps the cached graph
    assert _run(pack) == 2.0  # refused and rebuilt: the audio comes from the pack's graph
    assert _run(pack) == 2.0
    _graph(cached[0], 100.0)
    record["sha256"] = __import__("hashlib").sha256(cached[0].read_bytes()).hexdigest()
    cached[0].with_suffix(".json").write_text(json.dumps(dict(record, source_sha256="0" * 64)))
    assert _run(pack) == 2.0  # a record for another source graph does not vouch for it


def test_a_changed_voice_graph_gets_its_own_cache_entry(tmp_path, atelier_home):
    first = load_pack(_voice_pack(tmp_path / "a"))
    assert _run(first) == 2.0
    other = tmp_path / "b"
    shutil.copytree(tmp_path / "a", other)
    _graph(other / "voice.onnx", 5.0)
    _rehash(other)
    assert _run(load_pack(other)) == 6.0
    assert len(list((atelier_home / "cache" / "voices").glob("*.onnx"))) == 2


def test_cache_entries_without_a_record_are_dropped(tmp_path, atelier_home):
    folder = atelier_home / "cache" / "voices"
    folder.mkdir(parents=True)
    legacy = folder / "0123456789abcdef01234567.onnx"  # the old scheme: keyed by pack hash, no record
    _graph(legacy, 100.0)
    assert _run(load_pack(_voice_pack(tmp_path / "voice"))) == 2.0
    assert not legacy.exists() and len(list(folder.glob("*.onnx"))) == 1


def test_a_cache_edit_with_a_recomputed_record_hash_is_still_refused(tmp_path, atelier_home):
    import hashlib

    pack = load_pack(_voice_pack(tmp_path / "voice"))
    assert _run(pack) == 2.0
    cached = next((atelier_home / "cache" / "voices").glob("*.onnx"))
    _graph(cached, 100.0)
    record = json.loads(cached.with_suffix(".json").read_text())
    record["sha256"] = hashlib.sha256(cached.read_bytes()).hexdigest()  # a careful editor fixes the hash
    cached.with_suffix(".json").write_text(json.dumps(record))
    assert _run(pack) == 2.0
