"""Text for speech: sentence spans and clean-up, before any phonemiser sees it.

Spans keep offsets into the text the person typed, so a progress bar can follow the
text and the UI can highlight what is being spoken. Clean-up is per sentence and says
what it dropped (emoji, symbols, scripts the voice cannot read) instead of guessing.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Callable

# Long sentences are cut at clauses so the first audio comes quickly and one model call
# never sees thousands of phonemes (VITS attention is quadratic in length).
MAX_SENTENCE_CHARS = 300
_END = re.compile(r"[.!?…。！？]+[\"'”’)\]]*(?=\s|$)")
_CLAUSE = re.compile(r"[,;:—–]+(?=\s)")
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof st sr jr vs etc e.g i.e fig no vol approx dept est inc ltd co mt ft jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
_TRANSLATE = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'", "‚": "'", "«": '"', "»": '"', "\u00a0": " ", "\t": " "})

# Script families a language's voice reads; letters of other scripts are skipped with a
# notice. Languages not listed read every script (the voice decides).
_SCRIPTS: dict[str, frozenset[str]] = {}
for _langs, _scripts in (
    ("en de fr es it pt nl sv da no nb nn fi pl cs sk hu ro tr ca cy is lv lt sl hr sw vi id ms eu gl lb et sq af", ("LATIN",)),
    ("ru uk bg kk mk be sr mn ky tt", ("CYRILLIC", "LATIN")),
    ("el", ("GREEK", "LATIN")),
    ("ar fa ur ps", ("ARABIC", "LATIN")),
    ("he yi", ("HEBREW", "LATIN")),
    ("ka", ("GEORGIAN", "LATIN")),
    ("hi ne mr", ("DEVANAGARI", "LATIN")),
    ("zh cmn yue", ("CJK", "LATIN")),
    ("ja", ("CJK", "HIRAGANA", "KATAKANA", "LATIN")),
    ("ko", ("HANGUL", "LATIN")),
    ("th", ("THAI", "LATIN")),
):
    for _lang in _langs.split():
        _SCRIPTS[_lang] = frozenset(_scripts)


@dataclass(frozen=True)
class Span:
    start: int
    end: int  # offset after the sentence in the original text
    text: str


def scripts_for(language: str) -> frozenset[str] | None:
    """Scripts a voice of ``language`` (en_US, en-us, ru...) reads, or None for any."""
    code = re.split(r"[-_]", (language or "").lower())[0]
    return _SCRIPTS.get(code)


def split_sentences(text: str, max_chars: int = MAX_SENTENCE_CHARS) -> list[Span]:
    """Sentences of ``text`` as spans with original offsets; blank ones are dropped."""
    spans: list[Span] = []
    for para in re.finditer(r"[^\n]+", text):
        start = para.start()
        body = para.group()
        cut = 0
        for m in _END.finditer(body):
            if m.group().startswith(".") and _is_abbreviation(body, m.start()):
                continue
            spans.extend(_bounded(text, start + cut, start + m.end(), max_chars))
            cut = m.end()
        spans.extend(_bounded(text, start + cut, start + len(body), max_chars))
    return [s for s in spans if s.text.strip()]


def _is_abbreviation(body: str, dot: int) -> bool:
    word = re.search(r"([A-Za-z.]+)$", body[:dot])
    if not word:
        return False
    w = word.group(1).lower().strip(".")
    following = body[dot + 1 :].lstrip()
    if w in _ABBREVIATIONS or (len(w) == 1 and body[dot - 1].isupper()):
        return True
    return bool(following) and following[0].islower()  # "e.g. the" - a sentence never starts lowercase


def _bounded(text: str, start: int, end: int, max_chars: int) -> list[Span]:
    """Cut [start, end) at clause punctuation, then at spaces, into pieces <= max_chars."""
    while start < end and text[start].isspace():
        start += 1
    if end - start <= max_chars:
        return [Span(start, end, text[start:end])] if end > start else []
    piece = text[start : start + max_chars]
    cuts = [m.end() for m in _CLAUSE.finditer(piece)] or [m.start() for m in re.finditer(r"\s", piece)]
    cut = start + (cuts[-1] if cuts and cuts[-1] > max_chars // 4 else max_chars)
    return [Span(start, cut, text[start:cut])] + _bounded(text, cut, end, max_chars)


def _skip_reason(ch: str, scripts: frozenset[str] | None, allowed: Callable[[str], bool] | None) -> str:
    cat = unicodedata.category(ch)
    if cat in ("So", "Sk", "Cs", "Co", "Cn") or (cat == "Cc" and not ch.isspace()) or cat == "Cf":
        return "emoji or symbol" if cat in ("So", "Sk") else "control or unassigned character"
    if allowed is not None:
        if ch.isspace() or allowed(ch):
            return ""
        # punctuation a character voice has no symbol for is dropped quietly, as its
        # tokenizer does; letters and digits it cannot say are reported
        return "punctuation" if cat[0] in "PZ" else "not in the voice's alphabet"
    if scripts is not None and cat[0] in "LM":
        name = unicodedata.name(ch, "")
        if name.split(" ")[0] not in scripts:
            word = name.split(" ")[0]
            return f"{word if word == 'CJK' else word.title() or 'Unknown'} script"
    return ""


QUIET_REASONS = frozenset({"punctuation"})


def clean(sentence: str, scripts: frozenset[str] | None = None, allowed: Callable[[str], bool] | None = None) -> tuple[str, Counter]:
    """Normalise one sentence for the phonemiser. Returns (text, Counter of skip reasons).

    ``scripts`` limits letters to those script families; ``allowed`` (for character
    voices) accepts a character the voice's alphabet has.
    """
    text = unicodedata.normalize("NFKC", sentence).translate(_TRANSLATE)
    skipped: Counter = Counter()
    kept = []
    for ch in text:
        reason = _skip_reason(ch, scripts, allowed)
        if reason:
            skipped[reason] += 1
            kept.append(" ")
        else:
            kept.append(ch)
    return re.sub(r"\s+", " ", "".join(kept)).strip(), skipped


def has_speakable(text: str) -> bool:
    return any(unicodedata.category(ch)[0] in "LN" for ch in text)
