"""Image PNG metadata: every setting written, read back as data only (never evaluated)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from desktop.engines.errors import ProvenanceError
from desktop.outputs.image_meta import image_record, read_settings, save_image
from desktop.outputs.provenance_png import RECORD_KEY

SETTINGS = {
    "prompt": "a red apple", "negative_prompt": "blurry", "width": 32, "height": 24, "steps": 6, "guidance": 7.5,
    "scheduler": "euler", "seed": 42, "batch_count": 1, "class_label": None, "extra": {}, "pack": "tiny", "architecture": "stable-diffusion",
}


class FakePack:  # only the identity fields a provenance record reads
    name, pack_hash, precision = "tiny", "ab" * 32, "fp32"


def crafted_png(path, text: str):
    info = PngInfo()
    info.add_itxt(RECORD_KEY, text)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path, "PNG", pnginfo=info)
    return path


def test_round_trip_keeps_every_setting_and_the_ai_note(tmp_path):
    path = save_image(tmp_path / "a.png", np.full((24, 32, 3), 90, np.uint8), image_record(FakePack(), SETTINGS, "cpu"))
    record = read_settings(path)
    assert record["pack_sha256"] == "ab" * 32 and "AI-generated" in record["note"]
    assert {k: record["settings"][k] for k in ("prompt", "negative_prompt", "width", "height", "steps", "guidance", "scheduler", "seed")} == {
        k: SETTINGS[k] for k in ("prompt", "negative_prompt", "width", "height", "steps", "guidance", "scheduler", "seed")
    }
    info = Image.open(path).info
    assert "trainedAlgorithmicMedia" in info["XML:com.adobe.xmp"]


def test_non_png_file_is_a_clear_error(tmp_path):
    jpeg = tmp_path / "photo.png"  # the name lies; the content decides
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(jpeg, "JPEG")
    with pytest.raises(ProvenanceError, match="not a PNG"):
        read_settings(jpeg)
    with pytest.raises(ProvenanceError, match="No such file"):
        read_settings(tmp_path / "missing.png")


def test_corrupt_png_is_a_clear_error(tmp_path):
    good = save_image(tmp_path / "a.png", np.zeros((16, 16, 3), np.uint8), image_record(FakePack(), SETTINGS))
    data = good.read_bytes()
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ProvenanceError, match="truncated|damaged"):
        read_settings(truncated)
    flipped = bytearray(data)
    start = data.index(RECORD_KEY.encode()) + 20
    flipped[start] ^= 0xFF  # a bit error inside the record chunk
    bad = tmp_path / "bitflip.png"
    bad.write_bytes(bytes(flipped))
    with pytest.raises(ProvenanceError):
        read_settings(bad)


def test_png_without_settings(tmp_path):
    plain = tmp_path / "plain.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(plain, "PNG")
    with pytest.raises(ProvenanceError, match="carries no Atelier settings"):
        read_settings(plain)


def test_metadata_crafted_with_code_is_only_ever_data(tmp_path):
    marker = tmp_path / "pwned"
    payload = f"__import__('os').system('touch {marker}')"
    record = {"generator": "Atelier", "kind": "image", "settings": dict(SETTINGS, prompt=payload)}
    # code in a string field comes back as that string, inert
    assert read_settings(crafted_png(tmp_path / "a.png", json.dumps(record)))["settings"]["prompt"] == payload
    # code where a number belongs is refused
    with pytest.raises(ProvenanceError, match="'steps'.*invalid"):
        read_settings(crafted_png(tmp_path / "b.png", json.dumps(dict(record, settings=dict(SETTINGS, steps=payload)))))
    # code instead of JSON is refused
    with pytest.raises(ProvenanceError, match="malformed"):
        read_settings(crafted_png(tmp_path / "c.png", f"exec(\"{payload}\")"))
    # NaN, nesting bombs and unknown keys
    with pytest.raises(ProvenanceError, match="'guidance'.*invalid"):
        read_settings(crafted_png(tmp_path / "d.png", json.dumps(record).replace('"guidance": 7.5', '"guidance": NaN')))
    with pytest.raises(ProvenanceError):
        read_settings(crafted_png(tmp_path / "e.png", '{"generator": "Atelier", "settings": ' + "[" * 50_000 + "]" * 50_000 + "}"))
    extra = read_settings(crafted_png(tmp_path / "f.png", json.dumps(dict(record, settings=dict(SETTINGS, __class__="x", run="rm -rf /")))))
    assert "__class__" not in extra["settings"] and "run" not in extra["settings"]
    assert not marker.exists()
