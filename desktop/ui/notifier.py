"""The one place errors and notices reach the user.

Workers hand typed errors here; the notifier shows ``title: message`` in a dismissable
banner and the status bar, and logs it. Nothing else in the UI shows error dialogs.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from desktop.engines.errors import AtelierError

log = logging.getLogger(__name__)


class Notifier(QObject):
    shown = Signal(str, str)  # level, text - tests and the status bar listen here
    # key, text: background work the window should show as busy; empty text = it ended
    activity = Signal(str, str)

    def __init__(self, banner: "Banner | None" = None):
        super().__init__()
        self.banner = banner
        self.history: list[tuple[str, str]] = []

    def error(self, exc: BaseException | str) -> None:
        if isinstance(exc, AtelierError):
            text = f"{exc.title}: {exc}"
        else:
            text = str(exc)
        self._show("error", text)

    def info(self, text: str) -> None:
        self._show("info", text)

    def warning(self, text: str) -> None:
        self._show("warning", text)

    def begin(self, key: str, text: str) -> None:
        self.activity.emit(key, text)

    def end(self, key: str) -> None:
        self.activity.emit(key, "")

    def _show(self, level: str, text: str) -> None:
        log.log(logging.ERROR if level == "error" else logging.INFO, text)
        self.history.append((level, text))
        if self.banner is not None:
            self.banner.show_message(level, text)
        self.shown.emit(level, text)


class Banner(QWidget):
    COLORS = {"error": "#b3261e", "warning": "#8a6d00", "info": "#1f5fbf"}

    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(8, 4, 8, 4)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QPushButton("Dismiss")
        close.clicked.connect(self.hide)
        lay.addWidget(self.label, 1)
        lay.addWidget(close)
        self._timer = QTimer(self, singleShot=True, timeout=self.hide)
        self.hide()

    def show_message(self, level: str, text: str) -> None:
        self.label.setText(text)
        self.setStyleSheet(f"background:{self.COLORS.get(level, '#444')}; color:white; border-radius:4px;")
        self.show()
        # errors stay until dismissed; notices fade on their own
        if level == "error":
            self._timer.stop()
        else:
            self._timer.start(8000)
