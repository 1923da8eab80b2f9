"""The chat composer: Enter sends and Shift+Enter starts a new line, like the chat apps people
know; the swapped behaviour (Ctrl+Enter sends, Enter adds a line) is a setting. Ctrl+Enter
always sends."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QPlainTextEdit

ENTER_KEYS = (Qt.Key.Key_Return, Qt.Key.Key_Enter)


class Composer(QPlainTextEdit):
    submitted = Signal()

    def __init__(self, enter_sends: bool = True, parent=None):
        super().__init__(parent)
        self.setMaximumHeight(120)
        self.set_enter_sends(enter_sends)

    def set_enter_sends(self, on: bool) -> None:
        self.enter_sends = on
        self.setPlaceholderText("Message (Enter to send, Shift+Enter for a new line)" if on else "Message (Ctrl+Enter to send, Enter for a new line)")

    def keyPressEvent(self, event) -> None:
        if event.key() in ENTER_KEYS:
            mods = event.modifiers()
            ctrl = bool(mods & Qt.KeyboardModifier.ControlModifier)
            shift = bool(mods & Qt.KeyboardModifier.ShiftModifier)
            if ctrl or (self.enter_sends and not shift):
                self.submitted.emit()
                return
            if shift:  # a plain new line, whatever the platform makes of Shift+Enter
                self.insertPlainText("\n")
                return
        super().keyPressEvent(event)


def as_bool(value) -> bool:
    """QSettings INI hands booleans back as the strings 'true' / 'false'."""
    return value.lower() == "true" if isinstance(value, str) else bool(value)
