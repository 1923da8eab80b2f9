"""What the Chat studio does to a chat or a message on request: rename, delete, export to
Markdown, edit / delete / regenerate one message, read a reply aloud.

A mixin of ``ChatStudio`` (it uses the studio's store, transcript and slot), kept apart so
each file stays readable. Destructive actions ask first.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox

from desktop.outputs.saving import save_chat_export
from desktop.ui.chat_versions import add_version, choose_version


class ChatActions:
    def rename_conversation(self) -> None:
        if self.conversation_id is None:
            return
        title, ok = QInputDialog.getText(self, "Rename chat", "Title:", text=self.store.get(self.conversation_id).title)
        if ok and title.strip():
            self.store.rename(self.conversation_id, title)
            self._retitle(self.conversation_id)

    def delete_conversation(self) -> None:
        if self.conversation_id is None:
            return
        title = self.store.get(self.conversation_id).title
        if QMessageBox.question(self, "Delete chat", f"Delete “{title}” and all its messages?") != QMessageBox.StandardButton.Yes:
            return
        if self._job is not None and self._job.conversation_id == self.conversation_id:
            self.stop()  # its reply has nowhere to go
        self.store.delete(self.conversation_id)
        self.conversation_id = None
        self._load_conversations()

    def apply_retention(self) -> int:
        """Drop chats older than the "Keep chat history" setting: at start-up AND whenever
        Settings are saved, so a shorter retention takes effect without a restart."""
        if self.store.closed:
            return 0
        pruned = self.store.prune(self.ctx.settings.load().history_days)
        if pruned:
            if self.conversation_id is not None and not self.store.exists(self.conversation_id):
                if self._job is not None and self._job.conversation_id == self.conversation_id:
                    self.stop()  # its reply has nowhere to go
                self.conversation_id = None
            self._load_conversations()
        return pruned

    def export_conversation(self, path: str | None = None) -> None:
        if self.conversation_id is None:
            return
        if not path:
            title = self.store.get(self.conversation_id).title.replace("/", "-").replace("\\", "-")
            suggested = str(Path(self.ctx.settings.save_folder()) / f"{title}.md")
            path, _ = QFileDialog.getSaveFileName(self, "Export chat as Markdown", suggested, "Markdown (*.md)")
            if not path:
                return
        engine, conversation = self.slot.engine, self.conversation_id
        try:
            # the save dialog already asked before replacing a file
            save_chat_export(
                path, lambda front: self.store.to_markdown(conversation, front), engine.pack if engine else None,
                self.panel.sampling(), engine.provider.used if engine else "",
            )
        except OSError as exc:
            self.ctx.notifier.error(f"Could not write {path}: {exc.strerror}")
            return
        self.ctx.settings.remember_save(path)
        self.ctx.notifier.info(f"Exported to {path}")

    # -- per-message actions -------------------------------------------------------------------
    def _on_message_action(self, name: str, bubble) -> None:
        if bubble.message_id is None:
            return
        if name == "regenerate":
            self.regenerate()
            return
        if self._job is not None and self._job.conversation_id == self.conversation_id:
            self.ctx.notifier.warning("A reply is being written in this chat: wait for it or press Stop first.")
            return
        if name in ("older", "newer"):
            self._show_version(bubble, -1 if name == "older" else 1)
            return
        if name == "delete":
            if QMessageBox.question(self, "Delete message", "Delete this message from the chat?") != QMessageBox.StandardButton.Yes:
                return
            self.store.delete_message(bubble.message_id)
            self.transcript.remove(bubble)
        elif name == "edit":
            text, ok = QInputDialog.getMultiLineText(self, "Edit message", "Message:", bubble.text)
            if not ok or not text.strip() or text == bubble.text:
                return
            self.store.edit_message(bubble.message_id, text)
            bubble.set_text(text)
        self.transcript.mark_last_reply()
        self._recount()

    # -- versions of a regenerated reply (chat_versions.py) -------------------------------------------
    def _stored(self, conversation_id: int, message_id: int):
        return next((m for m in self.store.messages(conversation_id) if m.id == message_id), None)

    def _keep_earlier_versions(self, conversation_id: int, replaced_id: int, text: str, stats: dict) -> None:
        """A regenerated reply carries the one it replaces (and that one's versions)."""
        old = self._stored(conversation_id, replaced_id)
        if old is not None:
            stats.update(add_version(old.content, old.stats, text, stats))

    def _show_version(self, bubble, step: int) -> None:
        """Swap in the previous / next version: it becomes the reply the model sees next."""
        message = self._stored(self.conversation_id, bubble.message_id)
        if message is None:
            return
        shown = message.stats.get("version", 0)
        content, stats = choose_version(message.content, message.stats, shown + step)
        self.store.update_message(message.id, content, stats)
        self._render_transcript()
        self._recount()

    def _read_aloud(self, text: str) -> None:
        reader = getattr(self, "_reader", None)
        if reader is None:
            try:
                from desktop.ui.read_aloud import ReadAloud
            except ImportError:
                self.ctx.notifier.warning("Read aloud needs the Speech studio, which is not part of this build.")
                return
            reader = self._reader = ReadAloud(self.ctx)
            reader.clip_saved.connect(self.clip_saved)
        reader.speak(text)
