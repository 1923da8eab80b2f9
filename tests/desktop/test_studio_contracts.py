"""The UI contracts between the window and its studios: the engine slot loads from the
app's library, and closing the chat closes every engine it holds (read aloud's voice too)."""

from __future__ import annotations

import shutil

import pytest

from desktop.engines.packs.importers import import_path
from desktop.engines.packs.library import Library
from desktop.settings import Settings
from desktop.ui.engine_slot import EngineSlot
from desktop.ui.main_window import AppContext
from desktop.ui.notifier import Notifier
from tests.speech_helpers import tiny_voice  # noqa: F401 - fixture
from tests.tiny_sources import tiny_text_pack  # noqa: F401 - fixture


def test_the_slot_loads_from_the_library_it_was_given_not_the_default_one(qtbot, tmp_path, tiny_text_pack):  # noqa: F811
    own = Library(tmp_path / "elsewhere")  # not the default models folder (ATELIER_HOME)
    shutil.copytree(tiny_text_pack, own.root / "tiny")
    name = own.entries()[0].name
    assert not any(e.name == name for e in Library().entries())
    notifier = Notifier()
    slot = EngineSlot("text", Settings().runtime, notifier, library=own)
    with qtbot.waitSignal(slot.loaded, timeout=60_000):
        slot.load(name)
    assert slot.name == name and slot.engine is not None
    assert not [t for level, t in notifier.history if level == "error"]
    slot.close()


@pytest.fixture
def ctx(tiny_voice, tiny_text_pack, atelier_home, monkeypatch):  # noqa: F811
    import desktop.audio as audio

    def missing():  # this machine may have no sound card; the clip is still made
        raise audio.PlaybackUnavailable("Audio playback needs the PortAudio library, which is not installed.")

    monkeypatch.setattr(audio, "_sounddevice", missing)
    lib = Library()
    import_path(tiny_voice, lib, name="tiny-voice")
    import_path(tiny_text_pack, lib, name="tiny-text")
    return AppContext(Settings(), Notifier(), lib)


def test_closing_the_chat_closes_the_read_aloud_voice(qtbot, ctx):
    from desktop.ui.chat import ChatStudio

    studio = ChatStudio(ctx)
    qtbot.addWidget(studio)
    with qtbot.waitSignal(studio.clip_saved, timeout=60_000):
        studio._read_aloud("The capital of France is Paris.")
    runner = studio._reader.runner
    voice = runner.engine
    assert voice is not None  # the second engine the chat holds
    closed = []
    original = voice.close
    voice.close = lambda: (closed.append(True), original())[1]
    studio.shutdown()
    assert closed == [True] and runner.engine is None


def test_closing_the_chat_mid_read_aloud_keeps_what_was_spoken_as_a_stopped_clip(qtbot, ctx):
    from desktop.ui.chat import ChatStudio

    studio = ChatStudio(ctx)
    qtbot.addWidget(studio)
    saved = []
    studio.clip_saved.connect(saved.append)
    text = " ".join(f"This is sentence number {i} of a long reply." for i in range(40))
    studio._read_aloud(text)
    runner = studio._reader.runner
    with qtbot.waitSignal(runner.chunk, timeout=60_000):
        pass  # the first sentence is spoken; the rest is still to come
    studio.shutdown()
    assert len(saved) == 1 and saved[0].record["settings"]["stopped"] is True
    assert runner.engine is None


def test_a_model_that_finishes_loading_after_the_chat_closed_sends_nothing(qtbot, ctx):
    from desktop.outputs.chat_store import ChatStore
    from desktop.ui.chat import ChatStudio

    studio = ChatStudio(ctx)
    qtbot.addWidget(studio)
    conv = studio.conversation_id
    ended = []  # the status bar's busy indicator ends when the load has finished, whatever came of it
    ctx.notifier.activity.connect(lambda key, text: ended.append(key) if not text else None)
    arrived = []
    studio.slot.loaded.connect(arrived.append)
    studio.input.setPlainText("Hello there")
    studio.send()  # the model loads first; the message waits for it
    assert studio.slot._loader is not None and studio._pending is not None
    studio.shutdown()
    qtbot.waitUntil(lambda: any(k.startswith("engine:text:") for k in ended), timeout=60_000)
    assert arrived == [] and studio.slot.engine is None  # a late engine is closed, not kept
    store = ChatStore()
    assert [m.content for m in store.messages(conv)] == [] and store.get(conv).draft == "Hello there"
    store.close()
