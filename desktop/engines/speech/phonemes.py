"""Phonemisers and phoneme -> id mapping, chosen by the voice config's ``phonemizer.kind``.

* ``espeak``: IPA from espeak-ng, exactly as Piper does it (Piper's own ``espeakbridge``
  with its bundled espeak-ng data, from the GPL-3.0 ``piper-tts`` package installed by the
  optional ``speech`` extra). Punctuation is kept as Piper's voices were trained with it.
* ``text``: Unicode code points after NFD (Piper voices trained on raw text).
* ``chars``: characters of a tokenizer vocabulary (MMS-TTS / Hugging Face VitsTokenizer),
  lower-cased when the vocabulary is.

Ids follow the voice's ``id_style``: ``piper`` (BOS, a pad after every phoneme, EOS) or
``interspersed`` (a blank id between characters, as VitsTokenizer's add_blank) or
``plain`` (just the ids). A symbol
missing from the map is skipped and logged, never an exception: one odd character must not
silence a whole paragraph.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from collections import Counter
from typing import Callable, Mapping, Protocol, Sequence

from desktop.engines.errors import EngineError, PackFormatError

log = logging.getLogger(__name__)

PAD, BOS, EOS = "_", "^", "$"
KINDS = ("espeak", "text", "chars")


class Phonemizer(Protocol):
    def phonemize(self, sentence: str) -> list[str]: ...

    # A character voice's alphabet (does it have a sound for this character?); None when
    # the phonemizer reads any letter of the voice's scripts.
    alphabet: Callable[[str], bool] | None


class EspeakPhonemizer:
    """espeak-ng through Piper's bridge. espeak-ng keeps one global voice, so calls are
    serialised with a process-wide lock (two studios may speak at once)."""

    _lock = threading.Lock()
    _initialised = False

    def __init__(self, voice: str):
        try:
            from piper import espeakbridge
            from piper.phonemize_espeak import ESPEAK_DATA_DIR
        except ImportError:
            raise EngineError(
                "This voice needs espeak-ng, which comes with the optional speech extra "
                "(GPL-3.0): pip install -e '.[speech]' (scripts/setup installs it)."
            ) from None
        self._bridge = espeakbridge
        self.voice = voice
        with self._lock:
            if not EspeakPhonemizer._initialised:
                espeakbridge.initialize(str(ESPEAK_DATA_DIR))
                EspeakPhonemizer._initialised = True
            try:
                espeakbridge.set_voice(voice)
            except Exception as exc:  # noqa: BLE001 - the bridge raises plain RuntimeError
                raise PackFormatError(f"espeak-ng has no voice '{voice}' ({exc}); the voice config names an unknown language.") from None

    def phonemize(self, sentence: str) -> list[str]:
        with self._lock:
            self._bridge.set_voice(self.voice)
            clauses = self._bridge.get_phonemes(sentence)
        out: list[str] = []
        for phonemes, terminator, _end in clauses:
            # espeak marks words read in another language as (en) ... (fr): drop the flags
            phonemes = re.sub(r"\([^)]+\)", "", phonemes) + terminator
            if terminator in (",", ":", ";") or (out and terminator in (".", "!", "?")):
                phonemes += " "
            out.extend(unicodedata.normalize("NFD", phonemes))
        while out and out[-1] == " ":
            out.pop()
        return out

    alphabet = None


class TextPhonemizer:
    def phonemize(self, sentence: str) -> list[str]:
        return list(unicodedata.normalize("NFD", sentence))

    alphabet = None


class CharPhonemizer:
    """Characters of a VitsTokenizer vocabulary."""

    def __init__(self, vocab: Mapping[str, Sequence[int]], lowercase: bool = True):
        self.vocab = vocab
        self.lowercase = lowercase

    def _char(self, ch: str) -> str:
        ch = ch.lower() if self.lowercase else ch
        if ch not in self.vocab:
            base = unicodedata.normalize("NFD", ch)[:1]  # "ü" -> "u" when only the base letter exists
            if base in self.vocab:
                return base
        return ch

    def phonemize(self, sentence: str) -> list[str]:
        return [self._char(ch) for ch in sentence]

    def alphabet(self, ch: str) -> bool:
        return self._char(ch) in self.vocab


def make_phonemizer(spec: Mapping, id_map: Mapping[str, Sequence[int]]) -> Phonemizer:
    kind = spec.get("kind")
    if kind == "espeak":
        return EspeakPhonemizer(str(spec.get("voice") or "en-us"))
    if kind == "text":
        return TextPhonemizer()
    if kind == "chars":
        return CharPhonemizer(id_map, bool(spec.get("lowercase", True)))
    raise PackFormatError(f"Unknown phonemizer kind '{kind}' in the voice config (known: {', '.join(KINDS)}).")


class PhonemeIds:
    """phonemes -> model input ids; counts what it had to skip."""

    def __init__(self, id_map: Mapping[str, Sequence[int]], style: str = "piper", blank_id: int = 0):
        if not id_map:
            raise PackFormatError("The voice config has an empty phoneme id map.")
        if style not in ("piper", "interspersed", "plain"):
            raise PackFormatError(f"Unknown id style '{style}' in the voice config.")
        if style == "piper" and not all(k in id_map for k in (PAD, BOS, EOS)):
            raise PackFormatError("The voice's phoneme id map lacks the pad/begin/end symbols ('_', '^', '$').")
        self.map = {k: list(v) if isinstance(v, (list, tuple)) else [int(v)] for k, v in id_map.items()}
        self.style = style
        self.blank_id = blank_id
        self._warned: set[str] = set()

    def __call__(self, phonemes: Sequence[str], missing: Counter | None = None) -> list[int]:
        known: list[list[int]] = []
        for p in phonemes:
            ids = self.map.get(p)
            if ids is None:
                if missing is not None:
                    missing[p] += 1
                if p not in self._warned:  # once per symbol, not once per occurrence
                    self._warned.add(p)
                    log.warning("phoneme %r is not in the voice's id map; skipped", p)
                continue
            known.append(ids)
        if self.style == "plain":
            return [i for ids in known for i in ids]
        if self.style == "interspersed":
            out = [self.blank_id]
            for ids in known:
                out.extend(ids)
                out.append(self.blank_id)
            return out
        pad = self.map[PAD]
        out = list(self.map[BOS]) + pad
        for ids in known:
            out.extend(ids)
            out.extend(pad)
        out.extend(self.map[EOS])
        return out

    def speakable(self, ids: Sequence[int]) -> int:
        """How many ids carry content (not framing or blanks)."""
        if self.style == "plain":
            return len(ids)
        framing = {self.blank_id} if self.style == "interspersed" else {*self.map[PAD], *self.map[BOS], *self.map[EOS]}
        return sum(1 for i in ids if i not in framing)
