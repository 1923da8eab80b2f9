"""``image --reproduce`` finds packs in the library by name or hash only, never by a path
read from the PNG; a pack of the wrong modality is refused by name before loading."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
from PIL import Image

from desktop.cli import INTERNAL_ERROR_EXIT, main
from desktop.engines.packs.importers import import_path
from desktop.engines.packs.library import Library
from tests.tiny_sd import tiny_sd_pack
from tests.tiny_sources import tiny_text_pack  # noqa: F401 - fixture


@pytest.fixture()
def installed(cache_dir, tiny_text_pack):  # noqa: F811
    lib = Library()
    import_path(tiny_sd_pack(cache_dir), lib, name="tiny-sd")
    import_path(tiny_text_pack, lib, name="tiny-text")
    return lib


def _png_with_record(tmp_path, **changes):
    """A real image from the CLI, re-saved with its provenance record changed."""
    from desktop.outputs.image_meta import save_image
    from desktop.outputs.provenance_png import read_png_provenance

    made = tmp_path / "made.png"
    assert main(["image", "--model", "tiny-sd", "--prompt", "an apple", "--steps", "2", "--size", "32x32", "--seed", "4", "--out", str(made)]) == 0
    record = read_png_provenance(made)
    record.update(changes)
    forged = tmp_path / "forged.png"
    save_image(forged, np.asarray(Image.open(made).convert("RGB")), record)
    return forged, made


def test_reproduce_never_opens_a_folder_the_record_names(installed, tmp_path, capsys):
    elsewhere = tmp_path / "not-in-library"
    shutil.copytree(installed.find("tiny-sd"), elsewhere)
    forged, _ = _png_with_record(tmp_path, pack=str(elsewhere), pack_sha256="0" * 64)
    out = tmp_path / "again.png"
    code = main(["image", "--reproduce", str(forged), "--out", str(out)])
    err = capsys.readouterr().err
    assert code not in (0, INTERNAL_ERROR_EXIT) and "not in the library" in err
    assert not out.exists()


def test_reproduce_finds_the_library_pack_by_hash_when_the_name_differs(installed, tmp_path, capsys):
    forged, made = _png_with_record(tmp_path, pack="a-name-nobody-has")
    out = tmp_path / "again.png"
    assert main(["image", "--reproduce", str(forged), "--out", str(out)]) == 0
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(made)))


@pytest.mark.parametrize(
    "args, words",
    [
        (["image", "--model", "tiny-text", "--prompt", "x", "--out", "{tmp}/x.png"], "'tiny-text' is a text model"),
        (["text", "--model", "tiny-sd", "--prompt", "x"], "'tiny-sd' is an image model"),
        (["speak", "--model", "tiny-text", "--text", "x", "--out", "{tmp}/x.wav"], "'tiny-text' is a text model"),
    ],
)
def test_a_pack_of_the_wrong_modality_is_refused_by_name_before_loading(installed, tmp_path, capsys, monkeypatch, args, words):
    import desktop.engines.packs.library as library

    loads = []
    monkeypatch.setattr(library, "load_pack", lambda *a, **k: loads.append(a))
    code = main([a.replace("{tmp}", str(tmp_path)) for a in args])
    err = capsys.readouterr().err
    assert code not in (0, INTERNAL_ERROR_EXIT), err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert re.search(words, err), err
    assert loads == []  # refused from the manifest, before hashing or loading anything
