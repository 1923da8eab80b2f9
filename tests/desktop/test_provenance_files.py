"""Provenance on every output: PNG text chunks, WAV LIST/INFO, Markdown front matter,
read back by ``python main.py verify`` - and hostile files give typed errors."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from desktop.cli import main as cli_main
from desktop.commands.provenance import read_file_provenance
from desktop.engines.errors import ProvenanceError
from desktop.outputs.provenance import loads
from desktop.outputs.provenance_md import front_matter, read_markdown_provenance, split_front_matter
from desktop.outputs.provenance_png import RECORD_KEY, read_png_provenance, read_png_text, save_png
from desktop.outputs.provenance_wav import read_wav_info, read_wav_provenance

PACK_HASH = "3f" * 32


def _record(kind="image", seed=7):
    return {
        "generator": "Atelier",
        "app_version": "0.1.0",
        "kind": kind,
        "pack": "tiny-pack",
        "pack_sha256": PACK_HASH,
        "precision": "fp32",
        "provider": "cpu",
        "seed": seed,
        "settings": {"steps": 20, "prompt": "a red apple"},
        "created": "2026-01-01T00:00:00Z",
        "note": "AI-generated with Atelier",
    }


def _picture(h=256, w=320, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 / w, y * 255 / h, 128 + 60 * np.sin(x / 9.0)], -1) + rng.normal(0, 6, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


# -- PNG ----------------------------------------------------------------------------------------
def test_png_carries_the_record_and_standard_keywords(tmp_path):
    path = save_png(tmp_path / "out.png", _picture(), _record())
    assert read_png_provenance(path) == _record()
    text = read_png_text(path)
    assert text["Software"] == "Atelier 0.1.0"
    assert PACK_HASH in text["Source"] and text["Disclaimer"] == "AI-generated with Atelier"
    assert "trainedAlgorithmicMedia" in text["XML:com.adobe.xmp"]
    with Image.open(path) as im:  # an ordinary reader sees the same chunks
        assert json.loads(im.text[RECORD_KEY])["pack"] == "tiny-pack"
    assert read_file_provenance(path)["seed"] == 7
    assert not list(tmp_path.glob(".atelier-*"))  # atomic write left no temporary file


def test_png_without_record_and_damaged_pngs(tmp_path):
    plain = tmp_path / "plain.png"
    Image.fromarray(_picture(64, 64)).save(plain)
    assert read_png_provenance(plain) is None
    good = save_png(tmp_path / "good.png", _picture(64, 64), _record()).read_bytes()
    cases = {
        "truncated.png": good[: len(good) // 2],
        "not.png": b"GIF89a" + good[6:],
        "flipped.png": good[:60] + bytes([good[60] ^ 0xFF]) + good[61:],  # inside the iTXt body: bad CRC
        "huge-length.png": good[:8] + struct.pack(">I", 0x7FFFFFF0) + good[12:],
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ProvenanceError):
            read_png_provenance(tmp_path / name)


def test_png_zlib_bomb_text_chunk_is_refused(tmp_path):
    bomb = zlib.compress(b"A" * (8 << 20), 9)  # 8 MB of text in ~8 KB
    body = b"Comment\0" + b"\0" + bomb
    chunk = struct.pack(">I", len(body)) + b"zTXt" + body + struct.pack(">I", zlib.crc32(b"zTXt" + body) & 0xFFFFFFFF)
    buf = io.BytesIO()
    Image.fromarray(_picture(32, 32)).save(buf, "PNG")
    data = buf.getvalue()
    path = tmp_path / "bomb.png"
    path.write_bytes(data[:33] + chunk + data[33:])  # after IHDR
    with pytest.raises(ProvenanceError, match="malformed"):
        read_png_text(path)


def test_record_parsing_refuses_deep_nesting_and_foreign_json():
    with pytest.raises(ValueError, match="nested"):
        loads("[" * 30_000 + "]" * 30_000)
    with pytest.raises(ValueError):
        loads(json.dumps({"generator": "SomethingElse"}))
    assert "__class__" not in loads(json.dumps({**_record(), "__class__": "os.system"}))


# -- WAV --------------------------------------------------------------------------------------
def test_wav_written_by_the_speech_studio_reads_back(tmp_path):
    from desktop.outputs.provenance_wav import save_wav

    t = np.linspace(0, 0.2, 4410, dtype=np.float32)
    path = save_wav(tmp_path / "clip.wav", 0.3 * np.sin(2 * np.pi * 440 * t), 22050, _record("speech"), "hello")
    assert read_wav_provenance(path)["kind"] == "speech"
    info = read_wav_info(path)
    assert info["ISFT"].startswith("Atelier") and "AI-generated" in info["IGNR"]
    assert read_file_provenance(path)["pack_sha256"] == PACK_HASH


def test_damaged_wavs_give_typed_errors(tmp_path):
    from desktop.outputs.provenance_wav import save_wav

    good = save_wav(tmp_path / "good.wav", np.zeros(100, np.float32), 16000, _record("speech")).read_bytes()
    list_at = good.index(b"LIST")
    cases = {
        "short.wav": good[:10],
        "list-past-end.wav": good[: list_at + 4] + struct.pack("<I", 10_000_000) + good[list_at + 8 :],
        "info-sub-past-end.wav": good[: list_at + 16] + struct.pack("<I", 0xFFFFFF) + good[list_at + 20 :],
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ProvenanceError):
            read_wav_provenance(tmp_path / name)


# -- Markdown ---------------------------------------------------------------------------------
def test_markdown_front_matter_round_trip_and_chat_export_format(tmp_path):
    from desktop.outputs.chat_store import ChatStore

    text = front_matter(_record("chat"), {"title": "Trip"}) + "# Trip\n\nHello\n"
    fields, body = split_front_matter(text)
    assert fields["ai_generated"] is True and body.startswith("# Trip")
    assert read_markdown_provenance(text)["kind"] == "chat"
    store = ChatStore(tmp_path / "h.sqlite3")  # the chat studio's own export
    conv = store.create("Hello")
    store.add_message(conv.id, "user", "hi")
    path = tmp_path / "chat.md"
    path.write_text(store.to_markdown(conv.id, {"provenance": _record("chat")}), encoding="utf-8")
    store.close()
    assert read_file_provenance(path)["pack"] == "tiny-pack"
    with pytest.raises(ProvenanceError, match="closing"):
        read_markdown_provenance("---\ntitle: x\n")


# -- verify ------------------------------------------------------------------------------------
def test_verify_reports_metadata_and_watermark(tmp_path, capsys):
    png = save_png(tmp_path / "ours.png", _picture(), _record())
    assert cli_main(["verify", str(png)]) == 0
    out = capsys.readouterr().out
    assert "made by Atelier" in out and "tiny-pack" in out and "watermark found" in out and PACK_HASH[:10] in out

    # Metadata stripped and re-encoded as JPEG at half size: the watermark still names the pack.
    jpg = tmp_path / "shared.jpg"
    with Image.open(png) as im:
        im.resize((im.width // 2, im.height // 2), Image.BICUBIC).save(jpg, "JPEG", quality=85)
    assert cli_main(["verify", str(jpg), "--json"]) == 0
    findings = json.loads(capsys.readouterr().out)
    assert findings["record"] is None and findings["watermark"]["found"]
    assert findings["pack_prefix"] == PACK_HASH[:10]

    foreign = tmp_path / "photo.png"
    Image.fromarray(_picture(seed=3)).save(foreign)
    assert cli_main(["verify", str(foreign)]) == 1
    assert "not made by Atelier" in capsys.readouterr().out


def test_verify_names_the_installed_pack(tmp_path, capsys, tiny_text_pack):
    from desktop.engines.packs.importers import import_path
    from desktop.engines.packs.library import Library
    from desktop.outputs.provenance import provenance_record

    pack = import_path(tiny_text_pack, Library(), name="installed-pack")
    png = save_png(tmp_path / "x.png", _picture(), provenance_record("image", pack, {"steps": 4}, seed=1))
    with Image.open(png) as im:
        im.convert("RGB").save(tmp_path / "x.jpg", "JPEG", quality=85)
    assert cli_main(["verify", str(tmp_path / "x.jpg")]) == 0
    assert "installed pack: installed-pack" in capsys.readouterr().out


def test_verify_bad_input_is_one_line_error(tmp_path, capsys):
    assert cli_main(["verify", str(tmp_path / "missing.png")]) == 66  # EX_NOINPUT
    err = capsys.readouterr().err
    assert err.startswith("error:") and "Traceback" not in err
    (tmp_path / "junk.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\xff" * 50)
    assert cli_main(["verify", str(tmp_path / "junk.png")]) == 1
    captured = capsys.readouterr()
    assert "warning:" in captured.err and "Traceback" not in captured.err


from tests.tiny_sources import tiny_text_pack  # noqa: E402,F401 - fixture
