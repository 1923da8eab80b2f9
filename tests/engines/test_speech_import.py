"""Importing Piper voice folders, and WAV files with provenance."""

from __future__ import annotations

import json

import numpy as np
import pytest

from desktop.engines.errors import ImportFormatError
from desktop.engines.events import AudioChunk
from desktop.engines.packs.importers import import_path
from desktop.engines.packs.library import Library
from desktop.engines.speech.engine import SpeechEngine, SpeechRequest
from desktop.engines.speech.synthesis import SynthesisSettings
from desktop.engines.speech.wav import read_wav, write_wav

pytest.importorskip("piper.train.vits.models")
pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def voice_folder(tmp_path_factory):
    from tests.speech_helpers import make_piper_voice_folder

    return make_piper_voice_folder(tmp_path_factory.mktemp("piper") / "tiny-voice")


def _copy(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_piper_folder_imports_as_a_seedable_speech_pack(voice_folder):
    pack = import_path(voice_folder, Library(), name="tiny-piper")
    m = pack.manifest
    assert (m["modality"], m["architecture"], m["runtime"]) == ("speech", "vits", "onnxruntime")
    assert m["config"]["sample_rate"] == 22050 and m["config"]["phonemizer"] == {"kind": "text"}
    assert m["license"]["id"] == "CC0" and "Model card" in m["model_card"]
    assert m["config"]["seedable_noise"] and m["io"]["model"]["inputs"][-2:] == ["noise_0", "noise_1"]
    assert {f.role for f in pack.files} == {"model", "voice-config", "model-card"}
    engine = SpeechEngine(pack)
    try:
        runs = [[e.samples for e in engine.generate(SpeechRequest("hello there", SynthesisSettings(seed=5))) if isinstance(e, AudioChunk)] for _ in range(2)]
        assert np.array_equal(np.concatenate(runs[0]), np.concatenate(runs[1]))
    finally:
        engine.close()


def test_voice_without_its_onnx_json_is_refused_clearly(voice_folder, tmp_path):
    folder = _copy(voice_folder, tmp_path / "no-json")
    next(folder.glob("*.onnx.json")).unlink()
    with pytest.raises(ImportFormatError, match=r"\.onnx\.json.*missing|missing.*\.onnx\.json"):
        import_path(folder, Library())
    assert not any(Library().root.iterdir())  # nothing half-imported


def test_voice_with_malformed_onnx_json_is_refused_clearly(voice_folder, tmp_path):
    folder = _copy(voice_folder, tmp_path / "bad-json")
    cfg = next(folder.glob("*.onnx.json"))
    cfg.write_text("{not json")
    with pytest.raises(ImportFormatError, match="not valid JSON"):
        import_path(folder, Library())
    cfg.write_text(json.dumps({"audio": {"sample_rate": 22050}, "phoneme_id_map": "oops"}))
    with pytest.raises(ImportFormatError, match="phoneme_id_map is missing or malformed"):
        import_path(folder, Library())


def test_wav_round_trip_keeps_audio_rate_and_info(tmp_path):
    t = np.linspace(0, 1, 22050, dtype=np.float32)
    audio = 0.5 * np.sin(2 * np.pi * 220 * t)
    path = write_wav(tmp_path / "x.wav", audio, 22050, {"ICMT": '{"generator":"Atelier"}', "INAM": "héllo"})
    back = read_wav(path)
    assert back.sample_rate == 22050 and back.samples.size == audio.size
    assert np.abs(back.samples - audio).max() < 1e-4
    assert back.info == {"ICMT": '{"generator":"Atelier"}', "INAM": "héllo"}
    import wave

    with wave.open(str(path)) as w:  # the stdlib reader (like any player) accepts the file
        assert (w.getframerate(), w.getsampwidth(), w.getnchannels(), w.getnframes()) == (22050, 2, 1, audio.size)
