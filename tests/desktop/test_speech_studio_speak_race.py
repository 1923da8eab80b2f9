"""Speak pressed right after the voice arrived, before its load reported finished (the
engine signal comes first): the clip must still be spoken. It used to wait forever for a
load that had already delivered, so Speak did nothing (and tests hung now and then)."""

from __future__ import annotations

import pytest

from desktop.engines.packs.importers import import_path
from desktop.engines.packs.library import Library
from desktop.settings import Settings
from desktop.ui.main_window import AppContext
from desktop.ui.notifier import Notifier
from tests.speech_helpers import tiny_voice  # noqa: F401 - fixture

pytest.importorskip("transformers")


def test_speak_in_the_moment_the_voice_arrives(qtbot, tiny_voice, atelier_home, monkeypatch):  # noqa: F811
    import desktop.audio as audio
    from desktop.ui.speech_studio import SpeechStudio

    monkeypatch.setattr(audio, "_sounddevice", lambda: (_ for _ in ()).throw(audio.PlaybackUnavailable("no PortAudio here")))
    lib = Library()
    import_path(tiny_voice, lib, name="tiny-voice")
    studio = SpeechStudio(AppContext(Settings(), Notifier(), lib), play=False)
    qtbot.addWidget(studio)
    studio.text.setPlainText("hello there.")
    in_flight = []

    def speak_now(_engine):
        in_flight.append(studio.runner.slot.loading_name)  # the load has not reported finished yet
        studio.speak()

    if studio.runner.engine is None:
        studio.runner.slot.loaded.connect(speak_now)
    with qtbot.waitSignal(studio.clip_added, timeout=30_000):
        if studio.runner.engine is not None:  # loaded before we could listen: nothing to race
            pytest.skip("the voice loaded before the test could listen")
    assert in_flight == ["tiny-voice"]
    studio.shutdown()
