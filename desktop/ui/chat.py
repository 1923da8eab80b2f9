"""The Chat studio: conversations on the left, the transcript, the composer, settings.

Replies stream token by token from the text engine through the one worker; Stop aborts
before the next token. A reply belongs to the chat it was asked in (``ReplyJob``): it keeps
streaming there whatever chat is on screen, and is stored there when it finishes, is
stopped, or the window closes (before the history closes). A message is stored only once
the context policy has accepted it; until then - and whenever it is not sent - it stays in
the composer, and the composer's draft is kept per chat across restarts.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QProgressBar,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from desktop.defaults import default_model
from desktop.engines.errors import RequestError
from desktop.engines.events import Done, Progress, Token
from desktop.engines.text.engine import ChatRequest
from desktop.outputs.chat_store import ChatStore
from desktop.outputs.saving import save_chat_result
from desktop.ui.chat_actions import ChatActions
from desktop.ui.chat_composer import Composer, as_bool
from desktop.ui.chat_context import ChatDraftsAndMeter, ContextMeter
from desktop.ui.chat_list import ConversationList
from desktop.ui.chat_messages import Transcript, footer_text as _footer
from desktop.ui.chat_reply import CHECKPOINT_TOKENS, POLICIES, Accepted, ReplyJob, reply_stream
from desktop.ui.chat_settings import ChatSettingsPanel
from desktop.ui.finish_jobs import wait_until_idle
from desktop.ui.chat_versions import position as version_position
from desktop.ui.engine_slot import EngineSlot
from desktop.ui.tone import ToneLabel
from desktop.workers import STOPPED, Outcome

CLOSED_NOTE = "stopped: the app was closed"


class ChatStudio(ChatActions, ChatDraftsAndMeter, QWidget):
    reply_finished = Signal(object)  # the reply's Outcome (tests and the status bar)
    clip_saved = Signal(object)  # a reply read aloud, saved as a Clip (the Speech studio lists it)

    def __init__(self, ctx, store: ChatStore | None = None):
        super().__init__()
        self.ctx = ctx
        self.store = store or ChatStore()
        self.store.prune(ctx.settings.load().history_days)  # (later changes: apply_retention)
        self.slot = EngineSlot("text", ctx.settings.runtime, ctx.notifier, self, library=ctx.library)
        self.conversation_id: int | None = None
        self._pending = None  # what to do once the model has loaded (send or regenerate)
        self._job: ReplyJob | None = None
        self._build()
        # typing is saved to the chat's draft and recounted in the meter after a short pause
        self._draft_timer = QTimer(self, singleShot=True, interval=400, timeout=self._save_draft)
        self._meter_timer = QTimer(self, singleShot=True, interval=300, timeout=self._recount)
        self.input.textChanged.connect(self._on_typing)
        self.panel.system.textChanged.connect(self._meter_timer.start)
        self.slot.loading.connect(self._on_loading)
        self.slot.loaded.connect(self._on_loaded)
        self.slot.load_failed.connect(self._on_load_failed)
        self.slot.busy_changed.connect(self._on_busy)
        events = getattr(ctx, "events", None)
        if events is not None:
            events.library_changed.connect(self.refresh_models)
            events.settings_changed.connect(self.apply_retention)
        self.refresh_models()
        self._load_conversations()

    # -- layout --------------------------------------------------------------------------
    def _build(self) -> None:
        left = QWidget()
        ll = QVBoxLayout(left)
        self.conversations = ConversationList()
        self.conversations.currentItemChanged.connect(self._on_conversation_selected)
        ll.addWidget(self.conversations, 1)
        row = QGridLayout()  # two by two: one row of four made the list 356 px wide at least
        self.list_buttons: dict[str, QPushButton] = {}
        for text, slot in (("New", self.new_conversation), ("Rename", self.rename_conversation), ("Delete", self.delete_conversation), ("Export", self.export_conversation)):
            b = QPushButton(text)
            # clicked(bool) would pass its `checked` flag as the first argument (Export took
            # it for a path): the actions are called with none
            b.clicked.connect(lambda _checked=False, action=slot: action())
            row.addWidget(b, len(self.list_buttons) // 2, len(self.list_buttons) % 2)
            self.list_buttons[text] = b
        ll.addLayout(row)

        center = QWidget()
        cl = QVBoxLayout(center)
        self.transcript = Transcript()
        self.transcript.read_aloud.connect(self._read_aloud)
        self.transcript.action.connect(self._on_message_action)
        cl.addWidget(self.transcript, 1)
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.hide()
        cl.addWidget(self.progress)
        self.meter = ContextMeter()
        cl.addWidget(self.meter)
        self.input = Composer(enter_sends=as_bool(self.ctx.settings.value("chat/enter_sends", True)))
        self.input.submitted.connect(self.send)
        cl.addWidget(self.input)
        bar = QHBoxLayout()
        self.status = ToneLabel("")
        self.status.setWordWrap(True)  # "6.9 tok/s · 7 tokens · first token …" must not set the window's width
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

        self.panel = ChatSettingsPanel(self.ctx.settings)
        self.panel.model_chosen.connect(self._choose_model)
        self.panel.policy_chosen.connect(self._choose_policy)
        self.panel.enter_sends.setChecked(self.input.enter_sends)
        self.panel.enter_sends.toggled.connect(self._set_enter_sends)
        split = QSplitter(Qt.Orientation.Horizontal)
        for w, stretch in ((left, 1), (center, 4), (self.panel, 1)):
            split.addWidget(w)
            split.setStretchFactor(split.count() - 1, stretch)
        split.setSizes([220, 760, 300])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(split)

    def _set_enter_sends(self, on: bool) -> None:
        self.ctx.settings.set_value("chat/enter_sends", on)
        self.input.set_enter_sends(on)

    # -- models --------------------------------------------------------------------------
    def refresh_models(self) -> None:
        last = self.panel.current_model() or self.ctx.settings.value("chat/model") or default_model(self.ctx.library, "text")
        self.panel.set_models(self.ctx.library.entries(), last)

    def _choose_model(self, name: str) -> None:
        self.ctx.settings.set_value("chat/model", name)
        if self.conversation_id is not None:
            self.store.set_model(self.conversation_id, name)

    def _choose_policy(self, policy: str) -> None:
        if self.conversation_id is not None:
            self.store.set_context_policy(self.conversation_id, policy)
            self._recount()

    def _ensure_engine(self, then) -> bool:
        name = self.panel.current_model()
        if not name:
            self.ctx.notifier.warning("No text model is installed. Run the set-up command or import one in the Library.")
            return False
        if self.slot.name != name or self.slot.engine is None:
            self._pending = (then, self.conversation_id)  # done once the model has loaded
            self.slot.load(name)
            return False
        return True

    def _on_loading(self, name: str) -> None:
        self._set_loading(True, f"Loading {name}…")

    def _on_loaded(self, engine) -> None:
        self._set_loading(False, f"{self.slot.name} ready on {engine.provider.used.upper()} · context {engine.context_length} tokens")
        self._recount()
        pending, self._pending = self._pending, None
        if pending is not None and pending[1] == self.conversation_id:
            pending[0]()  # (the user moved to another chat meanwhile: its draft is not sent)

    def _set_loading(self, on: bool, text: str) -> None:
        self.progress.setVisible(on)
        self.status.setText(text)

    def _on_load_failed(self, _exc) -> None:
        self._pending = None  # the typed message stays in the composer
        self._set_loading(False, "The model failed to load.")

    # -- conversations -------------------------------------------------------------------
    def _load_conversations(self, select: int | None = None) -> None:
        self.conversations.blockSignals(True)
        self.conversations.clear()
        for conv in self.store.conversations():
            self.conversations.add(conv.id, conv.title)
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

    def _retitle(self, conversation_id: int) -> None:
        self.conversations.set_title(conversation_id, self.store.get(conversation_id).title)

    def _on_conversation_selected(self, item, _prev=None) -> None:
        if item is None:
            return
        self._save_draft()  # the chat being left keeps what was typed in it
        self.conversation_id = item.data(Qt.ItemDataRole.UserRole)
        conv = self.store.get(self.conversation_id)
        self.panel.system.setPlainText(conv.system_prompt)
        self.panel.set_policy(conv.context_policy)
        self.input.blockSignals(True)
        self.input.setPlainText(conv.draft)
        self.input.blockSignals(False)
        self._render_transcript()
        self._show_status()
        self._recount()

    def _render_transcript(self) -> None:
        job = self._job if self._job is not None and self._job.conversation_id == self.conversation_id else None
        if self._job is not None:
            self._job.bubble = None  # its bubble is about to go: it keeps streaming into the job
        self.transcript.clear()
        for m in self.store.messages(self.conversation_id):
            if job is not None and job.accepted and m.id in (job.replaces, job.message_id):
                continue  # the reply streaming below (and the one it regenerates)
            self.transcript.add(m.role, m.content, _footer(m.stats), m.id, versions=version_position(m.stats))
        if job is not None and job.accepted and not job.stored:
            job.bubble = self.transcript.add("assistant", job.text)
        self.transcript.mark_last_reply()

    def _show_status(self, text: str = "") -> None:
        """The status line speaks of the chat on screen; a reply elsewhere is only mentioned."""
        job = self._job
        if job is not None and not job.stored:
            if job.conversation_id == self.conversation_id:
                text = job.live_status() if job.accepted else "Sending…"
            elif self.store.exists(job.conversation_id):
                text = f"Writing a reply in “{self.store.get(job.conversation_id).title}”…"
        self.status.setText(text)

    def new_conversation(self) -> None:
        self._save_draft()
        conv = self.store.create(model=self.panel.current_model() or "", context_policy=self.panel.policy_key(), system_prompt=self.panel.preset_system_prompt())
        self._load_conversations(select=conv.id)

    # -- sending -------------------------------------------------------------------------
    def _refuse_while_busy(self) -> bool:
        if self._job is None and not self.slot.busy:
            return False
        self.ctx.notifier.warning("A reply is still being written: wait for it or press Stop.")
        return True

    def send(self) -> None:
        text = self.input.toPlainText()
        if not text.strip():
            self.ctx.notifier.warning("Type a message first.")
            return
        if self._refuse_while_busy() or not self._ensure_engine(self.send):
            return
        if self.conversation_id is None:
            self.new_conversation()
        system = self.panel.system.toPlainText().strip()
        self.store.set_system_prompt(self.conversation_id, system)
        self.panel.remember_system_prompt(system)  # the default for this model's next new chat
        messages = self._conversation_messages(self.conversation_id) + [{"role": "user", "content": text}]
        self._start(ReplyJob(self.conversation_id, text), messages)

    def regenerate(self) -> None:
        """Write the last reply again; the old one is replaced only once the new one exists."""
        if self.conversation_id is None or self._refuse_while_busy() or not self._ensure_engine(self.regenerate):
            return
        stored = self.store.messages(self.conversation_id)
        if len(stored) < 2 or stored[-1].role != "assistant" or stored[-2].role != "user":
            self.ctx.notifier.warning("Only the last reply, answering your last message, can be regenerated.")
            return
        messages = self._conversation_messages(self.conversation_id, upto=stored[-1].id)
        self._start(ReplyJob(self.conversation_id, None, replaces=stored[-1].id), messages)

    def _start(self, job: ReplyJob, messages: list[dict]) -> None:
        request = ChatRequest(messages, max_tokens=self.panel.max_tokens.value(), sampling=self.panel.sampling())
        try:
            request.validate()
        except RequestError as exc:  # show it; the typed text stays in the composer
            self.ctx.notifier.error(exc)
            return
        engine, policy = self.slot.engine, self.store.get(job.conversation_id).context_policy
        self._job = job
        worker = self.slot.run(
            request,
            lambda ev: self._on_event(job, ev),
            lambda outcome: self._on_reply_end(job, outcome),
            generate=lambda req: reply_stream(engine, req, policy),
        )
        if worker is None:
            self._job = None
            return
        self._show_status()

    def _on_event(self, job: ReplyJob, ev) -> None:
        if isinstance(ev, Token):
            job.add(ev.text)
            if job.tokens % CHECKPOINT_TOKENS == 0:
                self._checkpoint(job)
            if job.tokens % 4 == 0 and job.conversation_id == self.conversation_id:
                self.status.setText(job.live_status())
                self.meter.show_live(job.accepted.prompt_tokens + job.tokens, job.accepted.context_length)
        elif isinstance(ev, Accepted):
            self._on_accepted(job, ev)
        elif isinstance(ev, Progress) and ev.fraction is not None and job.conversation_id == self.conversation_id:
            self.status.setText(f"{ev.message}… {ev.fraction:.0%}")  # a long prompt: no token for a while
        elif isinstance(ev, Done):
            job.stats = dict(ev.stats, finish=ev.finish_reason)

    def _checkpoint(self, job: ReplyJob) -> None:
        """Write the reply so far, so that a crash or kill loses only the last few tokens. A
        regenerated reply is checkpointed beside the old one, which goes only at the end."""
        if job.stored or self.store.closed or not self.store.exists(job.conversation_id):
            return
        stats = {"finish": "interrupted", "generated_tokens": job.tokens}
        if job.message_id is None:
            job.message_id = self.store.add_message(job.conversation_id, "assistant", job.text, stats).id
        else:
            self.store.update_message(job.message_id, job.text, stats)

    def _on_accepted(self, job: ReplyJob, ev: Accepted) -> None:
        """The message fits: store it (clearing its draft) and open the reply's bubble."""
        job.accepted = ev
        cid = job.conversation_id
        if not self.store.exists(cid):
            self.slot.stop()
            return
        visible = cid == self.conversation_id
        if job.user_text is not None:
            first = not any(m.role == "user" for m in self.store.messages(cid))
            msg = self.store.add_message(cid, "user", job.user_text, clear_draft=True)
            if first:
                self.store.rename(cid, job.user_text[:60])
                self._retitle(cid)
            if visible:
                if self.input.toPlainText() == job.user_text:
                    self.input.blockSignals(True)
                    self.input.clear()
                    self.input.blockSignals(False)
                self.transcript.add("user", job.user_text, "", msg.id)
        if visible:
            for b in list(self.transcript.bubbles):
                if job.replaces is not None and b.message_id == job.replaces:
                    self.transcript.remove(b)
            job.bubble = self.transcript.add("assistant", "")
            self.transcript.mark_last_reply()
        if ev.left_out or ev.shortened:
            what = f"{ev.left_out} earlier message(s) left out" if ev.left_out else ""
            if ev.shortened:
                what = (what + " and " if what else "") + "the middle of your message left out"
            self.ctx.notifier.info(f"To fit the context window, {what} ({POLICIES[self.store.get(cid).context_policy]}).")
        self._show_status()

    def _on_reply_end(self, job: ReplyJob, outcome: Outcome) -> None:
        if self._job is job:
            self._job = None
        if job.stored or self.store.closed:
            return  # stored when the window closed
        job.stored = True
        bubble, job.bubble = job.bubble, None
        visible = job.conversation_id == self.conversation_id
        if job.accepted is None:  # refused before anything was stored: the draft is still there
            if visible:
                self.status.setText("Not sent.")
            self.reply_finished.emit(outcome)
            return
        stats = dict(job.stats or {})
        if outcome.stopped:
            stats.update(finish="stopped by you", generated_tokens=job.tokens)
        saved = self._store_reply(job, stats, outcome)
        if bubble is not None:
            if saved is not None:
                bubble.finish()
                bubble.set_footer(_footer(stats))
                bubble.set_stored(saved)
                bubble.set_versions(version_position(stats))
                self.transcript.mark_last_reply()
            else:
                self._render_transcript()  # an empty failed reply leaves no "…" behind
        if visible:
            self.status.setText(_footer(stats))
            self._recount()
        else:
            self._show_status()  # no longer "writing a reply in …"
        if stats.get("finish") == "context_full":
            self.ctx.notifier.warning(
                "The reply stopped because the conversation filled the model's context window. "
                "Delete earlier messages, choose a context policy that trims, or start a new chat."
            )
        self.reply_finished.emit(outcome)

    def _store_reply(self, job: ReplyJob, stats: dict, outcome: Outcome):
        if not self.store.exists(job.conversation_id):
            return None  # the chat was deleted while its reply was written
        if not job.text and (outcome.failed or job.replaces is not None):
            if job.message_id is not None:
                self.store.delete_message(job.message_id)  # an empty checkpoint
            return None  # nothing written: an old reply being regenerated stays
        if job.replaces is not None:
            self._keep_earlier_versions(job.conversation_id, job.replaces, job.text, stats)  # into ``stats``: the footer's too
        if job.message_id is not None:
            self.store.update_message(job.message_id, job.text, stats, replaces=job.replaces)
            saved = job.message_id
        else:
            saved = self.store.add_message(job.conversation_id, "assistant", job.text, stats, replaces=job.replaces).id
        engine = self.slot.engine
        save_chat_result(job.text, engine.pack if engine else None, self.panel.sampling(), stats.get("seed"))
        return saved

    def _on_busy(self, busy: bool) -> None:
        self.stop_button.setEnabled(busy)
        self.send_button.setEnabled(not busy)

    # -- the Studio protocol (desktop/ui/studio.py) ----------------------------------------------
    def primary_action(self) -> None:
        self.send()

    def stop(self) -> None:
        self.slot.stop()

    def shutdown(self) -> None:
        """Closing the window: keep the draft and the reply in flight, THEN close the history."""
        self._meter_timer.stop()
        # a model still loading must not send the waiting message while the window closes
        # (closing runs local event loops, in which that load can finish): it stays a draft
        self._pending = None
        if self.store.closed:
            return
        self._save_draft()
        job = self._job
        if job is not None and not job.stored:
            self.slot.stop()
            if job.accepted is not None:
                self._store_reply(job, dict(job.stats or {}, finish=CLOSED_NOTE, generated_tokens=job.tokens), STOPPED)
            job.stored = True
            wait_until_idle(self.slot, 3000)  # the engine is closed next: let the token in progress end
        reader = getattr(self, "_reader", None)
        if reader is not None:
            reader.shutdown()  # read aloud holds a voice engine of its own: it goes too
        self.slot.close()
        self.store.close()
