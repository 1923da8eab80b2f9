"""The Chat studio: conversations on the left, the transcript, the composer, settings.

Replies stream token by token from the text engine through the one worker; Stop aborts
before the next token. A reply is stored when it finishes or is stopped, so history
survives restarts and a crash loses at most the reply in flight.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from desktop.engines.atomic_write import write_text_atomic
from desktop.engines.events import Done, Token
from desktop.engines.text import ChatRequest
from desktop.audit import record_job
from desktop.defaults import default_model
from desktop.provenance import provenance_record
from desktop.store import ChatStore
from desktop.ui.chat_messages import Transcript
from desktop.ui.chat_settings import ChatSettingsPanel
from desktop.ui.engine_slot import EngineSlot

FINISH_NOTES = {"context_full": "stopped: the context window is full", "length": "stopped at the max-token limit", "stop": "stopped at a stop string"}


class ChatStudio(QWidget):
    reply_finished = Signal(str)  # outcome: done | aborted | error (tests and the status bar)

    def __init__(self, ctx, store: ChatStore | None = None):
        super().__init__()
        self.ctx = ctx
        self.store = store or ChatStore()
        self.store.prune(ctx.settings.load().history_days)
        self.slot = EngineSlot("text", ctx.settings.runtime, ctx.notifier, self)
        self.conversation_id: int | None = None
        self._pending_send = False  # Send pressed while the model was still loading
        self._bubble = None
        self._reply_stats: dict = {}
        self._build()
        self.slot.loading.connect(self._on_loading)
        self.slot.loaded.connect(self._on_loaded)
        self.slot.load_failed.connect(self._on_load_failed)
        self.slot.busy_changed.connect(self._on_busy)
        events = getattr(ctx, "events", None)
        if events is not None:
            events.library_changed.connect(self.refresh_models)
        self.refresh_models()
        self._load_conversations()

    # -- layout --------------------------------------------------------------------------
    def _build(self) -> None:
        left = QWidget()
        ll = QVBoxLayout(left)
        self.conversations = QListWidget()
        self.conversations.currentItemChanged.connect(self._on_conversation_selected)
        ll.addWidget(self.conversations, 1)
        row = QHBoxLayout()
        for text, slot in (("New", self.new_conversation), ("Rename", self.rename_conversation), ("Delete", self.delete_conversation), ("Export", self.export_conversation)):
            b = QPushButton(text)
            b.clicked.connect(slot)
            row.addWidget(b)
        ll.addLayout(row)

        center = QWidget()
        cl = QVBoxLayout(center)
        self.transcript = Transcript()
        self.transcript.read_aloud.connect(self._read_aloud)
        cl.addWidget(self.transcript, 1)
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.hide()
        cl.addWidget(self.progress)
        self.input = QPlainTextEdit()
        self.input.setPlaceholderText("Message (Ctrl+Enter to send)")
        self.input.setMaximumHeight(120)
        cl.addWidget(self.input)
        bar = QHBoxLayout()
        self.status = QLabel("")
        self.status.setStyleSheet("color: gray;")
        bar.addWidget(self.status, 1)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        self.send_button = QPushButton("Send")
        self.send_button.setDefault(True)
        self.send_button.clicked.connect(self.send)
        bar.addWidget(self.stop_button)
        bar.addWidget(self.send_button)
        cl.addLayout(bar)
        QShortcut(QKeySequence("Ctrl+Return"), self, activated=self.send)
        QShortcut(QKeySequence("Ctrl+Enter"), self, activated=self.send)

        self.panel = ChatSettingsPanel()
        self.panel.model_chosen.connect(self._choose_model)
        split = QSplitter(Qt.Orientation.Horizontal)
        for w, stretch in ((left, 1), (center, 4), (self.panel, 1)):
            split.addWidget(w)
            split.setStretchFactor(split.count() - 1, stretch)
        split.setSizes([220, 760, 300])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(split)

    # -- models --------------------------------------------------------------------------
    def refresh_models(self) -> None:
        last = self.panel.current_model() or self.ctx.settings.value("chat/model") or default_model(self.ctx.library, "text")
        self.panel.set_models(self.ctx.library.entries(), last)

    def _choose_model(self, name: str) -> None:
        self.ctx.settings.set_value("chat/model", name)
        if self.conversation_id is not None:
            self.store.set_model(self.conversation_id, name)

    def _ensure_engine(self) -> bool:
        name = self.panel.current_model()
        if not name:
            self.ctx.notifier.warning("No text model is installed. Run the set-up command or import one in the Library.")
            return False
        if self.slot.name != name or self.slot.engine is None:
            self.slot.load(name)
            return False  # the message is sent once the model has loaded
        return True

    def _on_loading(self, name: str) -> None:
        self._set_loading(True, f"Loading {name}…")

    def _on_loaded(self, engine) -> None:
        self._set_loading(False, f"{self.slot.name} ready on {engine.provider.used.upper()} · context {engine.context_length} tokens")
        if self._pending_send:
            self._pending_send = False
            self.send()

    def _set_loading(self, on: bool, text: str) -> None:
        self.progress.setVisible(on)
        self.status.setText(text)

    def _on_load_failed(self, _exc) -> None:
        self._pending_send = False  # the typed message stays in the composer
        self._set_loading(False, "The model failed to load.")

    # -- conversations -------------------------------------------------------------------
    def _load_conversations(self, select: int | None = None) -> None:
        self.conversations.blockSignals(True)
        self.conversations.clear()
        for conv in self.store.conversations():
            item = QListWidgetItem(conv.title)
            item.setData(Qt.ItemDataRole.UserRole, conv.id)
            self.conversations.addItem(item)
        self.conversations.blockSignals(False)
        if self.conversations.count() == 0:
            self.new_conversation()
            return
        target = select if select is not None else self.conversation_id
        for i in range(self.conversations.count()):
            if self.conversations.item(i).data(Qt.ItemDataRole.UserRole) == target:
                self.conversations.setCurrentRow(i)
                return
        self.conversations.setCurrentRow(0)

    def _retitle_current(self) -> None:
        item = self.conversations.currentItem()
        if item is not None:
            item.setText(self.store.get(self.conversation_id).title)

    def _on_conversation_selected(self, item, _prev=None) -> None:
        if item is None:
            return
        if self.slot.busy:
            self.stop()
        self.conversation_id = item.data(Qt.ItemDataRole.UserRole)
        conv = self.store.get(self.conversation_id)
        self.panel.system.setPlainText(conv.system_prompt)
        self.transcript.clear()
        for m in self.store.messages(self.conversation_id):
            self.transcript.add(m.role, m.content, _footer(m.stats))

    def new_conversation(self) -> None:
        conv = self.store.create(model=self.panel.current_model() or "")
        self.conversation_id = conv.id
        self._load_conversations(select=conv.id)

    def rename_conversation(self) -> None:
        if self.conversation_id is None:
            return
        title, ok = QInputDialog.getText(self, "Rename chat", "Title:", text=self.store.get(self.conversation_id).title)
        if ok and title.strip():
            self.store.rename(self.conversation_id, title)
            self._retitle_current()

    def delete_conversation(self) -> None:
        if self.conversation_id is None:
            return
        title = self.store.get(self.conversation_id).title
        if QMessageBox.question(self, "Delete chat", f"Delete “{title}” and all its messages?") != QMessageBox.StandardButton.Yes:
            return
        self.stop()
        self.store.delete(self.conversation_id)
        self.conversation_id = None
        self._load_conversations()

    def export_conversation(self, path: str | None = None) -> None:
        if self.conversation_id is None:
            return
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Export chat as Markdown", f"{self.store.get(self.conversation_id).title}.md", "Markdown (*.md)")
            if not path:
                return
        pack = None
        if self.slot.engine is not None:
            pack = self.slot.engine.pack
        record = provenance_record("chat", pack, self.panel.sampling().__dict__, provider=self.slot.engine.provider.used if self.slot.engine else "")
        try:
            # the save dialog already asked before replacing a file
            write_text_atomic(path, self.store.to_markdown(self.conversation_id, {"provenance": record}), overwrite=True)
        except OSError as exc:
            self.ctx.notifier.error(f"Could not write {path}: {exc.strerror}")
            return
        self.ctx.notifier.info(f"Exported to {path}")

    # -- sending -------------------------------------------------------------------------
    def send(self) -> None:
        if self.slot.busy:
            return
        text = self.input.toPlainText()
        if not text.strip():
            self.ctx.notifier.warning("Type a message first.")
            return
        if not self._ensure_engine():
            self._pending_send = self.panel.current_model() is not None
            return
        if self.conversation_id is None:
            self.new_conversation()
        system = self.panel.system.toPlainText().strip()
        self.store.set_system_prompt(self.conversation_id, system)
        history = [{"role": m.role, "content": m.content} for m in self.store.messages(self.conversation_id) if m.role != "system"]
        messages = ([{"role": "system", "content": system}] if system else []) + history + [{"role": "user", "content": text}]
        request = ChatRequest(messages, max_tokens=self.panel.max_tokens.value(), sampling=self.panel.sampling())
        try:
            request.validate()
        except Exception as exc:  # RequestError: show it, keep the typed text
            self.ctx.notifier.error(exc)
            return
        self.store.add_message(self.conversation_id, "user", text)
        if len(history) == 0:
            self.store.rename(self.conversation_id, text[:60])
            self._retitle_current()
        self.transcript.add("user", text)
        self.input.clear()
        self._bubble = self.transcript.add("assistant", "")
        self._reply_stats = {}
        self._tokens = 0
        worker = self.slot.run(request, self._on_event, self._on_reply_end)
        if worker is None:  # refused before starting: put the text back
            self.input.setPlainText(text)

    def _on_event(self, ev) -> None:
        if isinstance(ev, Token):
            self._tokens += 1
            if ev.text:
                self._bubble.append(ev.text)
            if self._tokens % 8 == 0:
                self.status.setText(f"{self._tokens} tokens…")
        elif isinstance(ev, Done):
            self._reply_stats = dict(ev.stats, finish=ev.finish_reason)

    def _on_reply_end(self, outcome: str) -> None:
        bubble, self._bubble = self._bubble, None
        if bubble is None:
            return
        bubble.finish()
        stats = self._reply_stats or {}
        if outcome == "aborted":
            stats.update(finish="stopped by you", generated_tokens=self._tokens)
        if bubble.text or outcome != "error":
            self.store.add_message(self.conversation_id, "assistant", bubble.text, stats)
            engine = self.slot.engine
            record_job("chat", engine.pack if engine else None, {**self.panel.sampling().__dict__, "seed_used": stats.get("seed")}, bubble.text)
        bubble.set_footer(_footer(stats))
        self.status.setText(_footer(stats))
        note = FINISH_NOTES.get(stats.get("finish", ""))
        if note == FINISH_NOTES["context_full"]:
            self.ctx.notifier.warning("The reply stopped because the conversation filled the model's context window. Start a new chat to continue.")
        self.reply_finished.emit(outcome)

    def _on_busy(self, busy: bool) -> None:
        self.stop_button.setEnabled(busy)
        self.send_button.setEnabled(not busy)

    def stop(self) -> None:
        self.slot.stop()

    def _read_aloud(self, text: str) -> None:
        reader = getattr(self, "_reader", None)
        if reader is None:
            try:
                from desktop.ui.read_aloud import ReadAloud
            except ImportError:
                self.ctx.notifier.warning("Read aloud needs the Speech studio, which is not part of this build.")
                return
            reader = self._reader = ReadAloud(self.ctx)
        reader.speak(text)

    def shutdown(self) -> None:
        self.slot.close()
        self.store.close()


def _footer(stats: dict) -> str:
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
    return " · ".join(parts)
