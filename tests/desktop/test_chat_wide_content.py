"""Wide content in the chat at the smallest supported window (900×600): a very long chat
title or a very long code line must not push the list or the transcript sideways."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QApplication

from desktop.engines.packs.library import Library
from desktop.settings import Settings
from desktop.outputs.chat_store import ChatStore
from desktop.ui.main_window import AppContext, MainWindow
from desktop.ui.notifier import Notifier

LONG_TITLE = "A very long chat title about " + "many different things and more " * 12
LONG_LINE = "result = compute(" + ", ".join(f"argument_{i}" for i in range(60)) + ")"


@pytest.fixture
def chat(qtbot, atelier_home):
    store = ChatStore()
    conv = store.create(title=LONG_TITLE)
    store.add_message(conv.id, "user", "Show me one long line of code.")
    store.add_message(conv.id, "assistant", f"Here it is:\n\n```python\n{LONG_LINE}\nprint(result)\n```\n\nThat is all.")
    store.close()
    window = MainWindow(AppContext(Settings(), Notifier(), Library()))
    qtbot.addWidget(window)
    window.resize(900, 600)
    window.show()
    qtbot.waitExposed(window)
    studio = window.studios["Chat"]
    window.tabs.setCurrentWidget(studio)
    qtbot.waitUntil(lambda: len(studio.transcript.bubbles) == 2)
    QApplication.processEvents()
    yield window, studio
    window.close()


def test_a_long_chat_title_gives_no_sideways_scrollbar_in_the_list(qtbot, chat):
    window, studio = chat
    assert window.width() == 900
    item = studio.conversations.item(0)
    assert item.text() == LONG_TITLE.strip() or item.text() == LONG_TITLE
    qtbot.waitUntil(lambda: studio.conversations.viewport().width() > 0)
    view = studio.conversations
    assert not view.horizontalScrollBar().isVisible()
    assert view.visualItemRect(item).width() <= view.viewport().width()  # cut with "…", not clipped off-screen
    assert item.toolTip().startswith("A very long chat title")  # the whole title is one hover away


def test_a_long_code_line_scrolls_inside_its_block_not_the_transcript(qtbot, chat):
    window, studio = chat
    reply = studio.transcript.bubbles[-1]
    (code, _copy), = reply.code_blocks()
    assert LONG_LINE in code
    QApplication.processEvents()
    assert window.width() == 900
    assert studio.transcript.horizontalScrollBar().maximum() == 0  # the transcript keeps its width
    assert reply.width() <= studio.transcript.viewport().width()
    block = next(w for b, w in reply._blocks if b.kind == "code")
    # the long line is reachable: the code block scrolls sideways within itself
    assert block.scroll.horizontalScrollBar().maximum() > 0
