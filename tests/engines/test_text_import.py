"""Importing foreign text folders: onnxruntime-genai builder output and optimum-style exports."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from desktop.engines.errors import ImportFormatError
from desktop.engines.events import Token
from desktop.engines.packs.importers import import_path
from desktop.engines.packs.library import Library
from desktop.engines.text.sampling import SamplingSettings
from desktop.engines.text.engine import ChatRequest, TextEngine


def greedy_tokens(pack, n=8):
    engine = TextEngine(pack)
    try:
        req = ChatRequest([{"role": "user", "content": "Say something."}], max_tokens=n, sampling=SamplingSettings(temperature=0))
        return [e.token_id for e in engine.generate(req) if isinstance(e, Token) and e.token_id is not None]
    finally:
        engine.close()


def test_import_genai_builder_folder(tiny_packs, tmp_path):
    hf = tiny_packs["llama"].parent / "hf-llama"
    out = tmp_path / "genai"
    subprocess.run([sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(hf), "-o", str(out), "-p", "int4", "-e", "cpu", "-c", str(tmp_path / "c")], check=True, capture_output=True)
    pack = import_path(out, Library(), name="genai-tiny")
    assert pack.runtime == "onnxruntime-genai" and pack.architecture == "llama" and pack.precision == "int4"
    assert pack.manifest["files"] and all(len(f["sha256"]) == 64 for f in pack.manifest["files"])
    assert greedy_tokens(pack)


def test_import_optimum_style_folder(tiny_packs, tmp_path):
    """An optimum layout: config.json, tokenizer files, model.onnx with past_key_values."""
    src = tiny_packs["gpt2"]
    folder = tmp_path / "onnx-community-gpt2"
    folder.mkdir()
    shutil.copy(src / "decoder.onnx", folder / "model.onnx")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(src / name, folder / name)
    shutil.copy(src.parent / "hf-gpt2" / "config.json", folder / "config.json")
    pack = import_path(folder, Library())
    assert pack.runtime == "onnxruntime" and pack.architecture == "gpt2"
    assert greedy_tokens(pack) == greedy_tokens(__import__("desktop.engines.packs.pack", fromlist=["load_pack"]).load_pack(src))


def test_import_of_unknown_folder_lists_accepted_formats(tmp_path):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("hello")
    with pytest.raises(ImportFormatError, match="Accepted"):
        import_path(tmp_path / "junk", Library())


def test_import_copies_and_verifies_our_pack(tiny_packs):
    lib = Library()
    pack = import_path(tiny_packs["gpt2"], lib, name="copy")
    assert pack.root.parent == lib.root and pack.name == "copy"
    with pytest.raises(Exception, match="already installed"):
        import_path(tiny_packs["gpt2"], lib, name="copy")


def test_each_modality_registers_its_importers_from_its_own_package():
    from desktop.engines.packs.importers import registered_importers

    homes = {imp.name.split(" ")[0]: imp.build.__module__ for imp in registered_importers()}
    assert homes["onnxruntime-genai"] == homes["optimum"] == homes["GGUF"] == "desktop.engines.text.importer"
    assert homes["Stable"] == "desktop.engines.image.importer"
    assert {m for m in homes.values()} == {"desktop.engines.text.importer", "desktop.engines.speech.importer", "desktop.engines.image.importer"}
