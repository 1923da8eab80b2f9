"""Names: what the library shows is what it opens.

A pack named like a default one plus an invisible character (or with a Cyrillic look-alike
letter) must not be importable next to, or instead of, the genuine one; lookups are by the
exact name only, never by folder name or a normalised form.
"""

from __future__ import annotations

import json
import shutil

import pytest

from desktop.cli import main
from desktop.engines.errors import PackError, PackFormatError, PackNotFoundError
from desktop.engines.packs.importers import import_path
from desktop.engines.packs.library import Library
from desktop.engines.packs.names import name_problem, name_skeleton
from desktop.engines.packs.pack import load_pack
from tests.fuzz_cases import _edit_manifest
from tests.tiny_sources import tiny_text_pack  # noqa: F401 - fixture

GENUINE = "smollm2-135m-instruct"
INVISIBLE = ["\u200b", "\u200d", "\u2060", "\ufeff", "\u202e", "\u2066", "\u00ad", "\u0007", "\u3000", "\u00a0", "\u2028", "\ue000"]


def _named(tmp_path, base, name: str):
    dest = tmp_path / f"src-{len(list(tmp_path.iterdir()))}"
    shutil.copytree(base, dest)
    _edit_manifest(dest, lambda m: m.__setitem__("name", name))
    return dest


@pytest.mark.parametrize("char", INVISIBLE, ids=[f"U+{ord(c):04X}" for c in INVISIBLE])
def test_names_with_invisible_or_control_characters_are_refused(tmp_path, tiny_text_pack, char):  # noqa: F811
    impostor = GENUINE[:7] + char + GENUINE[7:]
    assert name_problem(impostor)
    with pytest.raises(PackFormatError, match="refused"):
        import_path(tiny_text_pack, Library(), name=impostor)
    with pytest.raises(PackFormatError, match="refused"):
        import_path(_named(tmp_path, tiny_text_pack, impostor), Library())
    with pytest.raises(PackFormatError, match="refused"):
        load_pack(_named(tmp_path, tiny_text_pack, impostor))
    assert Library().entries() == []


def test_the_genuine_pack_installs_after_an_impostor_was_refused(tmp_path, tiny_text_pack):  # noqa: F811
    with pytest.raises(PackError):
        import_path(_named(tmp_path, tiny_text_pack, GENUINE + "\u200b"), Library())
    assert import_path(tiny_text_pack, Library(), name=GENUINE).name == GENUINE
    assert Library().load(GENUINE, verify_hashes=False).name == GENUINE


@pytest.mark.parametrize(
    "lookalike",
    [
        "smоllm2-135m-instruct",  # Cyrillic o
        "SmolLM2-135M-Instruct",  # case only
        "ｓｍｏｌｌｍ２-135m-instruct",  # fullwidth (NFKC)
        "smollm2-135m-instruсt",  # Cyrillic es
        GENUINE,  # exact duplicate
    ],
)
def test_a_lookalike_of_an_installed_name_is_refused(tmp_path, tiny_text_pack, lookalike):  # noqa: F811
    import_path(tiny_text_pack, Library(), name=GENUINE)
    with pytest.raises(PackError, match="already installed|looks like"):
        import_path(tiny_text_pack, Library(), name=lookalike)
    assert [e.name for e in Library().entries()] == [GENUINE]


def test_skeletons_collapse_confusables_but_keep_different_names_apart():
    assert name_skeleton("smоllm2") == name_skeleton("SMOLLM2") == name_skeleton("ｓｍｏｌｌｍ２")
    assert name_skeleton("smollm2-135m") != name_skeleton("smollm2-360m")
    assert name_problem("日本語の声") == "" and name_problem("joe voice") == ""


def test_lookup_is_by_exact_name_only(tmp_path, tiny_text_pack):  # noqa: F811
    lib = Library()
    import_path(tiny_text_pack, lib, name="My Model")
    folder = lib.find("My Model")
    assert folder.name == "My-Model"
    for near in ("My-Model", "my model", "My Model ", "My\u200bModel", str(folder)):
        with pytest.raises(PackNotFoundError):
            lib.find(near)
    assert lib.find(str(folder), allow_path=True) == folder  # only where a user typed a folder


def test_an_impostor_placed_by_hand_is_broken_and_never_opened_for_the_real_name(tmp_path, tiny_text_pack, capsys):  # noqa: F811
    lib = Library()
    shutil.copytree(tiny_text_pack, lib.root / GENUINE)
    _edit_manifest(lib.root / GENUINE, lambda m: m.__setitem__("name", GENUINE + "\u200b"))
    entry = lib.entries()[0]
    assert entry.manifest is None and "U+200B" in entry.problem
    with pytest.raises(PackError):
        lib.load(GENUINE)
    assert main(["text", "--prompt", "hi", "--max-tokens", "2"]) != 0  # no default runs the impostor
    assert "Traceback" not in capsys.readouterr().err
    manifest = json.loads((lib.root / GENUINE / "manifest.json").read_text())
    assert manifest["name"].endswith("\u200b")  # refused, not silently renamed


def test_distinct_non_latin_names_get_distinct_folders(tiny_text_pack):  # noqa: F811
    lib = Library()
    for name in ("модель один", "модель два", "声の模型"):
        import_path(tiny_text_pack, lib, name=name)
    assert sorted(e.name for e in lib.entries()) == sorted(["модель один", "модель два", "声の模型"])
    assert all(e.manifest for e in lib.entries())
