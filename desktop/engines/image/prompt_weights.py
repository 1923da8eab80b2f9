"""Prompt weighting in the syntax A1111, ComfyUI and Fooocus users already type.

``(word)`` makes a part 1.1x stronger, ``[word]`` 1.1x weaker, ``(word:1.3)`` sets the factor;
brackets nest and multiply. ``\\(`` and ``\\)`` (and the square ones) are literal brackets. A bracket
left open runs to the end of the prompt, and a stray closing one is ignored, as in A1111, so no
prompt is ever refused for its punctuation. The weights scale the text encoder's output per token;
the prompt as written is what the image's metadata records.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

UP = 1.1
# A weight written after a colon just before a closing round bracket: "(word:1.3)".
_EXPLICIT = re.compile(r":\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*$")
MAX_WEIGHT = 10.0  # far beyond any useful value; keeps a typo like (x:1e9) from blanking the image


@dataclass(frozen=True)
class Chunk:
    text: str
    weight: float


def parse(prompt: str) -> list[Chunk]:
    """The prompt as runs of text with one weight each (adjacent equal weights merged)."""
    out: list[list] = []
    stack: list[tuple[str, int]] = []  # open bracket and the index of its first chunk
    text = []

    def flush():
        if text:
            out.append(["".join(text), 1.0])
            text.clear()

    i = 0
    while i < len(prompt):
        c = prompt[i]
        if c == "\\" and i + 1 < len(prompt):
            text.append(prompt[i + 1])
            i += 2
            continue
        if c in "([":
            flush()
            stack.append((c, len(out)))
        elif c == ")" and any(b == "(" for b, _ in stack):
            flush()
            while stack[-1][0] != "(":  # a "[" left open inside "( )" closes with it
                _scale(out, stack.pop()[1], 1 / UP)
            start = stack.pop()[1]
            _scale(out, start, _explicit_weight(out, start))
        elif c == "]" and any(b == "[" for b, _ in stack):
            flush()
            while stack[-1][0] != "[":
                _scale(out, stack.pop()[1], UP)
            _scale(out, stack.pop()[1], 1 / UP)
        elif c not in ")]":
            text.append(c)
        i += 1
    flush()
    for bracket, start in reversed(stack):  # unclosed brackets run to the end
        _scale(out, start, UP if bracket == "(" else 1 / UP)
    merged: list[Chunk] = []
    for t, w in out:
        w = float(min(max(w, -MAX_WEIGHT), MAX_WEIGHT))
        if merged and abs(merged[-1].weight - w) < 1e-9:
            merged[-1] = Chunk(merged[-1].text + t, w)
        elif t:
            merged.append(Chunk(t, w))
    return merged or [Chunk("", 1.0)]


def _explicit_weight(out: list[list], start: int) -> float:
    """The factor of a closed round bracket: its ":1.3" suffix (removed from the text) or 1.1."""
    if len(out) > start:
        m = _EXPLICIT.search(out[-1][0])
        if m:
            out[-1][0] = out[-1][0][: m.start()]
            return float(m.group(1))
    return UP


def _scale(out: list[list], start: int, factor: float) -> None:
    for chunk in out[start:]:
        chunk[1] *= factor


def plain_text(prompt: str) -> str:
    """What the model reads: the prompt without weighting syntax."""
    return "".join(c.text for c in parse(prompt))


def is_weighted(chunks: list[Chunk]) -> bool:
    return any(abs(c.weight - 1.0) > 1e-9 for c in chunks)


def apply(hidden: np.ndarray, token_weights: np.ndarray) -> np.ndarray:
    """Scale each token's embedding, then restore the prompt's mean as A1111 does, so emphasis
    changes the balance between words rather than the overall strength of the prompt."""
    before = hidden.mean(axis=(1, 2), keepdims=True)
    scaled = hidden * token_weights[:, :, None].astype(hidden.dtype)
    after = scaled.mean(axis=(1, 2), keepdims=True)
    safe = np.where(np.abs(after) > 1e-12, after, 1.0)
    return (scaled * np.where(np.abs(after) > 1e-12, before / safe, 1.0)).astype(hidden.dtype)
