"""Pack hardening: ONNX checked before a session, external data confined, memory
refused with an estimate, manifest limits, zip import without traversal or bombs."""

from __future__ import annotations

import json
import os
import shutil
import threading
import zipfile
from pathlib import Path

import pytest

from desktop.engines import memory
from desktop.engines.base import open_engine
from desktop.engines.errors import ImportFormatError, PackFormatError, ResourceError, UnsafePathError
from desktop.engines.packs.importers import import_path
from desktop.engines.packs.library import Library
from desktop.engines.packs.pack import load_pack
from tests.fuzz_cases import _edit_onnx, _rehash, _set_external
from tests.tiny_sources import tiny_text_pack  # noqa: F401 - fixture


@pytest.fixture
def pack(tmp_path, tiny_text_pack):  # noqa: F811
    dest = tmp_path / "pack"
    shutil.copytree(tiny_text_pack, dest)
    return dest


# -- memory ---------------------------------------------------------------------------------
def test_loading_refuses_a_pack_that_does_not_fit(pack, monkeypatch):
    manifest = json.loads((pack / "manifest.json").read_text())
    manifest["config"]["estimated_ram_bytes"] = 3 * 2**30
    (pack / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setattr(memory, "available_memory_bytes", lambda: 1 * 2**30)
    sessions = []
    monkeypatch.setattr("desktop.engines.text.backends.GenaiBackend.__init__", lambda *a: sessions.append(a))
    with pytest.raises(ResourceError) as err:
        open_engine(load_pack(pack))
    assert "3.0 GB" in str(err.value) and "1.0 GB" in str(err.value) and "int8/int4" in str(err.value)
    assert not sessions  # refused before any runtime session was created
    monkeypatch.undo()  # real backend again, memory check skipped by the user's choice
    monkeypatch.setenv(memory.SKIP_ENV, "1")
    open_engine(load_pack(pack)).close()


def test_estimate_is_never_below_the_weights(pack):
    manifest = json.loads((pack / "manifest.json").read_text())
    manifest["config"]["estimated_ram_bytes"] = 1
    (pack / "manifest.json").write_text(json.dumps(manifest))
    p = load_pack(pack)
    assert memory.estimated_load_bytes(p) == p.size_bytes
    with pytest.raises(ResourceError):
        memory.check_pack_fits(p, available=p.size_bytes // 2)
    memory.check_pack_fits(p, available=p.size_bytes * 10)


def test_available_memory_is_read_from_the_os():
    have = memory.available_memory_bytes()
    assert have is None or 2**26 < have < 2**50


# -- ONNX before any session ---------------------------------------------------------------------
def test_external_data_outside_the_pack_is_refused(pack, tmp_path):
    (tmp_path / "secret.bin").write_bytes(b"\0" * 200_000)
    _edit_onnx(pack, _set_external("location", "../secret.bin"))
    with pytest.raises(UnsafePathError, match="outside the pack"):
        open_engine(load_pack(pack))


def test_external_data_in_an_unlisted_file_is_refused(pack):
    shutil.copy(pack / "model.onnx.data", pack / "unlisted.data")
    _edit_onnx(pack, _set_external("location", "unlisted.data"))
    (pack / "unlisted.data").write_bytes((pack / "model.onnx.data").read_bytes())  # after the rehash: not in the manifest
    manifest = json.loads((pack / "manifest.json").read_text())
    manifest["files"] = [f for f in manifest["files"] if f["path"] != "unlisted.data"]
    (pack / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UnsafePathError, match="does not list"):
        open_engine(load_pack(pack))


def test_truncated_graph_is_refused_before_the_runtime_sees_it(pack, monkeypatch):
    data = (pack / "model.onnx").read_bytes()
    (pack / "model.onnx").write_bytes(data[: len(data) // 2])
    _rehash(pack)
    with pytest.raises(PackFormatError, match="not a valid ONNX model"):
        open_engine(load_pack(pack))


def test_genai_config_may_only_name_listed_files(pack):
    cfg = json.loads((pack / "genai_config.json").read_text())
    cfg["model"]["decoder"]["filename"] = "../other/model.onnx"
    (pack / "genai_config.json").write_text(json.dumps(cfg))
    _rehash(pack)
    with pytest.raises(UnsafePathError, match="outside the pack"):
        open_engine(load_pack(pack))


def test_runtime_failure_on_a_checked_graph_is_a_pack_error(pack):
    import onnx

    def unknown_op(model):
        model.graph.node[0].op_type = "NoSuchOperator"

    _edit_onnx(pack, unknown_op)
    with pytest.raises(PackFormatError, match="could not be loaded"):
        open_engine(load_pack(pack))
    assert onnx  # the mutation used the real onnx library


# -- manifest limits -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "change, words",
    [
        (lambda m: m["files"].append(dict(m["files"][0])), "listed twice"),
        (lambda m: m["files"][0].__setitem__("bytes", 10**15), "beyond any model file"),
        (lambda m: m.__setitem__("context_length", 10**10), "not plausible"),
        (lambda m: m.__setitem__("name", "line\nbreak"), "single line"),
        (lambda m: m["files"][0].__setitem__("path", "a/" * 600), "not plausible"),
    ],
)
def test_manifest_limits(pack, change, words):
    manifest = json.loads((pack / "manifest.json").read_text())
    change(manifest)
    (pack / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PackFormatError, match=words):
        load_pack(pack)


# -- zip and folder import -----------------------------------------------------------------------
def _zip(path: Path, entries, flag: int = 0) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    if flag:
        raw = bytearray(path.read_bytes())
        raw[raw.find(b"PK\x01\x02") + 8] |= flag
        path.write_bytes(bytes(raw))
    return path


def _entries(pack: Path):
    return [(f"tiny/{f.name}", f.read_bytes()) for f in sorted(pack.iterdir())]


@pytest.mark.parametrize("evil", ["..\\..\\escaped.txt", "tiny/../../escaped.txt", "/abs.txt", "C:/x.txt", "tiny/a:stream"])
def test_zip_traversal_is_refused_before_writing(pack, tmp_path, evil):
    archive = _zip(tmp_path / "evil.zip", _entries(pack) + [(evil, b"pwned")])
    with pytest.raises(UnsafePathError):
        import_path(archive, Library())
    assert not list(tmp_path.rglob("escaped.txt")) and not (tmp_path / "abs.txt").exists()
    assert not list(Library().root.iterdir())  # nothing half-imported


def test_zip_bombs_and_oddities_are_refused(pack, tmp_path):
    many_small = _zip(tmp_path / "b.zip", [(f"tiny/f{i}", bytes(1 << 20)) for i in range(100)])
    with pytest.raises(ImportFormatError, match="zip bomb"):
        import_path(many_small, Library())
    with pytest.raises(ImportFormatError, match="password"):
        import_path(_zip(tmp_path / "enc.zip", _entries(pack), flag=0x1), Library())
    with pytest.raises(UnsafePathError, match="twice"):
        import_path(_zip(tmp_path / "dup.zip", _entries(pack) + _entries(pack)[:1]), Library())
    with pytest.raises(ImportFormatError, match="empty"):
        import_path(_zip(tmp_path / "empty.zip", []), Library())
    assert import_path(_zip(tmp_path / "ok.zip", _entries(pack)), Library(), name="zipped").name == "zipped"


def test_a_named_pipe_in_an_import_folder_is_refused_without_hanging(pack):
    os.mkfifo(pack / "pipe")
    result = {}

    def run():
        try:
            import_path(pack, Library(), name="with-pipe")
        except UnsafePathError as exc:
            result["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive(), "import hung on a named pipe"
    assert "not a regular file" in str(result.get("error"))
    assert not (Library().root / "with-pipe").exists()


def test_foreign_folder_with_broken_config_is_a_typed_error(tmp_path):
    folder = tmp_path / "genai"
    folder.mkdir()
    (folder / "genai_config.json").write_text("{broken")
    (folder / "tokenizer.json").write_text("{}")
    with pytest.raises(ImportFormatError, match="looks like onnxruntime-genai"):
        import_path(folder, Library())
    assert not list(Library().root.iterdir())
