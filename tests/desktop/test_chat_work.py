"""pytest-qt on the real ChatStudio and a real tiny model: the chat never loses work.

Switching chats or closing the window while a reply streams, a message too long for the
context window, per-message edit/delete/regenerate, context policies and the meter, drafts,
and Export. A probe on the worker thread holds the reply at a chosen token, so "while it
streams" is a fact of the test, not a race with a fast tiny model.
"""

from __future__ import annotations

import threading
import time

import pytest
from PySide6.QtCore import Qt

import desktop.ui.engine_slot as engine_slot
from desktop.engines.events import Token
from desktop.outputs.chat_store import ChatStore
from tests.desktop.test_chat import ctx, make_studio  # noqa: F401 - the fixtures
from tests.speech_helpers import tiny_voice  # noqa: F401 - fixture

pytestmark = pytest.mark.slow  # builds and runs a real (tiny) exported model


def loaded(qtbot, studio, endless=True):
    with qtbot.waitSignal(studio.slot.loaded, timeout=60_000):
        studio.slot.load(studio.panel.current_model())
    if endless:
        studio.slot.engine.eos_ids = set()  # the random tiny model must not stop by chance
    return studio


class HoldAt:
    """Holds the reply's worker thread at token ``n`` until released (or Stop is pressed)."""

    def __init__(self, monkeypatch, n: int):
        self.n, self.release, self.reached = n, threading.Event(), threading.Event()
        real_start = engine_slot.start

        def start(worker, pool=None):
            seen = []

            def probe(ev):
                if isinstance(ev, Token):
                    seen.append(ev)
                    if len(seen) == self.n:
                        self.reached.set()
                        deadline = time.monotonic() + 30
                        while not (self.release.is_set() or worker.abort_requested) and time.monotonic() < deadline:
                            self.release.wait(0.005)

            worker.signals.yielded.connect(probe, Qt.ConnectionType.DirectConnection)
            return real_start(worker, pool)

        monkeypatch.setattr(engine_slot, "start", start)


def notes(ctx) -> list[tuple[str, str]]:
    """What the notifier shows the user, in order."""
    shown: list[tuple[str, str]] = []
    ctx.notifier.shown.connect(lambda level, text: shown.append((level, text)))
    return shown


def select(studio, conversation_id):
    for i in range(studio.conversations.count()):
        if studio.conversations.item(i).data(Qt.ItemDataRole.UserRole) == conversation_id:
            studio.conversations.setCurrentRow(i)  # what a click on the list does
            return
    raise AssertionError(conversation_id)


def test_switching_chat_mid_reply_keeps_the_reply_in_its_own_chat(qtbot, ctx, monkeypatch):
    studio = loaded(qtbot, make_studio(qtbot, ctx))
    studio.panel.max_tokens.setValue(12)
    first = studio.conversation_id
    studio.list_buttons["New"].click()
    second = studio.conversation_id
    select(studio, first)
    hold = HoldAt(monkeypatch, 4)
    studio.input.setPlainText("Question one")
    studio.send_button.click()
    qtbot.waitUntil(lambda: hold.reached.is_set() and studio._job.tokens >= 3, timeout=30_000)
    select(studio, second)  # the user looks at the other chat while the reply streams
    assert studio.transcript.bubbles == []
    assert "tokens" not in studio.status.text() and "Writing a reply in" in studio.status.text()
    with qtbot.waitSignal(studio.reply_finished, timeout=30_000) as done:
        hold.release.set()
    assert done.args[0].done
    assert studio.transcript.bubbles == [] and studio.store.messages(second) == []
    saved = studio.store.messages(first)
    assert [m.role for m in saved] == ["user", "assistant"]
    assert saved[1].stats["generated_tokens"] == 12 and saved[1].content
    assert "Question one" not in studio.status.text()  # the finished reply elsewhere is not news here

    # the next question, in the other chat, gets its own reply
    studio.input.setPlainText("Question two")
    with qtbot.waitSignal(studio.reply_finished, timeout=30_000):
        studio.send_button.click()
    assert [m.content for m in studio.store.messages(second)][0] == "Question two"
    assert len(studio.store.messages(second)) == 2 and len(studio.store.messages(first)) == 2
    select(studio, first)  # back: the reply is shown where it was asked
    assert [b.text for b in studio.transcript.bubbles] == ["Question one", saved[1].content]
    studio.shutdown()


def test_returning_mid_reply_shows_it_still_streaming(qtbot, ctx, monkeypatch):
    studio = loaded(qtbot, make_studio(qtbot, ctx))
    studio.panel.max_tokens.setValue(10)
    first = studio.conversation_id
    hold = HoldAt(monkeypatch, 3)
    studio.input.setPlainText("Hello")
    studio.send()
    qtbot.waitUntil(lambda: hold.reached.is_set() and studio._job.tokens >= 2, timeout=30_000)
    studio.new_conversation()
    select(studio, first)
    assert [b.role for b in studio.transcript.bubbles] == ["user", "assistant"]
    with qtbot.waitSignal(studio.reply_finished, timeout=30_000):
        hold.release.set()
    reply = studio.store.messages(first)[-1].content
    assert studio.transcript.bubbles[-1].text == reply and reply
    studio.shutdown()


def test_closing_mid_reply_stores_it_before_the_history_closes(qtbot, ctx, monkeypatch, atelier_home):
    studio = loaded(qtbot, make_studio(qtbot, ctx))
    studio.panel.max_tokens.setValue(50)
    conv = studio.conversation_id
    path = studio.store.path
    hold = HoldAt(monkeypatch, 6)
    studio.input.setPlainText("Tell me a story")
    studio.send()
    qtbot.waitUntil(lambda: hold.reached.is_set() and studio._job.tokens >= 5, timeout=30_000)
    shown = studio._job.text
    studio.shutdown()  # what the main window's closeEvent calls
    qtbot.waitUntil(lambda: not studio.slot.busy, timeout=10_000)  # late signals hit a closed store harmlessly
    again = ChatStore(path)
    saved = again.messages(conv)
    assert [m.role for m in saved] == ["user", "assistant"]
    assert saved[1].content == shown and shown
    assert saved[1].stats["finish"].startswith("stopped") and saved[1].stats["generated_tokens"] >= 5
    again.close()


def test_a_reply_in_flight_is_checkpointed_so_a_crash_loses_only_a_few_tokens(qtbot, ctx, monkeypatch):
    from desktop.ui.chat_reply import CHECKPOINT_TOKENS

    studio = loaded(qtbot, make_studio(qtbot, ctx))
    studio.panel.max_tokens.setValue(40)
    conv = studio.conversation_id
    hold = HoldAt(monkeypatch, CHECKPOINT_TOKENS + 4)
    studio.input.setPlainText("Tell me more")
    studio.send()
    qtbot.waitUntil(lambda: hold.reached.is_set() and studio._job.tokens >= CHECKPOINT_TOKENS + 3, timeout=30_000)
    other = ChatStore(studio.store.path)  # what a restart after a kill -9 would read now
    [_user, partial] = other.messages(conv)
    assert partial.stats == {"finish": "interrupted", "generated_tokens": CHECKPOINT_TOKENS}
    assert partial.content and studio._job.text.startswith(partial.content)
    other.close()
    select(studio, conv)  # re-rendered mid-reply: the checkpoint is not shown twice
    assert [b.role for b in studio.transcript.bubbles] == ["user", "assistant"]
    with qtbot.waitSignal(studio.reply_finished, timeout=30_000):
        hold.release.set()
    [_user, final] = studio.store.messages(conv)
    assert final.id == partial.id and final.stats["generated_tokens"] == 40 and final.stats["finish"] == "length"
    assert studio.transcript.bubbles[-1].text == final.content
    studio.shutdown()


def test_too_long_message_is_refused_before_it_is_stored(qtbot, ctx):
    ctx.settings.set_value("text/context_window", 256)
    studio = loaded(qtbot, make_studio(qtbot, ctx), endless=False)
    studio.panel.max_tokens.setValue(4)
    long_text = "many words here " * 200
    studio.input.setPlainText(long_text)
    shown = notes(ctx)
    with qtbot.waitSignal(studio.reply_finished, timeout=30_000):
        studio.send_button.click()
    [(level, text)] = shown
    assert level == "error" and "256" in text and "tokens" in text
    assert studio.store.messages(studio.conversation_id) == []
    assert studio.transcript.bubbles == [] and studio.input.toPlainText() == long_text
    for text in ("Short one", "Short two"):  # the chat is not poisoned by the refused message
        studio.input.setPlainText(text)
        with qtbot.waitSignal(studio.reply_finished, timeout=30_000) as done:
            studio.send()
        assert done.args[0].done
    saved = studio.store.messages(studio.conversation_id)
    assert [m.role for m in saved] == ["user", "assistant"] * 2 and saved[2].content == "Short two"
    studio.shutdown()


def test_rolling_window_leaves_out_the_oldest_turns_and_the_meter_counts(qtbot, ctx):
    ctx.settings.set_value("text/context_window", 256)
    studio = loaded(qtbot, make_studio(qtbot, ctx), endless=False)
    studio.panel.max_tokens.setValue(4)
    conv = studio.conversation_id
    for k in range(6):  # a history far longer than the window
        studio.store.add_message(conv, "user", f"old question {k} " * 12)
        studio.store.add_message(conv, "assistant", f"old answer {k} " * 12)
    studio.new_conversation()
    select(studio, conv)  # re-render; the meter recounts off the GUI thread
    with qtbot.waitSignal(studio.meter.counted, timeout=30_000) as counted:
        studio._recount()
    messages = studio._conversation_messages(conv)
    assert counted.args[0] == studio.slot.engine.count_tokens(messages) > 256
    assert "/ 256" in studio.meter.format() and "over the limit" in studio.meter.format()

    studio.input.setPlainText("And now?")
    shown = notes(ctx)
    with qtbot.waitSignal(studio.reply_finished, timeout=30_000):
        studio.send()
    assert [level for level, _ in shown] == ["error"]
    assert studio.input.toPlainText() == "And now?" and len(studio.store.messages(conv)) == 12  # Stop at the limit

    studio.panel.policy.setCurrentIndex(studio.panel.policy.findData("rolling_window"))
    studio.panel.policy.activated.emit(studio.panel.policy.currentIndex())  # what a pick in the combo sends
    assert studio.store.get(conv).context_policy == "rolling_window"
    shown.clear()
    with qtbot.waitSignal(studio.reply_finished, timeout=30_000):
        studio.send()
    [(level, text)] = shown
    assert level == "info" and "left out" in text and "Rolling window" in text
    assert [m.role for m in studio.store.messages(conv)][-2:] == ["user", "assistant"]
    assert studio.input.toPlainText() == ""
    studio.shutdown()
    again = make_studio(qtbot, ctx)
    select(again, conv)
    assert again.panel.policy_key() == "rolling_window"  # stored with the chat
    again.shutdown()


def test_edit_delete_and_regenerate_a_message(qtbot, ctx, monkeypatch):
    from PySide6.QtWidgets import QInputDialog, QMessageBox

    studio = loaded(qtbot, make_studio(qtbot, ctx))
    studio.panel.max_tokens.setValue(6)
    studio.panel.temperature.setValue(1.0)
    conv = studio.conversation_id
    for text in ("first", "second"):
        studio.input.setPlainText(text)
        with qtbot.waitSignal(studio.reply_finished, timeout=30_000):
            studio.send()
    bubbles = studio.transcript.bubbles
    assert [b.action_buttons["regenerate"].isVisibleTo(studio) for b in bubbles if b.role == "assistant"] == [False, True]

    monkeypatch.setattr(QInputDialog, "getMultiLineText", lambda *a, **k: ("first, edited", True))
    bubbles[0].action_buttons["edit"].click()
    assert studio.store.messages(conv)[0].content == "first, edited" and bubbles[0].text == "first, edited"

    old_reply = studio.store.messages(conv)[-1]
    with qtbot.waitSignal(studio.reply_finished, timeout=30_000):
        studio.transcript.bubbles[-1].action_buttons["regenerate"].click()
    saved = studio.store.messages(conv)
    assert len(saved) == 4 and saved[-1].created > old_reply.created and saved[-1].role == "assistant"
    assert saved[-1].content != old_reply.content or saved[-1].stats["seed"] != old_reply.stats["seed"]
    assert [b.text for b in studio.transcript.bubbles] == [m.content for m in saved]

    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    studio.transcript.bubbles[1].action_buttons["delete"].click()  # the first reply
    assert [m.content for m in studio.store.messages(conv)] == ["first, edited", "second", saved[-1].content]
    assert len(studio.transcript.bubbles) == 3
    studio.shutdown()


def test_drafts_are_kept_per_chat_across_a_restart(qtbot, ctx):
    studio = make_studio(qtbot, ctx)
    first = studio.conversation_id
    studio.input.setPlainText("half a thought")
    studio.list_buttons["New"].click()
    second = studio.conversation_id
    assert studio.input.toPlainText() == ""
    studio.input.setPlainText("another draft")
    select(studio, first)
    assert studio.input.toPlainText() == "half a thought"
    studio.shutdown()
    again = make_studio(qtbot, ctx)
    select(again, second)
    assert again.input.toPlainText() == "another draft"
    select(again, first)
    assert again.input.toPlainText() == "half a thought"
    again.shutdown()


def test_export_button_writes_the_chat(qtbot, ctx, monkeypatch, tmp_path):
    from PySide6.QtWidgets import QFileDialog

    studio = make_studio(qtbot, ctx)
    studio.store.add_message(studio.conversation_id, "user", "Export me")
    out = tmp_path / "chat.md"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), "Markdown (*.md)"))
    with qtbot.waitSignal(ctx.notifier.shown, timeout=5_000) as shown:
        studio.list_buttons["Export"].click()
    assert shown.args[0] == "info" and "Export me" in out.read_text()
    studio.shutdown()


def test_read_aloud_saves_what_it_read_as_a_clip(qtbot, tiny_voice, atelier_home, monkeypatch):  # noqa: F811
    """With no sound device the notice says clips can still be saved as WAV: one is."""
    import desktop.audio as audio
    from desktop.engines.packs.importers import import_path
    from desktop.engines.packs.library import Library
    from desktop.outputs.clip_store import ClipStore
    from desktop.settings import Settings
    from desktop.ui.main_window import AppContext
    from desktop.ui.notifier import Notifier
    from desktop.ui.read_aloud import ReadAloud

    def missing():
        raise audio.PlaybackUnavailable("Audio playback needs the PortAudio library, which is not installed. Clips can still be saved as WAV.")

    monkeypatch.setattr(audio, "_sounddevice", missing)
    lib = Library()
    import_path(tiny_voice, lib, name="tiny-voice")
    ctx = AppContext(Settings(), Notifier(), lib)
    reader = ReadAloud(ctx)
    with qtbot.waitSignal(reader.clip_saved, timeout=60_000) as saved:
        assert reader.speak("The capital of France is Paris.")
    clip = saved.args[0]
    [again] = ClipStore().clips()
    assert again.path == clip.path and again.text == "The capital of France is Paris." and again.samples.size > 0
    assert again.record.get("pack") == "tiny-voice"
    reader.shutdown()


def test_history_from_before_drafts_and_policies_opens_and_gains_them(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)  # the first release's schema, with one chat in it
    old.executescript(
        "CREATE TABLE conversations (id INTEGER PRIMARY KEY, title TEXT NOT NULL, system_prompt TEXT NOT NULL DEFAULT '', "
        "model TEXT NOT NULL DEFAULT '', created REAL NOT NULL, updated REAL NOT NULL);"
        "CREATE TABLE messages (id INTEGER PRIMARY KEY, conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE, "
        "role TEXT NOT NULL, content TEXT NOT NULL, stats TEXT NOT NULL DEFAULT '{}', created REAL NOT NULL);"
        "INSERT INTO conversations VALUES (1, 'Old chat', '', 'm', 1.0, 1.0);"
        "INSERT INTO messages VALUES (1, 1, 'user', 'hello', '{}', 1.0);"
    )
    old.commit()
    old.close()
    store = ChatStore(path)
    [conv] = store.conversations()
    assert (conv.title, conv.draft, conv.context_policy) == ("Old chat", "", "stop")
    store.set_draft(1, "kept")
    store.set_context_policy(1, "rolling_window")
    assert [m.content for m in store.messages(1)] == ["hello"]
    store.close()
    again = ChatStore(path)
    assert (again.get(1).draft, again.get(1).context_policy) == ("kept", "rolling_window")
    again.close()
