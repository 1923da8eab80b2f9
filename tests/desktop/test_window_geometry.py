"""The main window reopens at the size it had, and never larger than the screen: the first-run
size hung off a small screen, and a window that went away without its close event (killed,
session ended, X window destroyed) reopened at the first-run size."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QByteArray, QRect
from PySide6.QtWidgets import QLabel, QMainWindow, QStyle

import desktop.ui.main_window as main_window
from desktop.settings import Settings
from desktop.ui.window_geometry import GEOMETRY_KEY, fitted_rect


class Page(QLabel):
    def __init__(self, ctx):
        super().__init__("page")


@pytest.fixture
def open_window(qtbot, monkeypatch):
    monkeypatch.setattr(main_window, "STUDIOS", (("Page", __name__, "Page"),))

    def open_():
        window = main_window.MainWindow()
        qtbot.addWidget(window)
        window.show()
        qtbot.waitExposed(window)
        return window

    return open_


def assert_fits_the_screen(window):
    available = window.screen().availableGeometry()
    title = window.style().pixelMetric(QStyle.PixelMetric.PM_TitleBarHeight)
    normal = window.normalGeometry() if window.isMaximized() else window.geometry()
    assert normal.width() <= available.width() and normal.height() + title <= available.height(), (normal, available)
    assert available.contains(normal), (normal, available)


def test_first_run_window_fits_the_screen(open_window):
    window = open_window()
    assert_fits_the_screen(window)  # 1200×800 was wider than the 800-pixel test screen


def test_a_size_saved_on_a_larger_screen_is_fitted(open_window):
    big = QMainWindow()
    big.setGeometry(QRect(100, 100, 2400, 1500))  # as saved on a monitor larger than this one
    Settings().set_value(GEOMETRY_KEY, big.saveGeometry())
    assert_fits_the_screen(open_window())


def test_reopens_at_the_size_it_had_even_without_a_close_event(qtbot, open_window):
    window = open_window()
    window.resize(640, 480)
    saved = lambda: Settings().value(GEOMETRY_KEY)  # noqa: E731
    probe = QMainWindow()
    qtbot.waitUntil(lambda: isinstance(saved(), QByteArray) and probe.restoreGeometry(saved()) and probe.size() == window.size(), timeout=5000)
    # the process ends here without closeEvent (killed, logged out): the size is already kept
    again = open_window()
    assert (again.width(), again.height()) == (640, 480)


def test_closed_maximised_reopens_maximised_within_the_screen(qtbot, open_window):
    window = open_window()
    window.showMaximized()
    qtbot.waitUntil(window.isMaximized)
    window.close()
    again = open_window()
    qtbot.waitUntil(again.isMaximized)
    assert_fits_the_screen(again)
    again.showNormal()
    qtbot.waitUntil(lambda: not again.isMaximized())
    assert_fits_the_screen(again)  # its size for "restore" is on the screen too


@pytest.mark.parametrize(
    "rect, expected",
    [
        (QRect(2, 40, 1200, 800), QRect(0, 20, 900, 580)),  # the first-run size on a 900×600 screen
        (QRect(10, 40, 880, 540), QRect(10, 40, 880, 540)),  # fits: unchanged
        (QRect(-300, 500, 600, 400), QRect(0, 200, 600, 400)),  # partly off screen: moved in
    ],
)
def test_fitted_rect_keeps_the_window_and_its_title_bar_on_screen(rect, expected):
    assert fitted_rect(rect, QRect(0, 0, 900, 600), 20) == expected
