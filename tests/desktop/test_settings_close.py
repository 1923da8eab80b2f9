"""Closing the window with unsaved settings asks (Save / Discard / Cancel) through the real
dialog; "Open folder" without a file manager shows the path with a Copy button; the audit
log is reachable from Settings."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QMessageBox, QPushButton

from desktop.engines.packs.library import Library, data_dir
from desktop.settings import Settings
from desktop.ui.main_window import AppContext, MainWindow
from desktop.ui.notifier import Notifier
from desktop.ui.open_folder import FolderPathDialog


@pytest.fixture
def window(qtbot, atelier_home):
    w = MainWindow(AppContext(Settings(), Notifier(), Library()))
    qtbot.addWidget(w)
    w.show()
    w.tabs.setCurrentWidget(w.studios["Settings"])
    return w


def answer_with(qtbot, button):
    """Press ``button`` in the question box as soon as it is up (it runs its own loop)."""

    def press():
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            box.button(button).click()
        else:
            QTimer.singleShot(20, press)

    QTimer.singleShot(0, press)


@pytest.mark.parametrize(
    ("button", "closes", "stored"),
    [(QMessageBox.StandardButton.Save, True, "dark"), (QMessageBox.StandardButton.Discard, True, "system"), (QMessageBox.StandardButton.Cancel, False, "system")],
)
def test_closing_with_unsaved_settings_asks(qtbot, window, button, closes, stored):
    page = window.studios["Settings"]
    page.theme.setCurrentIndex(page.theme.findData("dark"))
    assert page.unsaved()
    answer_with(qtbot, button)
    window.close()
    assert window.isVisible() is not closes
    assert Settings().load().theme == stored
    page.show_values(Settings().load())  # the teardown's close must not ask again


def test_closing_without_changes_asks_nothing(qtbot, window):
    page = window.studios["Settings"]
    assert not page.unsaved()
    window.close()  # a question box here would block the test until its timeout
    assert not window.isVisible()


def test_open_folder_without_a_file_manager_shows_the_path_to_copy(qtbot, window):
    # the offscreen platform has no file manager, like a bare Linux session
    page = window.studios["Settings"]
    qtbot.mouseClick(next(b for b in page.findChildren(QPushButton) if b.text() == "Open data folder"), Qt.MouseButton.LeftButton)
    dialog = next(d for d in page.findChildren(FolderPathDialog))
    assert dialog.isVisible() and dialog.path_field.text() == str(data_dir())
    qtbot.mouseClick(dialog.copy_button, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == str(data_dir())


def test_gallery_open_folder_says_where_the_images_are(qtbot, window):
    studio = window.studios["Image"]
    qtbot.mouseClick(next(b for b in studio.findChildren(QPushButton) if b.text() == "Open folder"), Qt.MouseButton.LeftButton)
    dialog = next(d for d in studio.findChildren(FolderPathDialog))
    assert dialog.path_field.text() == str(studio.store.root)


def test_audit_log_is_reachable_from_settings(qtbot, window):
    page = window.studios["Settings"]
    qtbot.mouseClick(page.audit_button, Qt.MouseButton.LeftButton)
    dialog = page.audit_dialog
    assert dialog.isVisible()
    qtbot.waitUntil(lambda: dialog.audit_view.last_report is not None, timeout=20_000)
    assert dialog.audit_view.status.text() != "Not verified yet."
