"""The main window's size and place across restarts.

Saved whenever it changes (a moment after the last resize or move), not only when the window
closes: a window that goes away another way - the session ends, the process is killed, the X
window is destroyed - otherwise reopened at the first-run size instead of the size it had.

Never larger than the screen it opens on: the first-run size (1200×800) hung off a 900×600
screen, and so would a size saved on a larger monitor. Qt's ``restoreGeometry`` already keeps
a restored window on its screen; the first-run size and anything else are fitted here.
"""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QEvent, QObject, QRect, QSize, Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QStyle, QWidget

GEOMETRY_KEY = "window/geometry"
FIRST_RUN_SIZE = QSize(1200, 800)
SAVE_DELAY_MS = 400  # a drag-resize sends dozens of events; one write after it settles


class WindowGeometry(QObject):
    """Restores ``window``'s geometry from ``settings`` and keeps it saved as it changes."""

    def __init__(self, window: QWidget, settings):
        super().__init__(window)
        self.window, self.settings = window, settings
        self._pending = QTimer(self, singleShot=True, interval=SAVE_DELAY_MS, timeout=self.save)
        window.installEventFilter(self)

    def restore(self) -> None:
        saved = self.settings.value(GEOMETRY_KEY)
        if not (isinstance(saved, QByteArray) and not saved.isEmpty() and self.window.restoreGeometry(saved)):
            self.window.resize(FIRST_RUN_SIZE)
        fit_to_screen(self.window)

    def save(self) -> None:
        self._pending.stop()
        self.settings.set_value(GEOMETRY_KEY, self.window.saveGeometry())

    def eventFilter(self, watched, event) -> bool:
        changed = event.type() in (QEvent.Type.Resize, QEvent.Type.Move, QEvent.Type.WindowStateChange)
        if watched is self.window and changed and self.window.isVisible():
            self._pending.start()
        return False


def fit_to_screen(window: QWidget) -> None:
    """Shrink (and move) a normal window so that it, with a title bar, fits the available area
    of the screen it is on. A maximised or full-screen window is the screen's size already
    (its size for when it is restored was kept on screen by ``restoreGeometry``)."""
    if window.windowState() & (Qt.WindowState.WindowMaximized | Qt.WindowState.WindowFullScreen):
        return
    rect = window.geometry()
    screen = QGuiApplication.screenAt(rect.center()) or window.screen() or QGuiApplication.primaryScreen()
    if screen is None:
        return
    fitted = fitted_rect(rect, screen.availableGeometry(), window.style().pixelMetric(QStyle.PixelMetric.PM_TitleBarHeight))
    if fitted != rect:
        window.setGeometry(fitted)


def fitted_rect(rect: QRect, available: QRect, title_bar: int) -> QRect:
    """``rect`` (the client area) no larger than ``available`` less a title bar, and moved so
    that all of it is inside."""
    size = rect.size().boundedTo(QSize(available.width(), max(available.height() - title_bar, 1)))
    left = min(max(rect.x(), available.x()), available.x() + available.width() - size.width())
    top = min(max(rect.y(), available.y() + title_bar), available.y() + available.height() - size.height())
    return QRect(left, max(top, available.y()), size.width(), size.height())
