"""The context meter (tokens the chat would send / the model's context window) and the
per-chat draft, both fed by typing in the composer.

Counting means rendering the chat template and tokenizing the whole history, which takes
long enough on a long chat to stutter typing, so it runs on the worker pool; only the
latest request's answer is shown (older ones finish and are dropped).
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QProgressBar

from desktop.ui.chat_reply import POLICIES, count_stream
from desktop.workers import GeneratorWorker, start


def _tagged_count(serial: int, engine, messages: list[dict]):
    for tokens in count_stream(engine, messages):
        yield serial, tokens


class ContextMeter(QProgressBar):
    counted = Signal(int)  # tokens, once the latest count is shown (tests wait on it)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setTextVisible(True)
        self.setMaximumHeight(18)
        self.setToolTip("Tokens this chat would send (history, system prompt and your draft) / the model's context window")
        self._serial = 0
        self._wanted = (0, "")  # context length and policy of the latest count asked for
        self.tokens: int | None = None
        self.context_length = 0
        self.show_unknown()

    def show_unknown(self) -> None:
        self._serial += 1  # a count still in flight is no longer wanted
        self.tokens = None
        self.setRange(0, 1)
        self.setValue(0)
        self.setFormat("Context: counted once the model is loaded")

    def recount(self, engine, messages: list[dict], trims: str = "") -> None:
        """``trims``: the name of the chat's policy when it leaves messages out, else ''."""
        if engine is None:
            self.show_unknown()
            return
        self._serial += 1
        self._wanted = (engine.context_length, trims)
        worker = GeneratorWorker(_tagged_count, self._serial, engine, messages)
        # a bound slot, not a lambda: Qt drops it with the meter, so a count that finishes
        # after the chat closed never touches a deleted widget
        worker.signals.yielded.connect(self._on_counted)
        start(worker)

    def _on_counted(self, tagged: tuple[int, int]) -> None:
        serial, tokens = tagged
        length, trims = self._wanted
        self._show(serial, tokens, length, trims)

    def show_live(self, tokens: int, length: int) -> None:
        """While a reply streams: its prompt plus the tokens written so far (no count needed)."""
        self._serial += 1
        self._show(self._serial, tokens, length)

    def _show(self, serial: int, tokens: int, length: int, trims: str = "") -> None:
        if serial != self._serial:
            return
        self.tokens, self.context_length = tokens, length
        self.setRange(0, max(1, length))
        self.setValue(min(tokens, length))
        over = (f" — over: {trims} leaves older messages out" if trims else " — over the limit") if tokens > length else ""
        self.setFormat(f"Context: {tokens:,} / {length:,} tokens ({tokens / max(1, length):.0%}){over}")
        self.counted.emit(tokens)


class ChatDraftsAndMeter:
    """A mixin of ``ChatStudio``: typing is saved to the chat's draft and recounted in the
    meter after a short pause (both timers are the studio's)."""

    def _on_typing(self) -> None:
        self._draft_timer.start()
        self._meter_timer.start()

    def _save_draft(self) -> None:
        self._draft_timer.stop()
        if self.conversation_id is not None and not self.store.closed and self.store.exists(self.conversation_id):
            self.store.set_draft(self.conversation_id, self.input.toPlainText())

    def _conversation_messages(self, conversation_id: int, upto: int | None = None) -> list[dict]:
        """System prompt + stored history (up to, not including, message ``upto``)."""
        system = self.panel.system.toPlainText().strip() if conversation_id == self.conversation_id else self.store.get(conversation_id).system_prompt
        history = []
        for m in self.store.messages(conversation_id):
            if m.id == upto:
                break
            if m.role != "system":
                history.append({"role": m.role, "content": m.content})
        return ([{"role": "system", "content": system}] if system else []) + history

    def _recount(self) -> None:
        self._meter_timer.stop()
        if self.conversation_id is None or self.store.closed:
            return
        messages = self._conversation_messages(self.conversation_id)
        draft = self.input.toPlainText()
        if draft.strip():
            messages.append({"role": "user", "content": draft})
        policy = self.store.get(self.conversation_id).context_policy
        self.meter.recount(self.slot.engine, messages, "" if policy == "stop" else POLICIES.get(policy, ""))
