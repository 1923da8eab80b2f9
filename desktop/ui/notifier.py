"""The one place errors and notices reach the user.

Workers hand typed errors here; the notifier shows ``title: message`` in a dismissable
banner and the status bar, and logs it. Nothing else in the UI shows error dialogs.
``undoable`` adds an Undo button to a notice (deletes move to the trash and can come back).
"""

from __future__ import annotations

import logging
from typing import Callable

import shiboken6
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
        self.last_undo: Callable[[], None] | None = None

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

    def undoable(self, text: str, undo: Callable[[], None]) -> None:
        """A notice with an Undo button; ``undo`` runs at most once, when it is pressed."""
        self.last_undo = undo
        self._show("info", text, undo)

    def begin(self, key: str, text: str) -> None:
        self.activity.emit(key, text)

    def end(self, key: str) -> None:
        self.activity.emit(key, "")

    def _show(self, level: str, text: str, undo: Callable[[], None] | None = None) -> None:
        log.log(logging.ERROR if level == "error" else logging.INFO, text)
        self.history.append((level, text))
        # a job's late message can arrive after its window closed and Qt deleted the banner:
        # it is still logged and kept in the history, never shown on a dead widget
        if self.banner is not None and shiboken6.isValid(self.banner):  # its label goes with it
            self.banner.show_message(level, text, undo)
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
        self.undo_button = QPushButton("Undo")
        self.undo_button.clicked.connect(self._undo)
        self.undo_button.hide()
        self._undo_action: Callable[[], None] | None = None
        close = QPushButton("Dismiss")
        close.clicked.connect(self.hide)
        lay.addWidget(self.label, 1)
        lay.addWidget(self.undo_button)
        lay.addWidget(close)
        self._timer = QTimer(self, singleShot=True, timeout=self.hide)
        self.hide()

    def show_message(self, level: str, text: str, undo: Callable[[], None] | None = None) -> None:
        self.label.setText(text)
        # the colour on the banner only: set on the widget it would also paint the buttons
        # white-on-white in some styles
        self.label.setStyleSheet("color: white;")
        self.setStyleSheet(f"Banner {{ background:{self.COLORS.get(level, '#444')}; border-radius:4px; }}")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self._undo_action = undo
        self.undo_button.setVisible(undo is not None)
        self.show()
        # errors stay until dismissed; notices fade on their own (an Undo stays longer)
        if level == "error":
            self._timer.stop()
        else:
            self._timer.start(20000 if undo is not None else 8000)

    def _undo(self) -> None:
        action, self._undo_action = self._undo_action, None
        self.undo_button.hide()
        self.hide()
        if action is not None:
            action()
