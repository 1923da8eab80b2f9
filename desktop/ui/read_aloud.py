"""Read aloud: what the Chat studio calls to speak a reply with the chosen voice.

API (kept stable for the chat): ``ReadAloud(ctx)``, ``speak(text)``, ``stop()``, and the
``busy_changed(bool)`` signal. The voice is the one picked in the Speech studio (stored in
settings), else the first voice in the library. Speaking again replaces what is playing.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from desktop.engines.errors import RequestError
from desktop.engines.speech import MAX_TEXT_CHARS, SpeechRequest
from desktop.ui.speech_runner import SpeechRunner


class ReadAloud(QObject):
    busy_changed = Signal(bool)

    def __init__(self, ctx, parent=None):
        super().__init__(parent)
        self.ctx = ctx
        self.runner = SpeechRunner(ctx, self)
        self.runner.busy_changed.connect(self.busy_changed)

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

    def stop(self) -> None:
        self.runner.stop()

    def shutdown(self) -> None:
        self.runner.shutdown()
