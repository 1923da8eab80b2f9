"""Read aloud: what the Chat studio calls to speak a reply with the chosen voice.

API (kept stable for the chat): ``ReadAloud(ctx)``, ``speak(text)``, ``stop()``, and the
``busy_changed(bool)`` signal. The voice is the one picked in the Speech studio (stored in
settings), else the first voice in the library. Speaking again replaces what is playing.

What was read is saved as a clip (``clips/``, with its provenance, like the Speech studio's
clips), so "clips can still be saved as WAV" holds when this machine cannot play sound.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from desktop.engines.errors import RequestError
from desktop.engines.speech.engine import MAX_TEXT_CHARS, SpeechRequest
from desktop.outputs.clip_store import ClipStore
from desktop.outputs.folders import CLIPS, studio_folder
from desktop.outputs.saving import save_speech_result
from desktop.ui.finish_jobs import stop_and_collect
from desktop.ui.speech_runner import SpeechRunner


class ReadAloud(QObject):
    busy_changed = Signal(bool)
    clip_saved = Signal(object)  # the Clip

    def __init__(self, ctx, parent=None, clips: ClipStore | None = None):
        super().__init__(parent)
        self.ctx = ctx
        self.clips = clips
        self.runner = SpeechRunner(ctx, self)
        self.runner.busy_changed.connect(self.busy_changed)
        self.runner.finished.connect(self._save_clip)

    @property
    def busy(self) -> bool:
        return self.runner.busy

    def voice(self) -> str | None:
        chosen = self.ctx.settings.value("speech/voice")
        names = [e.name for e in self.ctx.library.entries() if e.manifest and e.manifest.get("modality") == "speech"]
        if chosen in names:
            return chosen
        return names[0] if names else None

    def speak(self, text: str) -> bool:
        voice = self.voice()
        if voice is None:
            self.ctx.notifier.error(RequestError("Read aloud needs a voice: import one in the Library (the set-up installs one)."))
            return False
        if len(text) > MAX_TEXT_CHARS:
            self.ctx.notifier.warning(f"Reading the first {MAX_TEXT_CHARS:,} characters of this reply.")
            text = text[:MAX_TEXT_CHARS]
        return self.runner.speak(SpeechRequest(text), voice=voice)

    def _save_clip(self, outcome, stats) -> None:
        audio, engine, req = self.runner.audio(), self.runner.engine, self.runner.request
        if audio.size == 0 or engine is None or req is None:
            return
        try:
            # the Speech studio's clips folder, as the settings name it now
            clips = self.clips or ClipStore(studio_folder(CLIPS, self.ctx.settings.load().output_dir))
            clip = save_speech_result(audio, engine.sample_rate, engine.pack, req, stats, engine.provider.used, stopped=not outcome.done, store=clips)
        except OSError as exc:
            self.ctx.notifier.error(f"Could not save the clip: {exc.strerror or exc}")
            return
        self.ctx.notifier.info(f"Read aloud saved as a clip: {clip.path.name} (Speech studio, clips)")
        self.clip_saved.emit(clip)

    def stop(self) -> None:
        self.runner.stop()

    def shutdown(self) -> None:
        """The window is closing: what was already spoken is kept as a (stopped) clip, as the
        Speech studio keeps it, before the voice engine is closed."""
        stop_and_collect(self.runner.slot)  # its end (and _save_clip) is delivered here
        self.runner.shutdown()
