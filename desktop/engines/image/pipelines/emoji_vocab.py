"""The word tokenizer of our emoji diffusion packs (``vocabulary.json`` in the pack).

Same rules as the recipe that trained it (training/emoji_captions.py): lowercase
alphanumeric words, stopwords dropped, a plural falls back to its singular, each word
once, ``<bos>`` first. Unknown words are returned so the user is told which were ignored.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from desktop.engines.errors import PackFormatError

_WORD = re.compile(r"[a-z0-9]+")


class EmojiVocabulary:
    def __init__(self, data: dict):
        try:
            self.tokens = [str(t) for t in data["tokens"]]
            self.stopwords = {str(w) for w in data.get("stopwords", [])}
            self.max_length = int(data["max_length"])
            self.pad_id, self.bos_id = int(data["pad_id"]), int(data["bos_id"])
        except (KeyError, TypeError, ValueError):
            raise PackFormatError("The emoji pack's vocabulary file is malformed.") from None
        self.ids = {w: i for i, w in enumerate(self.tokens)}

    @classmethod
    def load(cls, path: Path) -> "EmojiVocabulary":
        try:
            return cls(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            raise PackFormatError(f"Cannot read the emoji pack's vocabulary ({Path(path).name}).") from None

    def lookup(self, word: str) -> int | None:
        if word in self.ids:
            return self.ids[word]
        for suffix in ("es", "s"):
            if word.endswith(suffix) and word[: -len(suffix)] in self.ids:
                return self.ids[word[: -len(suffix)]]
        return None

    def encode(self, text: str) -> tuple[np.ndarray, list[str], list[str]]:
        """(ids [1, max_length] int64, unknown words, words beyond max_length)."""
        ids, unknown, dropped = [self.bos_id], [], []
        for word in _WORD.findall(text.lower()):
            if word in self.stopwords:
                continue
            i = self.lookup(word)
            if i is None:
                unknown.append(word)
            elif i in ids:
                continue
            elif len(ids) >= self.max_length:
                dropped.append(word)
            else:
                ids.append(i)
        row = np.full((1, self.max_length), self.pad_id, dtype=np.int64)
        row[0, : len(ids)] = ids
        return row, unknown, dropped
