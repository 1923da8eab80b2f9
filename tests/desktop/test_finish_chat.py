"""Chat after the big merge: a real reply no longer widens the window past 900 px, secondary
text in Chat and Library is readable in both themes, and a shorter history retention takes
effect as soon as Settings are saved."""

from __future__ import annotations

import time

import pytest
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication, QLabel

from desktop.engines.packs.importers import import_path
from desktop.engines.packs.library import Library
from desktop.settings import Settings
from desktop.ui.main_window import AppContext, MainWindow
from desktop.ui.notifier import Notifier
from desktop.ui.theme import apply_theme
from desktop.ui.tone import contrast

R = QPalette.ColorRole


@pytest.fixture
def window(qtbot, tiny_packs, atelier_home):
    lib = Library()
    import_path(tiny_packs["llama"], lib, name="tiny-llama")
    w = MainWindow(AppContext(Settings(), Notifier(), lib))
    qtbot.addWidget(w)
    yield w
    apply_theme("light")


def _reply(qtbot, chat, text="hello there", tokens=12):
    # a fixed seed: with a random one the tiny random model now and then draws its end token
    # first, and a reply of 0 tokens has no speed to show
    chat.panel.fixed_seed.setChecked(True)
    chat.panel.seed.setValue(42)
    chat.panel.max_tokens.setValue(tokens)
    chat.input.setPlainText(text)
    with qtbot.waitSignal(chat.reply_finished, timeout=120_000) as blocker:
        chat.send()
    assert blocker.args[0].done


def test_after_a_real_reply_the_window_still_fits_900x600(qtbot, window):
    chat = window.studios["Chat"]
    window.tabs.setCurrentWidget(chat)
    _reply(qtbot, chat)
    assert "tok/s" in chat.status.text()  # the stats line that used to set the minimum width
    # the longest status the line can show (a slow first token, a long model name)
    chat.status.setText(chat.status.text() + " · first token 12.3 s · seed 1234567890 · model a-very-long-model-name-int4")
    hint = window.minimumSizeHint()
    assert hint.width() <= 900 and hint.height() <= 600, hint
    window.resize(900, 600)
    window.show()
    qtbot.waitExposed(window)
    assert window.width() == 900 and window.height() == 600
    QApplication.processEvents()
    assert not chat.transcript.horizontalScrollBar().isVisible()
    assert chat.transcript.bubbles and chat.transcript.bubbles[-1].footer.text()


@pytest.mark.parametrize("theme", ["dark", "light"])
def test_secondary_text_in_chat_and_library_is_readable(qtbot, window, theme):
    chat, library = window.studios["Chat"], window.studios["Library"]
    window.show()
    window.tabs.setCurrentWidget(chat)
    _reply(qtbot, chat, "write `code`:\n```python\nprint(1)\n```", tokens=4)
    # a code block's language label is one of the grey ones
    chat.transcript.add("assistant", "```python\nprint(1)\n```", "3 tokens · 9.9 tok/s")
    apply_theme(theme)  # after building: the labels must follow a theme switch
    window.tabs.setCurrentWidget(library)
    library.select("tiny-llama")
    assert library.details.integrity_state == "unknown"
    checked = 0
    for title in ("Chat", "Library"):
        window.tabs.setCurrentWidget(window.studios[title])
        QApplication.processEvents()
        for label in window.studios[title].findChildren(QLabel):
            if not label.isVisibleTo(window) or not label.text():
                continue
            assert "color" not in label.styleSheet(), (title, label.text()[:40], label.styleSheet())
            pal = label.palette()
            for bg in (R.Window, R.Base):
                assert contrast(pal.color(R.WindowText), pal.color(bg)) >= 4.5, (title, label.text()[:40], pal.color(R.WindowText).name())
            checked += 1
    assert checked > 10
    for failed in ("failed", "verified"):
        library.details.set_integrity(failed)
        pal = library.details.integrity.palette()
        assert contrast(pal.color(R.WindowText), pal.color(R.Window)) >= 4.5, failed


def test_a_shorter_retention_prunes_old_chats_when_settings_are_saved(qtbot, window):
    chat, page = window.studios["Chat"], window.studios["Settings"]
    old = chat.store.create(title="From last year")
    recent = chat.store.create(title="From today")
    chat.store.db.execute("UPDATE conversations SET updated = ? WHERE id = ?", (time.time() - 400 * 86400, old.id))
    chat._load_conversations(select=old.id)
    assert chat.conversation_id == old.id
    titles = lambda: [chat.conversations.item(i).text() for i in range(chat.conversations.count())]  # noqa: E731
    assert "From last year" in titles()
    page.history_days.setValue(30)
    assert page.save()
    assert not chat.store.exists(old.id) and chat.store.exists(recent.id)
    assert "From last year" not in titles() and "From today" in titles()
    assert chat.conversation_id != old.id and chat.store.exists(chat.conversation_id)
