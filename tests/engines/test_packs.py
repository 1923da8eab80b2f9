"""Pack loading refuses what it cannot trust, with a message naming the problem."""

from __future__ import annotations

import json
import shutil

import pytest

from desktop.engines.errors import PackFormatError, PackIntegrityError, UnsafePathError
from desktop.engines.packs.pack import confined_path, load_pack, write_manifest


@pytest.fixture
def pack_dir(tmp_path):
    d = tmp_path / "pack"
    d.mkdir()
    (d / "model.onnx").write_bytes(b"\x08\x07" * 100)
    write_manifest(d, {"name": "t", "modality": "text", "architecture": "llama", "runtime": "onnxruntime", "precision": "fp32"}, {"model.onnx": "decoder"})
    return d


def edit(d, **changes):
    m = json.loads((d / "manifest.json").read_text())
    m.update(changes)
    (d / "manifest.json").write_text(json.dumps(m))


def test_good_pack_loads_and_has_a_stable_hash(pack_dir):
    a, b = load_pack(pack_dir), load_pack(pack_dir)
    assert a.name == "t" and a.files[0].role == "decoder"
    assert a.pack_hash == b.pack_hash and len(a.pack_hash) == 64


def test_missing_onnx(pack_dir):
    (pack_dir / "model.onnx").unlink()
    with pytest.raises(PackIntegrityError, match="missing"):
        load_pack(pack_dir)


def test_truncated_onnx(pack_dir):
    (pack_dir / "model.onnx").write_bytes(b"\x08\x07" * 50)
    with pytest.raises(PackIntegrityError, match="truncated"):
        load_pack(pack_dir)


def test_hash_mismatch(pack_dir):
    data = bytearray((pack_dir / "model.onnx").read_bytes())
    data[10] ^= 0xFF
    (pack_dir / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(PackIntegrityError, match="SHA-256"):
        load_pack(pack_dir)


def test_unknown_manifest_version(pack_dir):
    edit(pack_dir, schema_version=99)
    with pytest.raises(PackFormatError, match="version 99"):
        load_pack(pack_dir)


@pytest.mark.parametrize("bad", ["../outside.onnx", "/etc/passwd", "sub/../../x"])
def test_paths_outside_the_pack_are_refused(pack_dir, bad):
    m = json.loads((pack_dir / "manifest.json").read_text())
    m["files"][0]["path"] = bad
    (pack_dir / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(UnsafePathError):
        load_pack(pack_dir)


def test_symlink_escape_is_refused(pack_dir, tmp_path):
    (tmp_path / "secret").write_text("x")
    (pack_dir / "link").symlink_to(tmp_path / "secret")
    with pytest.raises(UnsafePathError):
        confined_path(pack_dir, "link")


@pytest.mark.parametrize("field, value", [("modality", "smell"), ("files", []), ("name", 3), ("precision", "int3")])
def test_malformed_fields(pack_dir, field, value):
    edit(pack_dir, **{field: value})
    with pytest.raises(PackFormatError):
        load_pack(pack_dir)


def test_not_json(pack_dir):
    (pack_dir / "manifest.json").write_text("{nope")
    with pytest.raises(PackFormatError, match="not valid JSON"):
        load_pack(pack_dir)


def test_real_tiny_pack_with_corrupt_graph_fails_clearly(tiny_packs, tmp_path):
    from desktop.engines.text.engine import TextEngine

    copy = tmp_path / "copy"
    shutil.copytree(tiny_packs["gpt2"], copy)
    graph = copy / "decoder.onnx"
    graph.write_bytes(graph.read_bytes()[:1000])
    with pytest.raises(PackIntegrityError):
        TextEngine(load_pack(copy))
