"""The chat transcript: one bubble per message, markdown rendered, with Copy / Read aloud.

Streaming appends text to the last bubble; re-rendering markdown on every token would
cost more than the token itself, so a bubble re-renders at most ~20 times a second.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QScrollArea, QSizePolicy, QVBoxLayout, QWidget

ROLE_NAMES = {"user": "You", "assistant": "Assistant", "system": "System"}


class MessageBubble(QFrame):
    read_aloud = Signal(str)

    def __init__(self, role: str, text: str = "", footer: str = "", parent=None):
        super().__init__(parent)
        self.role = role
        self._text = text
        self.setObjectName(f"bubble_{role}")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        lay = QVBoxLayout(self)
        head = QHBoxLayout()
        head.addWidget(QLabel(f"<b>{ROLE_NAMES.get(role, role)}</b>"))
        head.addStretch(1)
        if role == "assistant":
            self.copy_button = QPushButton("Copy")
            self.copy_button.setToolTip("Copy this reply to the clipboard")
            self.copy_button.clicked.connect(self.copy)
            self.read_button = QPushButton("Read aloud")
            self.read_button.clicked.connect(lambda: self.read_aloud.emit(self._text))
            head.addWidget(self.copy_button)
            head.addWidget(self.read_button)
        lay.addLayout(head)
        self.body = QLabel()
        self.body.setWordWrap(True)
        self.body.setTextFormat(Qt.TextFormat.MarkdownText)
        self.body.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse | Qt.TextInteractionFlag.LinksAccessibleByMouse)
        self.body.setOpenExternalLinks(False)  # offline app: links never open a browser by surprise
        self.body.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        lay.addWidget(self.body)
        self.footer = QLabel(footer)
        self.footer.setStyleSheet("color: gray; font-size: 11px;")
        lay.addWidget(self.footer)
        self._render_timer = QTimer(self, singleShot=True, interval=50, timeout=self._render)
        self._render()

    @property
    def text(self) -> str:
        return self._text

    def append(self, piece: str) -> None:
        self._text += piece
        if not self._render_timer.isActive():
            self._render_timer.start()

    def set_footer(self, text: str) -> None:
        self.footer.setText(text)

    def finish(self) -> None:
        self._render_timer.stop()
        self._render()

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(self._text)

    def _render(self) -> None:
        self.body.setText(self._text or "…")


class Transcript(QScrollArea):
    read_aloud = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWidgetResizable(True)
        self._inner = QWidget()
        self._layout = QVBoxLayout(self._inner)
        self._layout.addStretch(1)
        self.setWidget(self._inner)
        self.bubbles: list[MessageBubble] = []
        self.verticalScrollBar().rangeChanged.connect(self._follow)
        self._stick_to_bottom = True

    def clear(self) -> None:
        for b in self.bubbles:
            b.setParent(None)
            b.deleteLater()
        self.bubbles = []

    def add(self, role: str, text: str = "", footer: str = "") -> MessageBubble:
        bubble = MessageBubble(role, text, footer)
        bubble.read_aloud.connect(self.read_aloud)
        self._layout.insertWidget(self._layout.count() - 1, bubble)
        self.bubbles.append(bubble)
        self._stick_to_bottom = True
        return bubble

    def _follow(self, _min: int, maximum: int) -> None:
        bar = self.verticalScrollBar()
        if self._stick_to_bottom or bar.value() >= bar.maximum() - 40:
            bar.setValue(maximum)
        self._stick_to_bottom = False
