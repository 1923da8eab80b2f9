"""`python main.py speak`: WAV out, stdin text, one-line errors."""

from __future__ import annotations

import io
import json

import pytest

from desktop.cli import main
from desktop.engines.packs.importers import import_path
from desktop.engines.packs.library import Library
from desktop.engines.speech.wav import read_wav
from tests.speech_helpers import tiny_voice  # noqa: F401 - fixture

pytest.importorskip("transformers")


@pytest.fixture
def voice(tiny_voice, atelier_home):  # noqa: F811
    return import_path(tiny_voice, Library(), name="tiny-voice").name


def test_speak_writes_a_wav_with_provenance(voice, tmp_path, capsys):
    out = tmp_path / "out.wav"
    assert main(["speak", "--model", voice, "--text", "hello world. and more", "--out", str(out), "--seed", "4", "--speed", "1.5"]) == 0
    wav = read_wav(out)
    record = json.loads(wav.info["ICMT"])
    assert wav.sample_rate == 16000 and wav.samples.size > 0
    assert record["seed"] == 4 and record["settings"]["speed"] == 1.5 and record["pack"] == "tiny-voice"
    assert "wrote" in capsys.readouterr().err


def test_speak_reads_stdin_and_repeats_with_a_seed(voice, tmp_path, monkeypatch):
    paths = []
    for i in range(2):
        monkeypatch.setattr("sys.stdin", io.StringIO("text from standard input"))
        paths.append(tmp_path / f"{i}.wav")
        assert main(["speak", "--text", "-", "--out", str(paths[-1]), "--seed", "9"]) == 0
    assert (read_wav(paths[0]).samples == read_wav(paths[1]).samples).all()


def test_speak_errors_are_one_line(voice, tmp_path, capsys):
    assert main(["speak", "--text", "hi", "--out", str(tmp_path / "x.wav"), "--speed", "-1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: Speed must be between") and "\n" not in err
    assert main(["speak", "--model", "nope", "--text", "hi", "--out", str(tmp_path / "x.wav")]) == 2
    assert "No model named 'nope'" in capsys.readouterr().err
