"""pytest-qt: a reply streams into the chat view, Stop stops it, history persists."""

from __future__ import annotations

import pytest

from desktop.engines.packs.importers import import_path
from desktop.engines.packs.library import Library
from desktop.outputs.chat_store import ChatStore
from desktop.settings import Settings
from desktop.ui.main_window import AppContext
from desktop.ui.notifier import Notifier


@pytest.fixture
def ctx(tiny_packs, atelier_home):
    lib = Library()
    import_path(tiny_packs["llama"], lib, name="tiny-llama")
    return AppContext(Settings(), Notifier(), lib)


def make_studio(qtbot, ctx):
    from desktop.ui.chat import ChatStudio

    studio = ChatStudio(ctx)
    qtbot.addWidget(studio)
    return studio


def send_and_wait(qtbot, studio, text, timeout=60_000):
    studio.input.setPlainText(text)
    with qtbot.waitSignal(studio.reply_finished, timeout=timeout) as blocker:
        studio.send()
    return blocker.args[0]


def test_reply_streams_into_the_view_and_is_saved(qtbot, ctx):
    studio = make_studio(qtbot, ctx)
    studio.panel.max_tokens.setValue(12)
    with qtbot.waitSignal(studio.slot.loaded, timeout=60_000):
        studio.slot.load(studio.panel.current_model())
    studio.slot.engine.eos_ids = set()  # the random tiny model sometimes picks EOS first: no text to check
    assert send_and_wait(qtbot, studio, "Hello there").done
    roles = [b.role for b in studio.transcript.bubbles]
    assert roles == ["user", "assistant"]
    assert studio.transcript.bubbles[1].text  # the tiny model produced text
    saved = studio.store.messages(studio.conversation_id)
    assert [m.role for m in saved] == ["user", "assistant"]
    assert saved[1].content == studio.transcript.bubbles[1].text
    assert saved[1].stats["generated_tokens"] >= 1
    studio.shutdown()


def test_stop_stops_within_a_token(qtbot, ctx, monkeypatch):
    from PySide6.QtCore import Qt

    import desktop.ui.engine_slot as engine_slot
    from desktop.engines.events import Token

    studio = make_studio(qtbot, ctx)
    studio.panel.max_tokens.setValue(400)
    studio.panel.temperature.setValue(0)
    tokens, after_stop = [], []
    real_start = engine_slot.start

    def start_with_probe(worker, pool=None):
        # A probe on the worker thread, attached before the job starts: it presses Stop at
        # the third token (what the Stop button calls) and counts tokens produced after it.
        def probe(ev):
            if not isinstance(ev, Token):
                return  # the context policy's verdict comes first; count tokens only
            if worker.abort_requested:
                after_stop.append(ev)
                return
            tokens.append(ev)
            if len(tokens) == 3:
                studio.stop()

        worker.signals.yielded.connect(probe, Qt.ConnectionType.DirectConnection)
        return real_start(worker, pool)

    with qtbot.waitSignal(studio.slot.loaded, timeout=60_000):
        studio.slot.load(studio.panel.current_model())
    monkeypatch.setattr(engine_slot, "start", start_with_probe)  # only the reply's worker
    studio.input.setPlainText("Write a long story")
    with qtbot.waitSignal(studio.reply_finished, timeout=60_000) as blocker:
        studio.send()
    assert blocker.args[0].stopped
    assert after_stop == []  # the worker checks Stop between tokens: nothing after it
    saved = studio.store.messages(studio.conversation_id)
    assert saved[-1].role == "assistant" and saved[-1].stats.get("finish") == "stopped by you"
    assert saved[-1].stats["generated_tokens"] == 3
    studio.shutdown()


def test_history_survives_a_restart_and_exports_markdown(qtbot, ctx, tmp_path):
    studio = make_studio(qtbot, ctx)
    studio.panel.max_tokens.setValue(5)
    send_and_wait(qtbot, studio, "Remember me")
    conv = studio.conversation_id
    studio.store.rename(conv, "Kept chat")
    studio.shutdown()

    again = make_studio(qtbot, ctx)
    titles = [again.conversations.item(i).text() for i in range(again.conversations.count())]
    assert "Kept chat" in titles
    again.conversation_id = conv
    out = tmp_path / "chat.md"
    again.export_conversation(str(out))
    text = out.read_text()
    assert text.startswith("---") and "AI-generated" in text and "Remember me" in text
    again.shutdown()


def test_empty_message_is_refused_without_sending(qtbot, ctx):
    studio = make_studio(qtbot, ctx)
    with qtbot.waitSignal(ctx.notifier.shown, timeout=2000) as blocker:
        studio.input.setPlainText("   ")
        studio.send()
    assert blocker.args[0] == "warning"
    assert studio.transcript.bubbles == []
    studio.shutdown()


def test_chat_store_delete_and_rename(tmp_path):
    store = ChatStore(tmp_path / "h.sqlite3")
    c = store.create()
    store.add_message(c.id, "user", "x")
    store.rename(c.id, "  two   words ")
    assert store.get(c.id).title == "two words"
    store.delete(c.id)
    assert store.conversations() == [] and store.messages(c.id) == []


def test_model_imported_later_appears_without_restart(qtbot, tiny_packs, atelier_home):
    lib = Library()
    from desktop.ui.main_window import AppContext

    ctx = AppContext(Settings(), Notifier(), lib)
    studio = make_studio(qtbot, ctx)
    assert studio.panel.current_model() is None
    import_path(tiny_packs["gpt2"], lib, name="late-gpt2")
    ctx.events.library_changed.emit()
    assert studio.panel.current_model() == "late-gpt2"
    studio.shutdown()


def test_context_window_setting_reaches_the_engine(tiny_packs):
    from desktop.engines.base import open_engine
    from desktop.engines.packs.pack import load_pack
    from desktop.engines.providers import RuntimeSettings

    engine = open_engine(load_pack(tiny_packs["llama"]), RuntimeSettings(context_window=64))
    try:
        assert engine.context_length == 64
    finally:
        engine.close()
