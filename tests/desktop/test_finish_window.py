"""The window's wiring after the big merge: Chat's read-aloud clips appear in the Speech
list at once, audit-log damage reaches the banner (even when found on a worker thread),
and the Library's Open folder says where the pack is when no file manager opens."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

import desktop.audio as audio
from desktop.engines.packs.importers import import_path
from desktop.engines.packs.library import Library
from desktop.outputs import audit
from desktop.settings import Settings
from desktop.ui.main_window import AppContext, MainWindow
from desktop.ui.notifier import Notifier
from desktop.ui.open_folder import FolderPathDialog
from tests.desktop.app_helpers import data_pack
from tests.speech_helpers import tiny_voice  # noqa: F401 - fixture


@pytest.fixture
def window(qtbot, atelier_home):
    w = MainWindow(AppContext(Settings(), Notifier(), Library()))
    qtbot.addWidget(w)
    return w


def test_a_reply_read_aloud_is_at_the_top_of_the_speech_list_at_once(qtbot, tiny_voice, atelier_home, monkeypatch):  # noqa: F811
    def missing():  # no sound device here: the clip is still saved
        raise audio.PlaybackUnavailable("Audio playback needs the PortAudio library, which is not installed. Clips can still be saved as WAV.")

    monkeypatch.setattr(audio, "_sounddevice", missing)
    lib = Library()
    import_path(tiny_voice, lib, name="tiny-voice")
    w = MainWindow(AppContext(Settings(), Notifier(), lib))
    qtbot.addWidget(w)
    chat, speech = w.studios["Chat"], w.studios["Speech"]
    before = speech.clip_list.count()
    bubble = chat.transcript.add("assistant", "The capital of France is Paris.", "", None)
    with qtbot.waitSignal(chat.clip_saved, timeout=60_000) as saved:
        qtbot.mouseClick(bubble.read_button, Qt.MouseButton.LeftButton)
    assert speech.clip_list.count() == before + 1
    top = speech.clip_list.item(0).data(Qt.ItemDataRole.UserRole)
    assert top.path == saved.args[0].path and top.text == "The capital of France is Paris."
    chat._reader.shutdown()


def test_audit_damage_found_on_a_worker_thread_reaches_the_banner(qtbot, window, monkeypatch):
    monkeypatch.setattr(audit, "_NOTICED", set())
    audit.record_job("text", None, {}, "first")
    with open(audit.log_path(), "a", encoding="utf-8") as fh:
        fh.write('{"seq": 1, "damaged\n')  # a complete but damaged line
    shown = []
    window.ctx.notifier.shown.connect(lambda level, text: shown.append((level, text, threading.current_thread() is threading.main_thread())))
    worker = threading.Thread(target=audit.record_job, args=("text", None, {}, "after the damage"))
    worker.start()
    worker.join(30)
    qtbot.waitUntil(lambda: bool(shown), timeout=10_000)
    level, text, on_gui_thread = shown[0]
    assert level == "warning" and "damaged lines" in text and on_gui_thread
    banner = window.ctx.notifier.banner
    assert not banner.isHidden() and "damaged lines" in banner.label.text()


def test_library_open_folder_without_a_file_manager_shows_the_path(qtbot, window):
    # the offscreen platform has no file manager, like a bare Linux session
    data_pack(window.ctx.library.destination("demo-text"))
    page = window.studios["Library"]
    page.refresh()
    page.select("demo-text")
    qtbot.mouseClick(page.details.open_button, Qt.MouseButton.LeftButton)
    dialog = next(iter(page.findChildren(FolderPathDialog)))
    assert dialog.isVisible() and dialog.path_field.text() == str(page.selected_entry().root)
    qtbot.mouseClick(dialog.copy_button, Qt.MouseButton.LeftButton)
    assert QApplication.clipboard().text() == str(page.selected_entry().root)
