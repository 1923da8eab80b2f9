"""The chat transcript: one bubble per message, markdown rendered, with Copy / Read aloud,
Edit and Delete on every stored message, and Regenerate on the last reply.

Streaming appends text to the last bubble; re-rendering markdown on every token would
cost more than the token itself, so a bubble re-renders at most ~10 times a second (and
once at the end), and only the blocks that changed (``chat_markdown``). Code blocks get a Copy button; a long
pasted message shows its first lines with "Show all".
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QScrollArea, QSizePolicy, QToolButton, QVBoxLayout, QWidget

from desktop.ui.chat_markdown import Block, is_long, preview, split_blocks
from desktop.ui.flow_layout import FlowLayout
from desktop.ui.tone import ToneLabel

ROLE_NAMES = {"user": "You", "assistant": "Assistant", "system": "System"}
FINISH_NOTES = {
    "context_full": "stopped: the context window is full",
    "length": "stopped at the max-token limit",
    "stop": "stopped at a stop string",
    "interrupted": "interrupted: the app ended while this reply was written",
}


class MessageBubble(QFrame):
    read_aloud = Signal(str)
    action = Signal(str, object)  # "edit" | "delete" | "regenerate", this bubble
    rendered = Signal()  # the shown text caught up with ``text``

    def __init__(self, role: str, text: str = "", footer: str = "", message_id: int | None = None, parent=None):
        super().__init__(parent)
        self.role = role
        self.message_id = message_id  # None while the reply is still being written
        self._text = text
        self.setObjectName(f"bubble_{role}")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        lay = QVBoxLayout(self)
        # the name on its own line above the actions: side by side they need > 400 px; the
        # actions wrap onto a second row in a narrow transcript instead of widening it
        head = FlowLayout()
        lay.addWidget(QLabel(f"<b>{ROLE_NAMES.get(role, role)}</b>"))
        self.version_buttons: dict[str, QToolButton] = {}
        self.version_label = QLabel()
        if role == "assistant":
            # "‹ 2/3 ›": the versions a reply had before Regenerate (chat_versions.py)
            for name, label, tip in (("older", "‹", "Show the previous version of this reply"), ("newer", "›", "Show the next version of this reply")):
                b = _action_button(label)
                b.setToolTip(tip)
                b.clicked.connect(lambda _checked=False, n=name: self.action.emit(n, self))
                self.version_buttons[name] = b
            head.addWidget(self.version_buttons["older"])
            head.addWidget(self.version_label)
            head.addWidget(self.version_buttons["newer"])
            # tool buttons: compact, so a reply's row of actions fits a 900 px window
            self.copy_button = _action_button("Copy")
            self.copy_button.setToolTip("Copy this reply to the clipboard")
            self.copy_button.clicked.connect(self.copy)
            self.read_button = _action_button("Read aloud")
            self.read_button.clicked.connect(lambda: self.read_aloud.emit(self._text))
            head.addWidget(self.copy_button)
            head.addWidget(self.read_button)
        self.action_buttons: dict[str, QToolButton] = {}
        for name, label, tip in (
            ("regenerate", "Regenerate", "Write this reply again (the old one stays reachable with ‹ ›)"),
            ("edit", "Edit", "Change the text of this message"),
            ("delete", "Delete", "Delete this message from the chat"),
        ):
            if name == "regenerate" and role != "assistant":
                continue
            b = _action_button(label)
            b.setToolTip(tip)
            b.clicked.connect(lambda _checked=False, n=name: self.action.emit(n, self))
            head.addWidget(b)
            self.action_buttons[name] = b
        self.set_stored(message_id)
        self.set_versions(None)
        lay.addLayout(head)
        self.body = QWidget()
        self._body_layout = QVBoxLayout(self.body)
        self._body_layout.setContentsMargins(0, 0, 0, 0)
        self._body_layout.addStretch(1)
        self._blocks: list[tuple[Block, QWidget]] = []
        lay.addWidget(self.body)
        self.expanded = not is_long(text)  # a long stored message starts collapsed
        self._full_view: QPlainTextEdit | None = None
        self.show_all = QPushButton()
        self.show_all.clicked.connect(self.expand)
        self.show_all.setVisible(not self.expanded)
        lay.addWidget(self.show_all, 0, Qt.AlignmentFlag.AlignLeft)
        self.footer = ToneLabel(footer)
        self.footer.setStyleSheet("font-size: 11px;")
        self.footer.setWordWrap(True)  # long stats must not widen the transcript (a sideways scrollbar)
        lay.addWidget(self.footer)
        self._render_timer = QTimer(self, singleShot=True, interval=100, timeout=self._render)
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

    def set_versions(self, versions: tuple[int, int] | None) -> None:
        """(shown, count) of a regenerated reply's versions; None hides the switch."""
        shown, count = versions or (0, 1)
        self.versions = versions
        self.version_label.setText(f"{shown + 1}/{count}")
        self.version_label.setVisible(versions is not None)
        for name, b in self.version_buttons.items():
            b.setVisible(versions is not None)
            b.setEnabled(shown > 0 if name == "older" else shown < count - 1)

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

    def expand(self) -> None:
        """Show all of a long message. As plain text in a scrolling box: it lays out only the
        lines in view, where markdown labels for 20,000 characters froze the window ~0.3 s."""
        self.expanded = True
        self.show_all.hide()
        for _block, w in self._blocks:
            w.setParent(None)
            w.deleteLater()
        self._blocks = []
        view = self._full_view = QPlainTextEdit()
        view.setReadOnly(True)
        view.setPlainText(self._text)
        view.setMinimumHeight(min(600, 24 + view.fontMetrics().lineSpacing() * (self._text.count("\n") + 1)))
        self._body_layout.insertWidget(0, view)

    def code_blocks(self) -> list[tuple[str, QPushButton]]:
        """(code, its Copy button) for each code block shown."""
        return [(w.code, w.copy_button) for b, w in self._blocks if b.kind == "code"]

    def _render(self) -> None:
        if self._full_view is not None:
            self._full_view.setPlainText(self._text)
            self.rendered.emit()
            return
        text = self._text
        if not self.expanded:
            lines, chars = text.count("\n") + 1, len(text)
            self.show_all.setText(f"Show all ({lines:,} lines, {chars:,} characters)")
            text = preview(text) + "\n\n…"
        blocks = split_blocks(text) or [Block("text", "…")]
        # keep the widgets of unchanged leading blocks; rebuild from the first change
        keep = 0
        while keep < min(len(blocks), len(self._blocks)) and blocks[keep] == self._blocks[keep][0]:
            keep += 1
        if keep < len(self._blocks) and keep < len(blocks) and _same_shape(blocks[keep], self._blocks[keep][0]):
            w = self._blocks[keep][1]  # the paragraph or code block being streamed: new text, same widget
            (w.set_code if blocks[keep].kind == "code" else w.setText)(blocks[keep].content)
            self._blocks[keep] = (blocks[keep], w)
            keep += 1
        for _block, w in self._blocks[keep:]:
            w.setParent(None)
            w.deleteLater()
        del self._blocks[keep:]
        for block in blocks[keep:]:
            w = _code_widget(block) if block.kind == "code" else _text_label(block.content, markdown=self.role != "user")
            self._body_layout.insertWidget(self._body_layout.count() - 1, w)  # above the stretch
            self._blocks.append((block, w))
        self.rendered.emit()


def _action_button(text: str) -> QToolButton:
    b = QToolButton()
    b.setText(text)
    return b


def _text_label(text: str, markdown: bool = True) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    # what the user typed is shown as typed (line breaks kept); replies are markdown
    label.setTextFormat(Qt.TextFormat.MarkdownText if markdown else Qt.TextFormat.PlainText)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse | Qt.TextInteractionFlag.LinksAccessibleByMouse)
    label.setOpenExternalLinks(False)  # offline app: links never open a browser by surprise
    # a word-wrapped label's height hint is guessed at a narrower width than it gets; the
    # spare height goes to the stretch below the blocks, not into gaps between paragraphs
    label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
    label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
    return label


def _same_shape(a: Block, b: Block) -> bool:
    return a.kind == b.kind and a.lang == b.lang


class CodeBlock(QFrame):
    """A fenced code block: monospace, as written (never markdown), with Copy code."""

    def __init__(self, block: Block):
        super().__init__()
        self.setObjectName("code_block")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet("#code_block { background: palette(alternate-base); }")
        lay = QVBoxLayout(self)
        head = QHBoxLayout()
        lang = ToneLabel(block.lang or "code")
        head.addWidget(lang)
        head.addStretch(1)
        self.copy_button = QPushButton("Copy code")
        self.copy_button.setToolTip("Copy this code block to the clipboard")
        self.copy_button.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.code))
        head.addWidget(self.copy_button)
        lay.addLayout(head)
        self.label = QLabel()
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # code keeps its lines as written (wrapping would change what it says); a line wider
        # than the reply scrolls inside this box, not the whole transcript sideways
        self.scroll = SidewaysScroll(self.label)
        lay.addWidget(self.scroll)
        self.set_code(block.content)

    def set_code(self, code: str) -> None:
        self.code = code
        self.label.setText(code)
        self.scroll.fit()


class SidewaysScroll(QScrollArea):
    """Shows all of ``content``'s height; only its width scrolls, with a scrollbar that takes
    room only when the content is wider than the box."""

    def __init__(self, content: QWidget):
        super().__init__()
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setWidgetResizable(True)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setWidget(content)

    def fit(self) -> None:
        hint = self.widget().sizeHint()
        wide = hint.width() > self.viewport().width()
        bar = self.horizontalScrollBar().sizeHint().height() if wide else 0
        self.setFixedHeight(hint.height() + bar + 2 * self.frameWidth())

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if event.oldSize().width() != event.size().width():
            self.fit()  # the bar comes or goes with the width; the height follows it


def _code_widget(block: Block) -> CodeBlock:
    return CodeBlock(block)


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

    def add(self, role: str, text: str = "", footer: str = "", message_id: int | None = None, versions: tuple[int, int] | None = None) -> MessageBubble:
        bubble = MessageBubble(role, text, footer, message_id)
        bubble.set_versions(versions)
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
