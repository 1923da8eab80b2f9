"""The chat transcript: one bubble per message, markdown rendered, with Copy / Read aloud,
Edit and Delete on every stored message, and Regenerate on the last reply.

Streaming appends text to the last bubble; re-rendering markdown on every token would
cost more than the token itself, so a bubble re-renders at most ~20 times a second.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QScrollArea, QSizePolicy, QVBoxLayout, QWidget

ROLE_NAMES = {"user": "You", "assistant": "Assistant", "system": "System"}
FINISH_NOTES = {"context_full": "stopped: the context window is full", "length": "stopped at the max-token limit", "stop": "stopped at a stop string"}


class MessageBubble(QFrame):
    read_aloud = Signal(str)
    action = Signal(str, object)  # "edit" | "delete" | "regenerate", this bubble

    def __init__(self, role: str, text: str = "", footer: str = "", message_id: int | None = None, parent=None):
        super().__init__(parent)
        self.role = role
        self.message_id = message_id  # None while the reply is still being written
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
        self.action_buttons: dict[str, QPushButton] = {}
        for name, label, tip in (
            ("regenerate", "Regenerate", "Write this reply again (the old one is replaced when the new one is done)"),
            ("edit", "Edit", "Change the text of this message"),
            ("delete", "Delete", "Delete this message from the chat"),
        ):
            if name == "regenerate" and role != "assistant":
                continue
            b = QPushButton(label)
            b.setToolTip(tip)
            b.clicked.connect(lambda _checked=False, n=name: self.action.emit(n, self))
            head.addWidget(b)
            self.action_buttons[name] = b
        self.set_stored(message_id)
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

    def set_stored(self, message_id: int | None, last_reply: bool = False) -> None:
        """Edit/Delete only act on stored messages; Regenerate only on the last reply."""
        self.message_id = message_id
        for name, b in self.action_buttons.items():
            b.setVisible(message_id is not None and (name != "regenerate" or last_reply))

    def set_text(self, text: str) -> None:
        self._text = text
        self.finish()

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
    action = Signal(str, object)  # forwarded from the bubbles

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

    def remove(self, bubble: MessageBubble) -> None:
        if bubble in self.bubbles:
            self.bubbles.remove(bubble)
            bubble.setParent(None)
            bubble.deleteLater()

    def mark_last_reply(self) -> None:
        """Regenerate shows on the last bubble only, when it is a stored reply."""
        for i, b in enumerate(self.bubbles):
            b.set_stored(b.message_id, last_reply=i == len(self.bubbles) - 1 and b.role == "assistant")

    def add(self, role: str, text: str = "", footer: str = "", message_id: int | None = None) -> MessageBubble:
        bubble = MessageBubble(role, text, footer, message_id)
        bubble.read_aloud.connect(self.read_aloud)
        bubble.action.connect(self.action)
        self._layout.insertWidget(self._layout.count() - 1, bubble)
        self.bubbles.append(bubble)
        self._stick_to_bottom = True
        return bubble

    def _follow(self, _min: int, maximum: int) -> None:
        bar = self.verticalScrollBar()
        if self._stick_to_bottom or bar.value() >= bar.maximum() - 40:
            bar.setValue(maximum)
        self._stick_to_bottom = False


def footer_text(stats: dict) -> str:
    if not stats:
        return ""
    parts = []
    if stats.get("tokens_per_s"):
        parts.append(f"{stats['tokens_per_s']:.1f} tok/s")
    if stats.get("generated_tokens") is not None:
        parts.append(f"{stats['generated_tokens']} tokens")
    if stats.get("ttft_s") is not None:
        parts.append(f"first token {stats['ttft_s'] * 1000:.0f} ms")
    if stats.get("reused_tokens"):
        parts.append(f"{stats['reused_tokens']} cached")
    finish = stats.get("finish")
    if finish and finish != "eos":
        parts.append(FINISH_NOTES.get(finish, finish))
    if stats.get("edited"):
        parts.append("edited")
    return " · ".join(parts)
