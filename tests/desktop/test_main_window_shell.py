"""The window shell: Ctrl+Enter / Esc reach the visible studio, layout is remembered,
background loads show in the status bar."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QLabel, QSplitter, QVBoxLayout, QWidget

import desktop.ui.main_window as main_window
from desktop.engines.packs.library import Library


class Painter(QWidget):
    """A Studio (primary action, stop, shutdown); it has a splitter to remember."""

    def __init__(self, ctx):
        super().__init__()
        self.calls: list[str] = []
        self.splitter = QSplitter()
        self.splitter.addWidget(QLabel("left"))
        self.splitter.addWidget(QLabel("right"))
        QVBoxLayout(self).addWidget(self.splitter)

    def primary_action(self):
        self.calls.append("generate")

    def stop(self):
        self.calls.append("stop")

    def shutdown(self):
        self.calls.append("shutdown")


class Voice(QWidget):
    def __init__(self, ctx):
        super().__init__()
        self.calls: list[str] = []

    def primary_action(self):
        self.calls.append("speak")

    def stop(self):
        self.calls.append("stop")

    def shutdown(self):
        self.calls.append("shutdown")


class Viewer(QWidget):
    """Not a Studio: it has a method called like an action, but no primary_action."""

    def __init__(self, ctx):
        super().__init__()
        self.calls: list[str] = []

    def generate(self):
        self.calls.append("generate")


def _window(qtbot, monkeypatch):
    here = __name__
    monkeypatch.setattr(main_window, "STUDIOS", (("Paint", here, "Painter"), ("Voice", here, "Voice"), ("View", here, "Viewer"), ("Missing", "desktop.ui.no_such_studio", "X")))
    window = main_window.MainWindow()
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)  # shortcuts only fire in the active window
    return window


def _press(qtbot, window, key, modifier=Qt.KeyboardModifier.NoModifier):
    QTest.keyClick(window.tabs.currentWidget(), key, modifier)


def test_ctrl_enter_and_escape_reach_only_the_visible_studio(qtbot, monkeypatch):
    window = _window(qtbot, monkeypatch)
    paint, voice = window.studios["Paint"], window.studios["Voice"]
    assert isinstance(window.studios["Missing"], QLabel)  # a studio not in this build says so
    window.tabs.setCurrentWidget(paint)
    _press(qtbot, window, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    _press(qtbot, window, Qt.Key.Key_Escape)
    assert paint.calls == ["generate", "stop"] and voice.calls == []
    window.tabs.setCurrentWidget(voice)
    _press(qtbot, window, Qt.Key.Key_Enter, Qt.KeyboardModifier.ControlModifier)
    assert voice.calls == ["speak"] and paint.calls == ["generate", "stop"]
    viewer = window.studios["View"]
    window.tabs.setCurrentWidget(viewer)
    _press(qtbot, window, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert viewer.calls == []  # no getattr probing: only a Studio's primary action is bound


def test_closing_the_window_shuts_every_page_down(qtbot, monkeypatch):
    window = _window(qtbot, monkeypatch)
    paint, voice = window.studios["Paint"], window.studios["Voice"]
    window.close()
    assert paint.calls[-1:] == ["shutdown"] and voice.calls[-1:] == ["shutdown"]


def test_the_three_studios_are_studios_and_the_other_tabs_are_not(qtbot):
    from desktop.ui.chat import ChatStudio
    from desktop.ui.image_studio import ImageStudio
    from desktop.ui.library import LibraryPage
    from desktop.ui.settings_page import SettingsPage
    from desktop.ui.speech_studio import SpeechStudio
    from desktop.ui.studio import AsksBeforeClosing, Page, Stoppable, Studio

    for cls in (ChatStudio, ImageStudio, SpeechStudio):
        assert issubclass(cls, Studio), cls
    assert issubclass(LibraryPage, Page) and issubclass(LibraryPage, Stoppable) and not issubclass(LibraryPage, Studio)
    assert issubclass(SettingsPage, Page) and issubclass(SettingsPage, AsksBeforeClosing) and not issubclass(SettingsPage, Studio)


def test_window_layout_and_tab_are_remembered(qtbot, monkeypatch):
    window = _window(qtbot, monkeypatch)
    window.resize(700, 500)  # inside the offscreen screen (800×600): restoreGeometry clamps
    window.studios["Paint"].splitter.setSizes([100, 500])
    left, right = window.studios["Paint"].splitter.sizes()
    window.tabs.setCurrentIndex(1)
    window.close()
    again = _window(qtbot, monkeypatch)
    assert again.tabs.currentIndex() == 1 and again.size() == window.size()
    again.tabs.setCurrentIndex(0)
    qtbot.waitUntil(lambda: sum(again.studios["Paint"].splitter.sizes()) == left + right)
    assert again.studios["Paint"].splitter.sizes() == [left, right]


def test_engine_loading_shows_in_the_status_bar(qtbot, monkeypatch, tiny_packs):
    from desktop.engines.packs.importers import import_path
    from desktop.ui.engine_slot import EngineSlot

    window = _window(qtbot, monkeypatch)
    pack = import_path(tiny_packs["llama"], Library())
    slot = EngineSlot("text", window.ctx.settings.runtime, window.ctx.notifier)
    with qtbot.waitSignal(slot.loaded, timeout=60000):
        slot.load(pack.name)
        assert window.activity.isVisible() and pack.name in window.activity.label.text()
    qtbot.waitUntil(lambda: not window.activity.isVisible(), timeout=10000)
    slot.close()


def test_theme_setting_applies_when_settings_change(qtbot, monkeypatch):
    from PySide6.QtGui import QPalette
    from PySide6.QtWidgets import QApplication

    window = _window(qtbot, monkeypatch)
    values = window.ctx.settings.load()
    try:
        for theme, dark in (("dark", True), ("light", False)):
            values.theme = theme
            window.ctx.settings.save(values)
            window.ctx.events.settings_changed.emit()
            lightness = QApplication.palette().color(QPalette.ColorRole.Window).lightness()
            assert (lightness < 100) is dark, (theme, lightness)
    finally:
        values.theme = "system"
        window.ctx.settings.save(values)
        window.ctx.events.settings_changed.emit()
