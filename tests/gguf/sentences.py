"""Varied text for tokenizer comparisons: prose, code, numbers, whitespace runs, accents,
CJK, emoji, special-token spellings. Deterministic, offline."""

from __future__ import annotations

import random

_BASE = [
    "What is the capital of France?",
    "The quick brown fox jumps over the lazy dog.",
    "  leading spaces and trailing   ",
    "tabs\tand\nnewlines\n\nand\r\nwindows line ends",
    "Numbers: 3.14159, 1,000,000 and 42nd, 2024-11-29T17:09:33Z",
    "Café déjà vu — naïve façade, Ångström, Straße, Ærø",
    "日本語のテキストと中文文本，还有한국어 텍스트.",
    "Emoji 😀🎉👍🏽 and symbols ©®™ ∑∫√ ≠ ≤ ≥",
    "def f(x):\n    return x ** 2  # square\n",
    "for (int i = 0; i < n; ++i) { sum += a[i]; }",
    "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|> in the middle <|endoftext|>",
    "URLs like https://example.com/path?q=1&r=two#frag",
    "e-mail: someone@example.org; phone +44 (0)20 7946 0958",
    "I'm sure you've heard they'll say we'd done it, isn't it?",
    "ALL CAPS SENTENCE WITH PUNCTUATION!!!???",
    "Mixed123Alpha456Numeric789",
    "      ",
    "a",
    "Supercalifragilisticexpialidocious antidisestablishmentarianism",
    "Привет, как дела? Γειά σου κόσμε. مرحبا بالعالم. שלום עולם.",
    "x = {'key': [1, 2, 3], \"other\": None}",
    "Price: $19.99 (€17,50) — 50% off!",
    "...ellipsis... and -- dashes --- and ___ underscores",
    "line one\n\n\n\nline five",
]
_WORDS = "model pack graph token weight block scale offset layer head attention rotary cache library import export chat voice image window thread kernel quantize float integer sample temperature".split()


def sentences(n: int = 240) -> list[str]:
    rng = random.Random(1234)
    out = list(_BASE)
    while len(out) < n:
        words = [rng.choice(_WORDS) for _ in range(rng.randint(1, 14))]
        if rng.random() < 0.3:
            words.insert(rng.randrange(len(words) + 1), str(rng.randint(0, 10**rng.randint(1, 7))))
        if rng.random() < 0.2:
            words.insert(rng.randrange(len(words) + 1), rng.choice(["é", "ß", "中文", "🙂", "'s", "n't", "\n", "  ", "\t", "<|im_end|>"]))
        sep = rng.choice([" ", " ", " ", "  ", "_", "-", ", "])
        text = sep.join(words)
        if rng.random() < 0.5:
            text = text.capitalize() + rng.choice([".", "?", "!", "", ":", " "])
        out.append(text)
    return out
