"""The Library page imports a .gguf through the same registry as the CLI: in the background,
the new pack selected, and a damaged file reported as one line."""

from __future__ import annotations

from desktop.engines.packs.library import Library
from desktop.ui.library import LibraryPage
from tests.desktop.app_helpers import ctx, messages  # noqa: F401 - ctx is a fixture


def _page(qtbot, ctx):  # noqa: F811
    page = LibraryPage(ctx)
    qtbot.addWidget(page)
    return page


def test_library_page_imports_a_gguf_file(qtbot, ctx, tiny_ggufs):  # noqa: F811
    path = tiny_ggufs("Q4_0")
    page = _page(qtbot, ctx)
    assert page.import_path(path) is not None
    qtbot.waitUntil(lambda: not page.job_bar.busy, timeout=60000)
    entries = [e for e in Library().entries() if e.manifest]
    assert [e.name for e in entries] == [path.stem]
    assert entries[0].manifest["source"]["kind"] == "gguf"
    assert page.list.count() == 1


def test_library_page_reports_a_damaged_gguf(qtbot, ctx, tmp_path):  # noqa: F811
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\xff" * 16)
    page = _page(qtbot, ctx)
    page.import_path(bad)
    qtbot.waitUntil(lambda: not page.job_bar.busy, timeout=30000)
    assert not [e for e in Library().entries() if e.manifest]
    said = messages(ctx)
    assert any("broken.gguf" in m and "\n" not in m for m in said), said


def test_library_page_shows_layer_progress_and_cancels_a_gguf_import(qtbot, ctx, tmp_path, monkeypatch):  # noqa: F811
    """Cancel pressed once the bar shows a layer: the conversion stops, nothing is added."""
    import threading

    from desktop.engines.text.gguf import background, convert
    from tests.gguf.tiny_gguf import tiny_llama, write_gguf

    released = threading.Event()

    class HeldAfterFirstLayer:
        """A tiny model converts in a blink: hold it after layer 1 until Cancel is pressed, so
        the test presses Cancel mid-conversion on any machine, not after it finished."""

        def get(self):
            report = background.PROGRESS.get()
            if report is None:
                return None

            def held(done, total):
                report(done, total)
                if done >= 1 and not released.is_set():
                    released.wait(60)
                    report(done, total)  # Cancel arrives here, as between two layers

            return held

    monkeypatch.setattr(convert, "PROGRESS", HeldAfterFirstLayer())

    model, tok = tiny_llama(layers=6)
    path = write_gguf(model, tok, tmp_path / "six-layers.gguf", "Q8_0")
    page = _page(qtbot, ctx)
    seen = []
    worker = page.import_path(path)
    worker.signals.yielded.connect(lambda ev: seen.append(getattr(ev, "message", "")))
    qtbot.waitUntil(lambda: any("layer" in m for m in seen) or not page.job_bar.busy, timeout=60000)
    assert any("layer" in m for m in seen), seen
    assert page.job_bar.bar.maximum() == 1000  # a real fraction, not the busy indicator
    page.job_bar.cancel_button.click()
    released.set()
    qtbot.waitUntil(lambda: not page.job_bar.busy, timeout=60000)
    assert not [e for e in Library().entries() if e.manifest]
    assert not [p for p in Library().root.iterdir() if not p.name.startswith(".")]
    assert any("cancelled" in m.lower() for m in messages(ctx)), messages(ctx)


def _drop(window, widget, path) -> bool:
    """Qt delivers drop events only while a real drag runs (sendEvent's are discarded before
    any filter), so the event goes to the window's drop filter as Qt would hand it over."""
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDropEvent

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    event = QDropEvent(QPointF(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    return window.chat_drop.eventFilter(widget, event)


def test_a_gguf_dropped_on_the_chat_imports_in_the_library(qtbot, ctx, tiny_ggufs, tmp_path):  # noqa: F811
    """Dropped on the message box (a widget that takes drops itself): the window turns to the
    Library, which converts it; a dropped text file stays the message box's business."""
    from desktop.ui.main_window import MainWindow

    window = MainWindow(ctx)
    qtbot.addWidget(window)
    chat, library = window.studios["Chat"], window.studios["Library"]
    box = chat.input.viewport() if hasattr(chat.input, "viewport") else chat.input
    note = tmp_path / "note.txt"
    note.write_text("hello")
    assert not _drop(window, box, note)
    assert window.tabs.currentWidget() is not library and not library.job_bar.busy
    path = tiny_ggufs("Q4_0")
    assert _drop(window, box, path)
    assert window.tabs.currentWidget() is library and library.job_bar.busy
    qtbot.waitUntil(lambda: not library.job_bar.busy, timeout=60000)
    assert [e.name for e in Library().entries() if e.manifest] == [path.stem]
