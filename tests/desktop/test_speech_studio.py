"""pytest-qt: Speak streams chunks, Stop stops within a sentence, clips are saved with
provenance, Read aloud reports busy. The voice is a tiny random VITS from our exporter."""

from __future__ import annotations

import json

import pytest

from desktop.engines.packs.importers import import_path
from desktop.engines.packs.library import Library
from desktop.engines.speech.wav import read_wav
from desktop.settings import Settings
from desktop.ui.main_window import AppContext
from desktop.ui.notifier import Notifier
from tests.speech_helpers import tiny_voice  # noqa: F401 - fixture

pytest.importorskip("transformers")


@pytest.fixture
def no_audio_device(monkeypatch):
    """This machine may or may not have a sound card; pretend it has no PortAudio."""
    import desktop.audio as audio

    def missing():
        raise audio.PlaybackUnavailable("Audio playback needs the PortAudio library, which is not installed.")

    monkeypatch.setattr(audio, "_sounddevice", missing)


@pytest.fixture
def ctx(tiny_voice, atelier_home, no_audio_device):  # noqa: F811
    lib = Library()
    import_path(tiny_voice, lib, name="tiny-voice")
    return AppContext(Settings(), Notifier(), lib)


@pytest.fixture
def studio(qtbot, ctx):
    from desktop.ui.speech_studio import SpeechStudio

    s = SpeechStudio(ctx)
    qtbot.addWidget(s)
    qtbot.waitUntil(lambda: s.runner.engine is not None, timeout=30_000)
    yield s
    s.shutdown()


def test_speak_streams_chunks_then_stop_stops_within_a_sentence(qtbot, studio):
    sentences = 300
    studio.text.setPlainText(" ".join(f"this is sentence number {i}." for i in range(sentences)))
    arrived = []
    studio.runner.chunk.connect(arrived.append)
    with qtbot.waitSignal(studio.runner.chunk, timeout=30_000):
        studio.speak()
    assert studio.stop_button.isEnabled() and not studio.speak_button.isEnabled()
    with qtbot.waitSignal(studio.runner.finished, timeout=30_000) as finished:
        studio.stop()
    assert finished.args[0].stopped
    assert 1 <= len(arrived) < sentences
    assert 0 < studio.progress.value() < studio.progress.maximum()
    qtbot.waitUntil(lambda: studio.speak_button.isEnabled(), timeout=5_000)
    # what was spoken before Stop is kept as a clip, marked as stopped
    assert studio.clip_list.count() == 1
    assert studio.selected_clip().record["settings"]["stopped"] is True


def test_finished_clip_is_saved_as_wav_with_provenance(qtbot, studio, tmp_path, ctx):
    studio.text.setPlainText("hello there. a second sentence.")
    studio.speed.setValue(120)
    with qtbot.waitSignal(studio.clip_added, timeout=30_000) as added:
        studio.speak()
    clip = added.args[0]
    assert studio.progress.value() == studio.progress.maximum()
    out = studio.save_as(tmp_path / "clip.wav")
    wav = read_wav(out)
    assert wav.sample_rate == 16000 and wav.samples.size == clip.samples.size > 0
    record = json.loads(wav.info["ICMT"])
    pack = ctx.library.load("tiny-voice")
    assert record["pack"] == "tiny-voice" and record["pack_sha256"] == pack.pack_hash
    assert record["settings"]["speed"] == pytest.approx(1.2) and isinstance(record["seed"], int)
    assert "AI-generated" in record["note"] and "AI-generated" in wav.info["IGNR"]
    # clips persist: a new studio lists it; delete removes the file
    from desktop.ui.speech_studio import SpeechStudio

    again = SpeechStudio(ctx)
    qtbot.addWidget(again)
    qtbot.waitUntil(lambda: again.runner.engine is not None, timeout=30_000)
    assert again.clip_list.count() == 1
    again.clip_list.setCurrentRow(0)
    again.delete_clip()
    assert again.clip_list.count() == 0 and not clip.path.exists()
    again.shutdown()


def test_ui_says_why_it_cannot_play(qtbot, studio, ctx):
    studio.text.setPlainText("hello there.")
    with qtbot.waitSignal(studio.clip_added, timeout=30_000):
        studio.speak()
    assert studio.play_note.isVisibleTo(studio) and "PortAudio" in studio.play_note.text()
    assert any(level == "warning" and "PortAudio" in text for level, text in ctx.notifier.history)


def test_empty_text_gives_a_message_and_starts_nothing(qtbot, studio, ctx):
    studio.text.setPlainText("   ")
    with qtbot.waitSignal(ctx.notifier.shown, timeout=5_000) as shown:
        studio.speak()
    assert shown.args[0] == "error" and "Nothing to say" in shown.args[1]
    assert studio.speak_button.isEnabled() and studio.clip_list.count() == 0


def test_read_aloud_speaks_and_reports_busy(qtbot, ctx):
    from desktop.ui.read_aloud import ReadAloud

    reader = ReadAloud(ctx)
    states = []
    reader.busy_changed.connect(states.append)
    with qtbot.waitSignal(reader.runner.finished, timeout=30_000) as finished:
        assert reader.speak("The capital of France is Paris.")
    assert finished.args[0].done and reader.runner.audio().size > 0
    qtbot.waitUntil(lambda: states == [True, False], timeout=5_000)
    reader.shutdown()


def test_switching_voice_while_loading_then_speaking_uses_the_chosen_voice(qtbot, ctx, tiny_voice):  # noqa: F811
    from desktop.ui.speech_studio import SpeechStudio

    import_path(tiny_voice, ctx.library, name="another-voice")
    s = SpeechStudio(ctx)  # starts loading the first voice
    qtbot.addWidget(s)
    s.voice.setCurrentText("tiny-voice" if s.voice.currentText() == "another-voice" else "another-voice")
    chosen = s.voice.currentText()
    s.text.setPlainText("hello there.")
    with qtbot.waitSignal(s.clip_added, timeout=30_000) as added:
        s.speak()  # while loads are in flight: queued, then spoken by the chosen voice
    assert added.args[0].record["pack"] == chosen
    assert not [t for level, t in ctx.notifier.history if level == "error"]
    s.shutdown()
