"""Speak a request: the voice engine in the background, chunks played as they arrive.

Shared by the Speech studio and Read aloud. Synthesis runs through EngineSlot's worker;
each AudioChunk is collected and, when audio can play here, handed to a StreamPlayer
(PortAudio's own thread). ``stop()`` aborts the worker before its next sentence and
silences playback at once. ``busy`` stays true until synthesis ended *and* the queued
audio finished playing; a coarse timer watches the player (no event-loop spinning).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from desktop.audio import PlaybackUnavailable, StreamPlayer
from desktop.engines.events import AudioChunk, Done, Notice
from desktop.ui.engine_slot import EngineSlot
from desktop.workers import Outcome


class SpeechRunner(QObject):
    chunk = Signal(object)  # AudioChunk
    progress = Signal(int, int)  # characters spoken so far, total
    finished = Signal(object, object)  # the synthesis's Outcome, Done stats or None
    busy_changed = Signal(bool)
    play_problem_changed = Signal(str)
    engine_ready = Signal(object)

    def __init__(self, ctx, parent=None, play: bool = True):
        super().__init__(parent)
        self.ctx = ctx
        self.slot = EngineSlot("speech", ctx.settings.runtime, ctx.notifier, self, library=ctx.library)
        self.slot.loaded.connect(self._on_loaded)
        self.slot.load_failed.connect(self._on_load_failed)
        self.play_enabled = play
        self.play_problem = ""
        self.player: StreamPlayer | None = None
        self.samples: list[np.ndarray] = []
        self.request = None
        self.stats: dict | None = None
        self._pending = None
        self._generating = False
        self._busy = False
        self._watch = QTimer(self, interval=100, timeout=self._check_drained)

    # -- engine --------------------------------------------------------------------------
    @property
    def engine(self):
        return self.slot.engine

    def load(self, name: str) -> None:
        self.slot.load(name)  # a no-op when already loaded or on its way

    def _on_load_failed(self, _exc) -> None:
        self._pending = None
        self._set_busy(False)

    def _on_loaded(self, engine) -> None:
        self.engine_ready.emit(engine)
        if self._pending is not None:
            request, self._pending = self._pending, None
            self._start(request)

    # -- speaking ------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self._busy

    def speak(self, request, voice: str | None = None) -> bool:
        """Start speaking; with ``voice`` the pack is loaded first if needed."""
        if self._busy:
            self.stop()
        try:
            request.validate()
        except Exception as exc:  # noqa: BLE001 - RequestError; the notifier shows it
            self.ctx.notifier.error(exc)
            return False
        self._set_busy(True)
        # A load of this very voice can still be "in flight" after its engine arrived (its
        # finished signal comes after the engine): that voice is ready, so it is not waited
        # for - nothing would start the request later and Speak would hang.
        if voice and (self.slot.name != voice or self.slot.engine is None or self.slot.loading_name not in (None, voice)):
            self._pending = request
            self.load(voice)
            if self.slot.loading_name is None and self.slot.engine is not None and self.slot.name == voice:
                # choosing the loaded voice again cancelled another voice's load: speak now
                request, self._pending = self._pending, None
                return self._start(request)
            return True
        return self._start(request)

    def _start(self, request) -> bool:
        if self.slot.busy:  # the stopped job has not reached its next yield yet
            self._pending = request
            return True
        self.request, self.samples, self.stats = request, [], None
        self._generating = True
        worker = self.slot.run(request, self._on_event, self._on_end)
        if worker is None:
            self._generating = False
            self._set_busy(False)
            return False
        return True

    def _on_event(self, ev) -> None:
        if isinstance(ev, AudioChunk):
            self.samples.append(ev.samples)
            self._play(ev)
            self.chunk.emit(ev)
            self.progress.emit(ev.char_end, len(self.request.text))
        elif isinstance(ev, Notice):
            self.ctx.notifier.info(ev.message)
        elif isinstance(ev, Done):
            self.stats = ev.stats

    def _play(self, ev: AudioChunk) -> None:
        if not self.play_enabled or self.play_problem:
            return
        if self.player is None or self.player.sample_rate != ev.sample_rate:
            self._close_player()
            try:
                self.player = StreamPlayer(ev.sample_rate)
            except PlaybackUnavailable as exc:
                self.play_problem = str(exc)
                self.play_problem_changed.emit(self.play_problem)
                self.ctx.notifier.warning(self.play_problem)
                return
        self.player.feed(ev.samples)

    def play(self, samples: np.ndarray, sample_rate: int) -> bool:
        """Replay a finished clip. Returns False (and says why once) if audio cannot play."""
        self.stop()
        self._play(AudioChunk(np.asarray(samples, dtype=np.float32), sample_rate))
        if self.player is None or self.play_problem:
            if self.play_problem:
                self.ctx.notifier.warning(self.play_problem)
            return False
        self._set_busy(True)
        self._watch.start()
        return True

    def _on_end(self, outcome: Outcome) -> None:
        self._generating = False
        self.finished.emit(outcome, self.stats)
        if self._pending is not None:
            request, self._pending = self._pending, None
            self._start(request)
            return
        if outcome.done and self.player is not None:
            self._watch.start()  # stay busy until the queued audio has played
        else:
            if not outcome.done:
                self._silence()
            self._set_busy(False)

    def _check_drained(self) -> None:
        if self.player is None or self.player.drained.is_set():
            self._watch.stop()
            if not self._generating:
                self._set_busy(False)

    def stop(self) -> None:
        self._pending = None
        self.slot.stop()
        self._silence()
        self._watch.stop()
        if not self._generating:
            self._set_busy(False)

    def _silence(self) -> None:
        if self.player is not None:
            self.player.stop()
            self.player = None

    def _close_player(self) -> None:
        if self.player is not None:
            self.player.close()
            self.player = None

    def audio(self) -> np.ndarray:
        return np.concatenate(self.samples) if self.samples else np.zeros(0, dtype=np.float32)

    def _set_busy(self, busy: bool) -> None:
        if busy != self._busy:
            self._busy = busy
            self.busy_changed.emit(busy)

    def shutdown(self) -> None:
        self.stop()
        self.slot.close()
