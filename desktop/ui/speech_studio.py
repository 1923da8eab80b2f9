"""The Speech studio: type text, pick a voice, Speak (streamed), Stop, Save; a clip list.

Speaking goes through SpeechRunner (engine worker + streaming playback). Each finished or
stopped clip is written at once to the clips folder with its provenance, so nothing is
lost; "Save as WAV…" copies the selected clip where the person wants it.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSlider,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from desktop.defaults import default_model
from desktop.engines.atomic_write import write_atomic
from desktop.engines.errors import RequestError
from desktop.engines.speech.engine import SpeechRequest
from desktop.outputs.clip_store import Clip, ClipStore
from desktop.outputs.folders import CLIPS, studio_folder
from desktop.outputs.saving import save_speech_result
from desktop.engines.speech.synthesis import SynthesisSettings
from desktop.ui.finish_jobs import stop_and_collect
from desktop.ui.open_folder import open_folder
from desktop.ui.speech_runner import SpeechRunner
from desktop.ui.waveform import waveform_pixmap
from desktop.workers import STOPPED, Outcome


def _slider(lo: int, hi: int, value: int) -> QSlider:
    s = QSlider(Qt.Orientation.Horizontal)
    s.setRange(lo, hi)
    s.setValue(value)
    return s


class SpeechStudio(QWidget):
    clip_added = Signal(object)  # Clip (tests and the status bar listen)

    def __init__(self, ctx, store: ClipStore | None = None, play: bool = True):
        super().__init__()
        self.ctx = ctx
        self._follows_settings = store is None  # a store handed in (tests) stays put
        self.store = store or ClipStore(studio_folder(CLIPS, ctx.settings.load().output_dir))
        self.runner = SpeechRunner(ctx, self, play=play)
        self.runner.chunk.connect(self._on_chunk)
        self.runner.progress.connect(self._on_progress)
        self.runner.finished.connect(self._on_finished)
        self.runner.busy_changed.connect(self._on_busy)
        self.runner.engine_ready.connect(self._on_engine)
        self.runner.play_problem_changed.connect(self._show_play_problem)
        self._build()
        events = getattr(ctx, "events", None)
        if events is not None:
            events.library_changed.connect(self.refresh_voices)
            events.settings_changed.connect(self.follow_output_folder)
        self.refresh_voices()
        self._load_clips()

    # -- layout ------------------------------------------------------------------------
    def _build(self) -> None:
        left = QWidget()
        ll = QVBoxLayout(left)
        self.text = QPlainTextEdit()
        self.text.setPlaceholderText("Type or paste what to say…")
        ll.addWidget(self.text, 1)
        form = QFormLayout()
        self.voice = QComboBox()
        self.voice.currentTextChanged.connect(self._choose_voice)
        self.speaker = QComboBox()
        self.speed = _slider(50, 200, 100)  # percent of the voice's pace
        self.variation = _slider(0, 200, 100)  # percent of the voice's noise scales
        self.speed_label, self.variation_label = QLabel("1.00×"), QLabel("100%")
        self.speed.valueChanged.connect(lambda v: self.speed_label.setText(f"{v / 100:.2f}×"))
        self.variation.valueChanged.connect(lambda v: self.variation_label.setText(f"{v}%"))
        form.addRow("Voice", self.voice)
        form.addRow("Speaker", self.speaker)
        form.addRow("Speed", self._with_label(self.speed, self.speed_label))
        form.addRow("Variation", self._with_label(self.variation, self.variation_label))
        ll.addLayout(form)
        row = QHBoxLayout()
        self.speak_button = QPushButton("Speak")
        self.speak_button.clicked.connect(self.speak)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        row.addWidget(self.speak_button)
        row.addWidget(self.stop_button)
        ll.addLayout(row)
        self.progress = QProgressBar()
        self.progress.setFormat("%p% of the text")
        ll.addWidget(self.progress)
        self.play_note = QLabel()
        self.play_note.setWordWrap(True)
        self.play_note.hide()
        ll.addWidget(self.play_note)

        right = QWidget()
        rl = QVBoxLayout(right)
        rl.addWidget(QLabel("Clips"))
        self.clip_list = QListWidget()
        self.clip_list.setIconSize(QSize(160, 36))
        self.clip_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # elide long titles
        self.clip_list.itemDoubleClicked.connect(lambda _i: self.replay())
        rl.addWidget(self.clip_list, 1)
        buttons = QHBoxLayout()
        self.clip_buttons: list[QPushButton] = []
        for text, slot in (("Replay", self.replay), ("Save as WAV…", lambda: self.save_as()), ("Delete", self.delete_clip)):
            b = QPushButton(text)
            b.clicked.connect(slot)
            b.setEnabled(False)  # they act on the selected clip: only live while there is one
            buttons.addWidget(b)
            self.clip_buttons.append(b)
        open_button = QPushButton("Open folder")
        open_button.setToolTip("Where the clips' WAV files are kept")
        open_button.clicked.connect(lambda: open_folder(self.store.root, self))
        buttons.addWidget(open_button)
        self.clip_list.currentItemChanged.connect(lambda item, _previous: [b.setEnabled(item is not None) for b in self.clip_buttons])
        rl.addLayout(buttons)

        split = QSplitter()
        split.addWidget(left)
        split.addWidget(right)
        split.setSizes([620, 380])
        lay = QVBoxLayout(self)
        lay.addWidget(split)

    @staticmethod
    def _with_label(slider: QSlider, label: QLabel) -> QWidget:
        w = QWidget()
        h = QHBoxLayout(w)
        h.setContentsMargins(0, 0, 0, 0)
        h.addWidget(slider, 1)
        h.addWidget(label)
        return w

    # -- voices ------------------------------------------------------------------------
    def refresh_voices(self) -> None:
        current = self.voice.currentText() or str(self.ctx.settings.value("speech/voice") or "")
        names = [e.name for e in self.ctx.library.entries() if e.manifest and e.manifest.get("modality") == "speech"]
        self.voice.blockSignals(True)
        self.voice.clear()
        self.voice.addItems(names)
        self.voice.blockSignals(False)
        if not names:
            self.voice.setPlaceholderText("No voice installed")
            return
        self.voice.setCurrentText(current if current in names else default_model(self.ctx.library, "speech"))
        self._choose_voice(self.voice.currentText())

    def _choose_voice(self, name: str) -> None:
        if name:
            self.ctx.settings.set_value("speech/voice", name)
            self.runner.load(name)

    def _on_engine(self, engine) -> None:
        self.speaker.clear()
        names = engine.speakers
        self.speaker.addItems(names)
        self.speaker.setEnabled(len(names) > 1)

    # -- speaking ----------------------------------------------------------------------
    def request(self) -> SpeechRequest:
        synthesis = SynthesisSettings(speed=self.speed.value() / 100, variation=self.variation.value() / 100, speaker=max(self.speaker.currentIndex(), 0))
        return SpeechRequest(self.text.toPlainText(), synthesis)

    def speak(self) -> None:
        name = self.voice.currentText()
        if not name:
            self.ctx.notifier.error(RequestError("No voice is installed. Import a Piper voice in the Library first."))
            return
        self.progress.setValue(0)
        self.progress.setMaximum(max(len(self.text.toPlainText()), 1))
        self.runner.speak(self.request(), voice=name)

    # -- the Studio protocol (desktop/ui/studio.py): primary_action, stop, shutdown -------------
    def primary_action(self) -> None:
        self.speak()

    def stop(self) -> None:
        self.runner.stop()

    def _on_chunk(self, chunk) -> None:
        self.stop_button.setEnabled(True)

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(done)

    def _on_busy(self, busy: bool) -> None:
        self.speak_button.setEnabled(not busy)
        self.stop_button.setEnabled(busy)

    def _on_finished(self, outcome: Outcome, stats) -> None:
        audio = self.runner.audio()
        if audio.size == 0 or self.runner.engine is None:
            return
        engine = self.runner.engine
        req = self.runner.request
        clip = save_speech_result(audio, engine.sample_rate, engine.pack, req, stats, engine.provider.used, stopped=not outcome.done, store=self.store)
        self._add_item(clip, top=True)
        self.clip_added.emit(clip)

    def _show_play_problem(self, text: str) -> None:
        self.play_note.setText(f"Playback is off: {text}")
        self.play_note.show()

    # -- clips ---------------------------------------------------------------------------
    def follow_output_folder(self) -> None:
        """Settings saved: the next clip goes to the (maybe changed) default output
        folder, and the list shows that folder's clips."""
        folder = studio_folder(CLIPS, self.ctx.settings.load().output_dir)
        if self._follows_settings and folder != self.store.root:
            self.store = ClipStore(folder)
            self.clip_list.clear()
            self._load_clips()

    def _load_clips(self) -> None:
        for clip in self.store.clips():
            self._add_item(clip)

    def add_clip(self, clip: Clip) -> None:
        """A clip saved elsewhere (Chat's Read aloud): at the top of the list at once."""
        self._add_item(clip, top=True)

    def _add_item(self, clip: Clip, top: bool = False) -> None:
        stopped = " · stopped early" if (clip.record.get("settings") or {}).get("stopped") else ""
        item = QListWidgetItem(QIcon(waveform_pixmap(clip.samples)), f"{clip.title}\n{clip.seconds:.1f} s · {clip.record.get('pack', '')}{stopped}")
        item.setData(Qt.ItemDataRole.UserRole, clip)
        if top:
            self.clip_list.insertItem(0, item)
            self.clip_list.setCurrentRow(0)
        else:
            self.clip_list.addItem(item)

    def selected_clip(self) -> Clip | None:
        item = self.clip_list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item else None

    def replay(self) -> None:
        clip = self.selected_clip()
        if clip is not None:
            self.runner.play(clip.samples, clip.sample_rate)

    def save_as(self, path: str | Path | None = None) -> Path | None:
        clip = self.selected_clip()
        if clip is None:
            self.ctx.notifier.error(RequestError("Select a clip to save."))
            return None
        if not path:
            start_at = str(Path(self.ctx.settings.save_folder()) / clip.path.name)
            path, _ = QFileDialog.getSaveFileName(self, "Save clip as WAV", start_at, "WAV audio (*.wav)")
            if not path:
                return None
        path = Path(path)
        if path.suffix.lower() != ".wav":
            path = path.with_suffix(".wav")
        try:
            write_atomic(path, clip.path.read_bytes(), overwrite=True)  # the save dialog asked
        except OSError as exc:
            self.ctx.notifier.error(RequestError(f"Could not save to '{path}': {exc.strerror or exc}."))
            return None
        self.ctx.settings.remember_save(path)
        self.ctx.notifier.info(f"Saved {path.name}")
        return path

    def delete_clip(self) -> None:
        """Move the clip to the trash, with Undo; nothing is left selected, so a second
        press cannot silently delete the next clip."""
        row = self.clip_list.currentRow()
        clip = self.selected_clip()
        if clip is None:
            return
        try:
            trashed = self.store.delete(clip)
        except OSError as exc:
            self.ctx.notifier.error(RequestError(f"Could not delete the clip: {exc.strerror or exc}."))
            return
        self.clip_list.takeItem(row)
        self.clip_list.setCurrentRow(-1)
        self.clip_list.clearSelection()
        if trashed is not None:
            self.ctx.notifier.undoable(f"Moved “{clip.title}” to the trash.", lambda: self._undo_delete(trashed))

    def _undo_delete(self, trashed) -> None:
        try:
            self.store.restore(trashed)
        except OSError as exc:
            self.ctx.notifier.error(RequestError(f"Could not bring the clip back: {exc.strerror or exc}."))
            return
        self.clip_list.clear()
        self._load_clips()
        self.ctx.notifier.info(f"Restored {trashed.original.name}.")

    def shutdown(self) -> None:
        """Closing mid-sentence keeps what was spoken: the job is stopped, its queued
        audio delivered, and the clip stored (marked stopped) before the voice goes."""
        ended = stop_and_collect(self.runner.slot)
        if not ended and self.runner.request is not None and self.runner.samples:
            self._on_finished(STOPPED, None)  # store what arrived; the rest never will
            self.runner.samples = []
        self.runner.shutdown()
