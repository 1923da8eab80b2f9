"""`verify` on an image whose Atelier record is not backed by the watermark every Atelier
image of that size carries: say clearly that the record may be copied or forged, exit 1."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from desktop.outputs.provenance_png import save_png
from tests.test_cli import cli, env_with

RECORD = {"generator": "Atelier", "app_version": "0.1.0", "kind": "image", "pack": "tiny", "pack_sha256": "ab" * 32, "seed": 1,
          "note": "AI-generated with Atelier", "settings": {"prompt": "x", "width": 96, "height": 96}}


def _picture(size: int = 96) -> np.ndarray:
    return np.random.default_rng(1).integers(0, 255, (size, size, 3), dtype=np.uint8)


def test_record_without_the_watermark_is_called_out_as_possibly_forged(tmp_path, atelier_home):
    forged = save_png(tmp_path / "forged.png", _picture(), RECORD, watermark=False)
    r = cli("verify", str(forged), env=env_with(atelier_home))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "metadata only, NO watermark" in r.stdout and "copied" in r.stdout and "forged" in r.stdout
    r = cli("verify", str(forged), "--json", env=env_with(atelier_home))
    findings = json.loads(r.stdout)
    assert r.returncode == 1 and findings["watermark_missing"] is True and findings["record"]["pack"] == "tiny"


def test_record_copied_onto_a_foreign_image_is_called_out(tmp_path, atelier_home):
    genuine = save_png(tmp_path / "ours.png", _picture(), RECORD)
    with Image.open(genuine) as im:
        info = im.info
    foreign = tmp_path / "foreign.png"
    from PIL.PngImagePlugin import PngInfo

    chunks = PngInfo()
    for key, value in info.items():
        if isinstance(value, str):
            chunks.add_itxt(key, value)
    Image.fromarray(np.random.default_rng(9).integers(0, 255, (128, 128, 3), dtype=np.uint8)).save(foreign, pnginfo=chunks)
    r = cli("verify", str(foreign), env=env_with(atelier_home))
    assert r.returncode == 1 and "NO watermark" in r.stdout, r.stdout


def test_genuine_image_and_an_image_too_small_to_mark_still_verify(tmp_path, atelier_home):
    genuine = save_png(tmp_path / "ours.png", _picture(), RECORD)
    r = cli("verify", str(genuine), env=env_with(atelier_home))
    assert r.returncode == 0 and "watermark found" in r.stdout and "NO watermark" not in r.stdout, r.stdout
    tiny = save_png(tmp_path / "tiny.png", _picture(32), RECORD)  # below the watermark's minimum side
    r = cli("verify", str(tiny), env=env_with(atelier_home))
    assert r.returncode == 0 and "NO watermark" not in r.stdout, r.stdout
