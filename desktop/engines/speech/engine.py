"""Speech engine: text -> one AudioChunk per sentence, streamed, for any VITS voice pack.

The whole text is split and cleaned first (cheap), so bad input fails before any audio
and the caller hears about skipped characters once; then each sentence is phonemised and
synthesised on its own. Yielding per sentence gives streaming playback and a cancel point
within one sentence for free.
"""

from __future__ import annotations

import re
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from desktop.engines.base import register_engine
from desktop.engines.errors import PackFormatError, RequestError
from desktop.engines.events import AudioChunk, Done, Notice
from desktop.engines.packs.pack import Pack
from desktop.engines.providers import RuntimeSettings
from desktop.engines.validate_once import ValidatedOnce
from desktop.engines.speech.sentences import QUIET_REASONS, Span, clean, has_speakable, split_sentences
from desktop.engines.speech.synthesis import SynthesisSettings
from desktop.engines.speech.voices import Voice, voice_class

MAX_TEXT_CHARS = 20_000  # ~20 minutes of speech; longer texts are split by the caller
FIRST_CLAUSE_MIN_SENTENCE = 80  # characters; shorter first sentences are fast enough whole
FIRST_CLAUSE_MIN = 25
_CLAUSE_BREAK = re.compile(r"[,;:—–](?=\s)")


@dataclass
class SpeechRequest(ValidatedOnce):
    text: str
    synthesis: SynthesisSettings = field(default_factory=SynthesisSettings)  # speed, variation, speaker, seed...
    sentence_silence: float = 0.1  # seconds of quiet after each sentence but the last

    def check(self) -> None:
        if not isinstance(self.text, str) or not self.text.strip():
            raise RequestError("Nothing to say: the text is empty.")
        if len(self.text) > MAX_TEXT_CHARS:
            raise RequestError(
                f"The text is {len(self.text):,} characters; one clip takes at most {MAX_TEXT_CHARS:,} "
                "(about 20 minutes of speech). Split it into parts; your text was kept."
            )
        if not has_speakable(self.text):
            raise RequestError("Nothing to say: the text has no letters or digits (emoji and symbols are not spoken).")
        if not isinstance(self.synthesis, SynthesisSettings):
            raise RequestError("Speech settings are missing or malformed.")
        self.synthesis.validate()
        if not isinstance(self.sentence_silence, (int, float)) or not 0.0 <= self.sentence_silence <= 5.0:
            raise RequestError("Pause between sentences must be between 0 and 5 seconds.")


@dataclass(frozen=True)
class _Prepared:
    span: Span
    text: str


class SpeechEngine:
    def __init__(self, pack: Pack, settings: RuntimeSettings | None = None):
        if pack.modality != "speech":
            raise PackFormatError(f"'{pack.name}' is a {pack.modality} pack, not a voice.")
        self.pack = pack
        self.voice: Voice = voice_class(pack)(pack, settings or RuntimeSettings.from_env())
        self.provider = self.voice.provider
        self.sample_rate = self.voice.sample_rate
        self.load_seconds = self.voice.load_seconds

    @property
    def speakers(self) -> list[str]:
        return self.voice.speaker_names()

    def prepare(self, text: str) -> tuple[list[_Prepared], Counter]:
        """Sentences ready for the phonemiser, and what was skipped (reason -> count)."""
        skipped: Counter = Counter()
        out = []
        for span in _first_clause_apart(split_sentences(text)):
            cleaned, dropped = clean(span.text, self.voice.scripts, self.voice.alphabet)
            skipped.update({k: v for k, v in dropped.items() if k not in QUIET_REASONS})
            if has_speakable(cleaned):
                out.append(_Prepared(span, cleaned))
        return out, skipped

    def generate(self, request: SpeechRequest) -> Iterator[AudioChunk | Notice | Done]:
        t_start = time.perf_counter()
        request.validate()  # a no-op when the caller already checked this request
        settings = request.synthesis
        sid = self.voice.speaker_id(settings.speaker)
        scales = self.voice.scales(settings)
        sentences, skipped = self.prepare(request.text)
        if not sentences:
            what = ", ".join(skipped) or "nothing speakable"
            raise RequestError(f"Nothing this voice can say: the text holds only characters it cannot read ({what}).")
        if skipped:
            yield Notice("Skipped " + ", ".join(f"{n} character{'s' if n > 1 else ''} ({reason})" for reason, n in skipped.items()) + ".")
        seed = settings.seed if settings.seed is not None else secrets.randbelow(2**31)
        if settings.seed is not None and not self.voice.seedable:
            yield Notice("This voice draws its noise inside the model, so a fixed seed does not repeat its output exactly.")
        rng = np.random.default_rng(seed)
        gap = np.zeros(int(request.sentence_silence * self.sample_rate), dtype=np.float32)
        missing: Counter = Counter()
        busy = 0.0  # time spent working, excluding time the consumer holds us at a yield
        samples = 0
        first_chunk = None
        t_work = t_start
        for i, sent in enumerate(sentences):
            ids = self.voice.phoneme_ids(sent.text, missing)
            if self.voice.speakable(ids) == 0:
                continue
            audio = self.voice.synthesize_ids(ids, scales, sid, rng)
            if i < len(sentences) - 1 and gap.size:
                audio = np.concatenate([audio, gap])
            samples += audio.size
            now = time.perf_counter()
            busy += now - t_work
            if first_chunk is None:
                first_chunk = now - t_start
            yield AudioChunk(audio, self.sample_rate, text=sent.span.text, char_end=sent.span.end)
            t_work = time.perf_counter()
        if missing:
            yield Notice("The voice has no sound for " + ", ".join(repr(p) for p in list(missing)[:8]) + "; skipped.")
        audio_s = samples / self.sample_rate
        yield Done(
            stats={
                "audio_s": round(audio_s, 3),
                "synthesis_s": round(busy, 4),
                "rtf": round(busy / audio_s, 4) if audio_s else 0.0,
                "first_chunk_s": round(first_chunk or 0.0, 4),
                "sentences": len(sentences),
                "sample_rate": self.sample_rate,
                "seed": seed,
                "seeded": self.voice.seedable,
                "speaker": sid,
                "scales": [round(float(x), 4) for x in scales],
                "provider": self.provider.used,
                "skipped_symbols": dict(missing),
            }
        )

    def close(self) -> None:
        self.voice.close()


def _first_clause_apart(spans: list[Span]) -> list[Span]:
    """Speak a long first sentence's opening clause on its own: the first audio is then
    ready in about a third of the time, and a comma is a pause in speech anyway."""
    if not spans or len(spans[0].text) < FIRST_CLAUSE_MIN_SENTENCE:
        return spans
    first = spans[0]
    for m in _CLAUSE_BREAK.finditer(first.text):
        if FIRST_CLAUSE_MIN <= m.end() <= len(first.text) - FIRST_CLAUSE_MIN:
            cut = first.start + m.end()
            head = Span(first.start, cut, first.text[: m.end()])
            tail_text = first.text[m.end() :].lstrip()
            return [head, Span(first.end - len(tail_text), first.end, tail_text), *spans[1:]]
    return spans


@register_engine("speech")
def _open(pack: Pack, settings: RuntimeSettings) -> SpeechEngine:
    return SpeechEngine(pack, settings)
