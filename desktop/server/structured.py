"""JSON output enforced while decoding, with llguidance.

``response_format`` becomes a grammar; before every sampling step the grammar's token
mask sets every token that could not continue valid JSON to -inf, so even a random model
can only write text that parses and matches the schema. This plugs into the text engine
through ``ChatRequest.logits_hook``; the engine knows nothing about grammars.

A schema does not bound how long a string, number or array may grow, and a token budget
does. So when the budget is nearly spent the constraint narrows the grammar's own allowed
set further to tokens that close what is open (quote, bracket, brace, then a separator),
so the reply still ends as complete JSON instead of being cut mid-value. That closing
path is deterministic, so its length is measured before it starts.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from desktop.engines.errors import RequestError

# Compact JSON: unbounded whitespace is the one thing a weak model can repeat forever.
_COMPILE_OPTIONS = {"whitespace_flexible": False}
_CLOSERS = set('"]}')
_SEPARATORS = set(",:")
LOOKAHEAD = 8  # candidates checked per token near the end of the budget
CHECK_EVERY = 8  # tokens between re-measuring the way out, far from the end
MAX_CLOSING_STEPS = 512  # planning stops here; a schema needing more is refused


def grammar_for(response_format: dict[str, Any] | None) -> str | None:
    """The llguidance grammar for an OpenAI ``response_format``; None for plain text."""
    from llguidance import LLMatcher

    if not response_format:
        return None
    kind = response_format.get("type")
    if kind in (None, "text"):
        return None
    if kind == "json_object":
        schema: Any = {"type": "object"}
    elif kind == "json_schema":
        spec = response_format.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("schema", {}), dict):
            raise RequestError("response_format.json_schema must be an object with a 'schema' object.")
        schema = spec.get("schema") or {"type": "object"}
    else:
        raise RequestError(f"response_format type '{kind}' is not supported (use text, json_object or json_schema).")
    try:
        grammar = LLMatcher.grammar_from_json_schema(json.dumps(schema), overrides=_COMPILE_OPTIONS)
    except (ValueError, TypeError) as exc:
        raise RequestError(f"The JSON schema could not be used: {exc}") from None
    bad, messages = LLMatcher.validate_grammar_with_warnings(grammar)
    if bad:
        raise RequestError(f"The JSON schema could not be used: {messages[0] if messages else 'invalid'}")
    return grammar


class GrammarTokenizer:
    """llguidance's view of a text pack's tokenizer, built once per loaded pack (~1 s for
    a 50k vocabulary) plus, per token, whether its text only closes or separates JSON."""

    def __init__(self, tokenizer_json: str, eos_ids: set[int]):
        from llguidance import LLTokenizer

        self.ll = LLTokenizer(tokenizer_json, eos_token=sorted(eos_ids) or None)
        self.vocab_size = self.ll.vocab_size
        self.eos_ids = sorted(eos_ids)
        # Closing tiers, most decisive first: a quote (inside a string it ends the string,
        # and "]" or "}" there would only be text), then brackets/braces, then separators.
        quotes, closers, separators = (np.zeros(self.vocab_size, bool) for _ in range(3))
        for tid in range(self.vocab_size):
            if self.ll.is_special_token(tid):
                continue
            text = self.ll.decode_bytes([tid]).decode("utf-8", "replace")
            if not text or not set(text) <= _CLOSERS | _SEPARATORS:
                continue
            if text.startswith('"') and set(text) <= _CLOSERS:
                quotes[tid] = True
            elif set(text) <= _CLOSERS:
                closers[tid] = True
            else:
                separators[tid] = True
        self.tiers = tuple(np.flatnonzero(t) for t in (quotes, closers, separators))
        self.eos_array = np.asarray([i for i in self.eos_ids if i < self.vocab_size], dtype=np.int64)

    @classmethod
    def for_engine(cls, engine) -> "GrammarTokenizer":
        return cls(engine.tokenizer.to_str(), engine.eos_ids)


class JsonConstraint:
    """A ``logits_hook``: masks logits with the grammar, closing up when ``budget`` runs low.

    Near the end of the budget the shortest way out of the current state is planned on a
    copy of the matcher (the closing path); once the tokens left barely cover it, the
    reply follows that path token by token, so it ends as complete JSON in time."""

    def __init__(self, tokenizer: GrammarTokenizer, grammar: str, budget: int):
        from llguidance import LLMatcher

        self.tok = tokenizer
        self.matcher = LLMatcher(tokenizer.ll, grammar, log_level=0)
        if self.matcher.is_error():
            raise RequestError(f"The JSON schema could not be used: {self.matcher.get_error()}")
        self.budget = budget
        self._consumed = 0
        self._path: list[int] | None = None  # the closing path being followed, once it must be
        self._path_start = 0
        shortest = len(self._closing_path(self.matcher))
        self._way_out = shortest  # tokens the closing path needed when last measured
        # How far one token may lengthen the way out (opening an item with required keys);
        # start generous, learn from the lookahead.
        self.jump = shortest + 16
        if shortest >= budget:
            raise RequestError(
                f"The shortest reply this schema allows is about {shortest} tokens but max_tokens is {budget}; "
                "raise max_tokens or simplify the schema."
            )

    def __call__(self, logits: np.ndarray, generated: list[int]) -> np.ndarray:
        for token in generated[self._consumed :]:
            self.matcher.consume_token(token)
        self._consumed = len(generated)
        if self.matcher.is_error():
            raise RequestError(f"Structured output failed: {self.matcher.get_error()}")
        logits = np.asarray(logits, dtype=np.float32).reshape(-1)
        allowed = _unpack(_bits(self.matcher), self.tok.vocab_size)
        left = self.budget - len(generated)
        if self._path is None and (left - self._way_out <= 2 * self.jump + CHECK_EVERY or len(generated) % CHECK_EVERY == 0):
            self._way_out = len(self._closing_path(self.matcher))
            if left - self._way_out <= self.jump:
                fitting = self._fitting(allowed, logits, left)
                if fitting:
                    allowed = np.zeros_like(allowed)
                    allowed[fitting] = True
                else:
                    self._path, self._path_start = self._closing_path(self.matcher), len(generated)
        if self._path is not None:
            step = len(generated) - self._path_start
            forced = np.zeros_like(allowed)
            if step < len(self._path):
                forced[self._path[step]] = True
            else:
                forced[self.tok.eos_array] = True
                forced &= allowed
            allowed = forced if forced.any() else allowed
        out = np.full(logits.shape, -np.inf, dtype=np.float32)
        n = min(len(allowed), len(logits))
        out[:n] = np.where(allowed[:n], logits[:n], -np.inf)
        return out

    def _fitting(self, allowed: np.ndarray, logits: np.ndarray, left: int) -> list[int]:
        """The model's best few allowed tokens after which the way out still fits in the
        tokens left (one kept for the end): near the budget the model may not open what
        it could no longer close. Also learns how far one token can push the way out."""
        n = min(len(allowed), len(logits))
        scores = np.where(allowed[:n], logits[:n], -np.inf)
        k = min(LOOKAHEAD, int(np.isfinite(scores).sum()))
        if k == 0:
            return []
        fitting = []
        for token in np.argpartition(-scores, k - 1)[:k].tolist():
            if token in self.tok.eos_ids:
                fitting.append(token)
                continue
            sim = self.matcher.deep_copy()
            sim.consume_token(token)
            way_out = len(self._closing_path(sim))
            self.jump = max(self.jump, way_out - self._way_out + 1)
            if not sim.is_error() and 1 + way_out < left:
                fitting.append(token)
        return fitting

    def _closing_path(self, matcher) -> list[int]:
        """Tokens that take the current state to a complete reply: the end if allowed,
        else a quote, a bracket or brace, a separator; where none fits (a number's digits,
        a key's letters) the allowed tokens in turn, so "0.000..." cannot repeat forever."""
        sim = matcher.deep_copy()
        path: list[int] = []
        free = 0
        while len(path) < MAX_CLOSING_STEPS and not sim.is_stopped():
            bits = _bits(sim)
            if not bits.any() or len(_allowed_of(bits, self.tok.eos_array)):
                break
            for tier in self.tok.tiers:
                hits = _allowed_of(bits, tier)
                if len(hits):
                    pick = int(hits[0])
                    break
            else:
                choices = np.flatnonzero(_unpack(bits, self.tok.vocab_size))
                pick, free = int(choices[free % len(choices)]), free + 1
            path.append(pick)
            sim.consume_token(pick)
        return path

    @property
    def complete(self) -> bool:
        return self.matcher.is_accepting()


def _bits(matcher) -> np.ndarray:
    return np.frombuffer(matcher.compute_bitmask(), dtype=np.uint8)


def _unpack(bits: np.ndarray, vocab_size: int) -> np.ndarray:
    return np.unpackbits(bits, bitorder="little")[:vocab_size].astype(bool)


def _allowed_of(bits: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The tokens of ``ids`` the bitmask allows (without unpacking the whole vocabulary)."""
    return ids[((bits[ids >> 3] >> (ids & 7)) & 1).astype(bool)] if len(ids) else ids
