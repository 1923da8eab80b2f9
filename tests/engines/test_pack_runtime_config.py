"""A pack's runtime config is data: nothing in it may load code or write files.

The threat is real: onnxruntime-genai loads ``session_options.custom_ops_library`` (a
native library, whose constructor runs) when the model is created. Here a real ``.so`` is
built at test time whose constructor writes a marker file; import and load must refuse
the pack by naming the key, and the marker must never appear.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from desktop.engines.base import open_engine
from desktop.engines.errors import PackError, PackFormatError
from desktop.engines.packs.importers import import_path
from desktop.engines.packs.library import Library
from desktop.engines.packs.pack import load_pack
from tests.fuzz_cases import _rehash
from tests.tiny_sources import tiny_text_pack  # noqa: F401 - fixture

C_SOURCE = r"""
#include <stdio.h>
__attribute__((constructor)) static void ran(void) {
    FILE *f = fopen("%s", "w");
    if (f) { fputs("constructor ran", f); fclose(f); }
}
"""


def _evil_library(folder: Path, marker: Path) -> Path:
    """A native library whose constructor writes ``marker`` (a plain file without gcc)."""
    lib = folder / "libevil.so"
    if shutil.which("gcc"):
        src = folder.parent / "evil.c"
        src.write_text(C_SOURCE % marker)
        subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(lib), str(src)], check=True, capture_output=True)
    else:
        lib.write_bytes(b"\x7fELF not really")
    return lib


def _edit_genai(pack: Path, change) -> None:
    path = pack / "genai_config.json"
    cfg = json.loads(path.read_text())
    change(cfg)
    path.write_text(json.dumps(cfg))
    _rehash(pack)  # the manifest vouches for the edited config: only the allowlist stands in the way


@pytest.fixture()
def evil_pack(tmp_path, tiny_text_pack):  # noqa: F811
    pack = tmp_path / "src" / "evil"
    shutil.copytree(tiny_text_pack, pack)
    marker = tmp_path / "constructor-ran.txt"
    _evil_library(pack, marker)
    _edit_genai(pack, lambda c: c["model"]["decoder"]["session_options"].__setitem__("custom_ops_library", "libevil.so"))
    return pack, marker


def test_custom_ops_library_is_refused_at_load_and_nothing_is_loaded(evil_pack):
    pack, marker = evil_pack
    with pytest.raises(PackFormatError, match=r"model\.decoder\.session_options\.custom_ops_library"):
        open_engine(load_pack(pack))
    assert not marker.exists(), "the pack's native library was loaded"


def test_the_backend_itself_refuses_when_preflight_is_bypassed(evil_pack):
    from desktop.engines.text.engine import TextEngine

    pack, marker = evil_pack
    with pytest.raises(PackFormatError, match="custom_ops_library"):
        TextEngine(load_pack(pack))
    assert not marker.exists()


def test_custom_ops_library_is_refused_at_import(evil_pack):
    pack, marker = evil_pack
    with pytest.raises(PackFormatError, match="custom_ops_library"):
        import_path(pack, Library())
    assert Library().entries() == [] and not [p for p in Library().root.iterdir()]
    assert not marker.exists()


def test_a_foreign_genai_folder_naming_a_library_is_refused_at_import(tmp_path, tiny_text_pack):  # noqa: F811
    folder = tmp_path / "genai-folder"
    folder.mkdir()
    for name in ("genai_config.json", "tokenizer.json", "tokenizer_config.json", "model.onnx"):
        shutil.copy(tiny_text_pack / name, folder / name)
    if (tiny_text_pack / "model.onnx.data").exists():
        shutil.copy(tiny_text_pack / "model.onnx.data", folder / "model.onnx.data")
    marker = tmp_path / "ran.txt"
    _evil_library(folder, marker)
    cfg = json.loads((folder / "genai_config.json").read_text())
    cfg["model"]["decoder"]["session_options"]["custom_ops_library"] = "libevil.so"
    (folder / "genai_config.json").write_text(json.dumps(cfg))
    with pytest.raises(PackError, match="custom_ops_library"):
        import_path(folder, Library(), name="foreign")
    assert Library().entries() == [] and not marker.exists()


@pytest.mark.parametrize(
    "change, key",
    [
        (lambda c: c["model"]["decoder"]["session_options"].update(enable_profiling=True), "enable_profiling"),
        (lambda c: c["model"]["decoder"]["session_options"].update(profile_file_prefix="/tmp/trace"), "profile_file_prefix"),
        (lambda c: c["model"]["decoder"]["session_options"].update(config_entries={"session.x": "/tmp/y"}), "config_entries"),
        (lambda c: c["model"]["decoder"]["session_options"].update(log_severity_level="verbose"), "log_severity_level"),
        (lambda c: c["model"]["decoder"]["session_options"].update(provider_options=[{"cuda": {"trt_engine_cache_path": "/tmp/x"}}]), "trt_engine_cache_path"),
        (lambda c: c["model"]["decoder"]["session_options"].update(provider_options=[{"myprovider": {}}]), "myprovider"),
        (lambda c: c["model"]["decoder"].update(pipeline=[{"x": {"filename": "model.onnx"}}]), "model.decoder.pipeline"),
        (lambda c: c["model"].update(vision={"filename": "model.onnx"}), "model.vision"),
        (lambda c: c.update(engine={"dynamic_batching": {}}), "engine"),
        (lambda c: c["search"].update(top_k="../../etc"), "search.top_k"),
    ],
)
def test_any_key_outside_the_allowlist_is_refused_by_name(tmp_path, tiny_text_pack, change, key):  # noqa: F811
    pack = tmp_path / "p"
    shutil.copytree(tiny_text_pack, pack)
    _edit_genai(pack, change)
    with pytest.raises(PackFormatError, match=key.replace(".", r"\.")):
        open_engine(load_pack(pack))
    with pytest.raises(PackFormatError, match=key.replace(".", r"\.")):
        import_path(pack, Library())
    assert Library().entries() == []


@pytest.mark.parametrize("file_name", ["ort_config.json", "config.json", "nested/runtime.json"])
def test_a_code_hook_in_any_listed_json_is_refused(tmp_path, tiny_text_pack, file_name):  # noqa: F811
    pack = tmp_path / "p"
    shutil.copytree(tiny_text_pack, pack)
    (pack / file_name).parent.mkdir(exist_ok=True)
    (pack / file_name).write_text(json.dumps({"session_options": {"custom_op_library": "libevil.so"}}))
    _rehash(pack)
    with pytest.raises(PackFormatError, match="custom_op_library"):
        open_engine(load_pack(pack))
    with pytest.raises(PackFormatError, match="custom_op_library"):
        import_path(pack, Library())


def test_a_clean_export_still_loads_and_generates(tmp_path, tiny_text_pack):  # noqa: F811
    from desktop.engines.text.sampling import SamplingSettings
    from desktop.engines.text.engine import ChatRequest

    pack = import_path(tiny_text_pack, Library(), name="clean")
    engine = open_engine(Library().load("clean"))
    try:
        events = list(engine.generate(ChatRequest([{"role": "user", "content": "hi"}], max_tokens=3, sampling=SamplingSettings(seed=0))))
    finally:
        engine.close()
    assert pack.name == "clean" and events[-1].stats["generated_tokens"] >= 1
