"""Captions and the word vocabulary of the emoji diffusion model.

The vocabulary is a JSON file in the pack; the engine's tokenizer
(``desktop/engines/image/pipelines/emoji_vocab.py``) reads the same rules: lowercase
alphanumeric words, stopwords dropped, a plural falls back to its singular, unknown words
are skipped (and reported to the user), <bos> first, at most ``max_length`` ids.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from desktop.engines.image.pipelines.emoji_vocab import EmojiVocabulary

from .emoji_data import STOPWORDS, Emoji, words

PAD, BOS = 0, 1
MAX_LENGTH = 16


class Vocabulary(EmojiVocabulary):
    """The engine's tokenizer built from the catalogue: training and the app encode a
    caption with the very same code, so they cannot drift apart."""

    def __init__(self, tokens: list[str]):
        super().__init__({"tokens": tokens, "stopwords": sorted(STOPWORDS), "max_length": MAX_LENGTH, "pad_id": PAD, "bos_id": BOS})

    @classmethod
    def build(cls, catalogue: list[Emoji]) -> "Vocabulary":
        counts: Counter[str] = Counter()
        for e in catalogue:
            for text in [*e.captions, *e.keywords]:
                counts.update(w for w in words(text) if w not in STOPWORDS)
        return cls(["<pad>", "<bos>", *sorted(counts)])

    def to_json(self) -> dict:
        return {"tokens": self.tokens, "stopwords": sorted(self.stopwords), "max_length": self.max_length, "pad_id": self.pad_id, "bos_id": self.bos_id}

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), ensure_ascii=False), encoding="utf-8")


def sample_caption(e: Emoji, rng: np.random.Generator, empty_rate: float = 0.1) -> str:
    """One training caption. Mixing name, aliases and keyword subsets teaches single words
    ("cat", "red") as well as full names; an empty caption trains the unconditional
    branch used by classifier-free guidance."""
    r = rng.random()
    if r < empty_rate:
        return ""
    r = rng.random()
    kws = e.keywords
    if r < 0.4 or (not kws and len(e.captions) == 1):
        return e.name
    if r < 0.6 and len(e.captions) > 1:
        return e.captions[rng.integers(1, len(e.captions))]
    if kws:
        k = int(rng.integers(1, min(3, len(kws)) + 1))
        picked = [kws[i] for i in rng.choice(len(kws), k, replace=False)]
        if r < 0.85:
            return " ".join(picked)
        return e.name + " " + " ".join(picked[:1])
    return e.name


def batch_ids(texts: list[str], vocab: Vocabulary) -> np.ndarray:
    return np.concatenate([vocab.encode(text)[0] for text in texts], 0)
