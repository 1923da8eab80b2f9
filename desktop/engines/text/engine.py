"""Text engine: chat over a decoder pack with streaming, stop strings and KV reuse.

The engine renders the conversation with the pack's own chat template, tokenizes it with
HF ``tokenizers``, and feeds the backend only the tokens its cache does not already hold,
so turn 10 of a chat costs no more to start than turn 1. Generation is an explicit token
loop: cancelling is simply not asking for the next token.

A long prompt is fed in chunks sized to take ~0.5 s each. Between chunks the engine
yields a ``Progress`` event, which is also where a caller's Stop takes effect. The native
calls release the GIL (backends.py), so other threads - the window - run meanwhile.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from desktop.engines.base import register_engine
from desktop.engines.text.chat_template import ChatTemplate
from desktop.engines.errors import ContextOverflowError, PackFormatError, RequestError
from desktop.engines.events import Done, Progress, Token
from desktop.engines.packs.pack import Pack
from desktop.engines.providers import RuntimeSettings
from desktop.engines.validate_once import ValidatedOnce
from desktop.engines.text.sampling import Sampler, SamplingSettings
from desktop.engines.text.backends import open_backend
from desktop.engines.text.tokenizer_errors import tokenizer_failure as _tokenizer_failure

MAX_PROMPT_CHARS = 200_000
# Seconds one prefill call may run: how late a Stop takes effect and how often progress
# is reported. Each call pays a fixed cost (reading all weights once, about one generated
# token; on a loaded machine every op's thread hand-off too), so short calls slow prefill
# down (40 ms calls: 45% slower over 3,900 tokens idle; 250 ms calls at load 16: 3.5x
# slower than one call). 0 feeds the whole prompt in one call (benchmarks).
PREFILL_CALL_S = 0.5
ROLES = ("system", "user", "assistant")


@dataclass
class ChatRequest(ValidatedOnce):
    messages: list[dict[str, str]]  # [{"role": ..., "content": ...}], last one from the user
    max_tokens: int = 512
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    stop: tuple[str, ...] = ()
    ignore_eos: bool = False  # benchmarks only: always produce max_tokens tokens
    # Constrained decoding (the API server's JSON output): called before each sampling
    # step with the logits and the tokens generated so far; returns the logits with the
    # tokens the grammar forbids set to -inf.
    logits_hook: Callable[[np.ndarray, list[int]], np.ndarray] | None = None
    raw: bool = False  # one user message encoded as is, without the chat template (/v1/completions)

    def check(self) -> None:
        # Types first: a request built from a file or by a script with the
        # wrong types must be refused with words, not crash with a TypeError.
        if not isinstance(self.messages, list) or not all(isinstance(m, dict) for m in self.messages):
            raise RequestError("The conversation must be a list of messages.")
        if not isinstance(self.max_tokens, int) or isinstance(self.max_tokens, bool):
            raise RequestError("Max tokens must be a whole number between 1 and 32768.")
        if not isinstance(self.stop, (tuple, list)) or not all(isinstance(s, str) for s in self.stop):
            raise RequestError("Stop strings must be a list of text.")
        if self.logits_hook is not None and not callable(self.logits_hook):
            raise RequestError("The logits hook must be callable.")
        if not isinstance(self.sampling, SamplingSettings):
            raise RequestError("Sampling settings are missing or malformed.")
        if not self.messages:
            raise RequestError("Nothing to answer: the conversation is empty.")
        for m in self.messages:
            if m.get("role") not in ROLES or not isinstance(m.get("content"), str):
                raise RequestError(f"Messages need a role ({', '.join(ROLES)}) and text content.")
        last = self.messages[-1]
        if last["role"] != "user" or not last["content"].strip():
            raise RequestError("Type a message first: the prompt is empty.")
        total = sum(len(m["content"]) for m in self.messages)
        if total > MAX_PROMPT_CHARS:
            raise RequestError(
                f"The conversation is {total:,} characters; the limit is {MAX_PROMPT_CHARS:,}. "
                "Shorten the message or start a new chat."
            )
        if not 1 <= self.max_tokens <= 32768:
            raise RequestError("Max tokens must be between 1 and 32768.")
        self.sampling.validate()


class TextEngine:
    def __init__(self, pack: Pack, settings: RuntimeSettings | None = None, context_window: int | None = None):
        if pack.modality != "text":
            raise PackFormatError(f"'{pack.name}' is a {pack.modality} pack, not a text model.")
        self.pack = pack
        settings = settings or RuntimeSettings.from_env()
        self.tokenizer = _load_tokenizer(pack)
        tok_cfg = _read_json(pack, "tokenizer_config.json")
        specials = {k: v for k, v in tok_cfg.items() if k.endswith("_token") and isinstance(v, str)}
        self.template = ChatTemplate(_find_template(pack, tok_cfg), specials)
        self.eos_ids = self._eos_ids(tok_cfg)
        self.backend = open_backend(pack, settings, context_window or settings.context_window)
        self.provider = self.backend.provider
        self.context_length = self.backend.capacity
        self._cached_ids: list[int] = []  # tokens the backend cache holds, in order
        self.chunks = PrefillChunks(PREFILL_CALL_S)

    def _eos_ids(self, tok_cfg: dict) -> set[int]:
        ids: set[int] = set()
        for source in (self.pack.config.get("eos_token_id"), _genai_eos(self.pack)):
            if isinstance(source, int):
                ids.add(source)
            elif isinstance(source, list):
                ids.update(i for i in source if isinstance(i, int))
        for name in ("eos_token",):
            tok = tok_cfg.get(name)
            if isinstance(tok, dict):
                tok = tok.get("content")
            if isinstance(tok, str) and self.tokenizer.token_to_id(tok) is not None:
                ids.add(self.tokenizer.token_to_id(tok))
        for chat_end in ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>"):
            tid = self.tokenizer.token_to_id(chat_end)
            if tid is not None:
                ids.add(tid)
        return ids

    def encode_chat(self, messages: list[dict[str, str]]) -> list[int]:
        text = self.template.render(messages, add_generation_prompt=True)
        return self._encode(text, "this conversation")

    def encode_request(self, request: ChatRequest) -> list[int]:
        if not request.raw:
            return self.encode_chat(request.messages)
        return self._encode(request.messages[-1]["content"], "this text")

    def _encode(self, text: str, what: str) -> list[int]:
        # encode_batch, not encode: same ids, but it lets go of the GIL while it works
        # (a 200,000-character conversation took 0.56 s, during which no other Python
        # thread - the window - could run).
        try:
            return self.tokenizer.encode_batch([text], add_special_tokens=False)[0].ids
        except BaseException as exc:  # noqa: BLE001 - a Rust panic is a BaseException; see _tokenizer_failure
            raise _tokenizer_failure(exc, f"The tokenizer of '{self.pack.name}' failed on {what}") from None

    def count_tokens(self, messages: list[dict[str, str]]) -> int:
        return len(self.encode_chat(messages))

    def generate(self, request: ChatRequest) -> Iterator[Progress | Token | Done]:
        from tokenizers.decoders import DecodeStream

        request.validate()  # a no-op when the caller already checked this request
        prompt = self.encode_request(request)
        if len(prompt) >= self.context_length - 1:
            raise ContextOverflowError(
                f"This conversation is {len(prompt):,} tokens but the model's context window holds "
                f"{self.context_length:,}. Start a new chat or delete earlier messages."
            )
        t0 = time.perf_counter()
        reused = self._reuse_prefix(prompt)
        logits = yield from self._prefill(prompt[reused:])
        ttft = time.perf_counter() - t0

        sampler = Sampler(request.sampling)
        stream = DecodeStream(skip_special_tokens=True)
        budget = min(request.max_tokens, self.context_length - len(prompt))
        generated: list[int] = []
        text, emitted = "", 0
        finish = "length"
        recent_prompt = prompt[-request.sampling.repetition_window :]  # the penalty also sees the prompt's tail
        t_first = time.perf_counter()
        while True:
            if request.logits_hook is not None:
                logits = request.logits_hook(logits, generated)
            token = sampler(logits, recent_prompt + generated)
            if token in self.eos_ids and not request.ignore_eos:
                finish = "eos"
                break
            generated.append(token)
            piece = stream.step(self.tokenizer, token) or ""
            text += piece
            cut = _find_stop(text, request.stop)
            if cut is not None:
                yield Token(text[emitted:cut] if cut > emitted else "", token)
                emitted, finish = cut, "stop"
                break
            # One event per token (text may be empty while a multi-byte character or a
            # possible stop string is still incomplete), so callers can count tokens.
            safe = len(text) - _stop_prefix_len(text, request.stop)
            yield Token(text[emitted:safe] if safe > emitted else "", token)
            emitted = max(emitted, safe)
            if len(generated) >= budget:
                finish = "context_full" if budget < request.max_tokens else "length"
                break
            logits = self.backend.extend([token])
            self._cached_ids.append(token)
        if finish != "stop" and emitted < len(text):
            yield Token(text[emitted:], None)
        elapsed = time.perf_counter() - t_first
        n = len(generated)
        yield Done(
            stats={
                "prompt_tokens": len(prompt),
                "reused_tokens": reused,
                "generated_tokens": n,
                "ttft_s": round(ttft, 4),
                "tokens_per_s": round((n - 1) / elapsed, 2) if n > 1 and elapsed > 0 else 0.0,
                "seed": sampler.seed,
                "provider": self.provider.used,
                "context_used": len(prompt) + n,
                "context_length": self.context_length,
            },
            finish_reason=finish,
        )

    def _prefill(self, tokens: list[int]) -> Iterator[Progress]:
        """Feed ``tokens`` chunk by chunk; yields Progress between chunks, returns the logits.

        The cache record grows with each chunk, so a prefill stopped half way leaves a
        valid prefix that the next request reuses instead of feeding again."""
        fed, logits = 0, None
        while fed < len(tokens):
            chunk = tokens[fed : fed + self.chunks.size(len(tokens) - fed)]
            started = time.perf_counter()
            logits = self.backend.extend(chunk)
            self.chunks.observe(len(chunk), time.perf_counter() - started)
            self._cached_ids.extend(chunk)
            fed += len(chunk)
            if fed < len(tokens):
                yield Progress("Reading the prompt", fed / len(tokens))
        return logits

    def _reuse_prefix(self, prompt: list[int]) -> int:
        """Rewind the cache to the longest prefix it shares with ``prompt``; return its length."""
        cached = self._cached_ids[: self.backend.cached]
        common = 0
        for a, b in zip(cached, prompt):
            if a != b:
                break
            common += 1
        common = min(common, len(prompt) - 1)  # always feed at least one token to get logits
        if common < self.backend.cached:
            self.backend.rewind(common)
            common = self.backend.cached
        self._cached_ids = self._cached_ids[:common]
        return common

    def reset_cache(self) -> None:
        self.backend.rewind(0)
        self._cached_ids = []

    def close(self) -> None:
        self.backend.close()


class PrefillChunks:
    """How many prompt tokens the next prefill call gets, so that it lasts ~``target_s``.

    Sized from the last call's measured time per token: that cost grows with the position
    (attention reads the whole cache) and with the machine's load, which a fixed token
    count would not follow. Growth is at most 2x per call so one fast outlier cannot
    schedule a long freeze."""

    # At least 128 tokens: the calls release the GIL, so shorter ones would buy nothing
    # for the window and pay the fixed cost more often (see PREFILL_CALL_S).
    FIRST, SMALLEST, LARGEST = 128, 128, 4096

    def __init__(self, target_s: float):
        self.target_s = target_s
        self._size = self.FIRST

    def size(self, remaining: int) -> int:
        return remaining if self.target_s <= 0 else min(remaining, self._size)

    def observe(self, tokens: int, seconds: float) -> None:
        if self.target_s <= 0 or tokens <= 0:
            return
        if tokens < self._size and seconds < self.target_s:
            return  # a short last chunk is mostly fixed cost: it says nothing about growing
        fitting = int(self.target_s * tokens / max(seconds, 1e-6))
        self._size = max(self.SMALLEST, min(fitting, 2 * self._size, self.LARGEST))


def _find_stop(text: str, stops: tuple[str, ...]) -> int | None:
    hits = [text.find(s) for s in stops if s and s in text]
    return min(hits) if hits else None


def _stop_prefix_len(text: str, stops: tuple[str, ...]) -> int:
    """Length of the longest tail of ``text`` that is a proper prefix of a stop string."""
    best = 0
    for s in stops:
        for k in range(min(len(s) - 1, len(text)), 0, -1):
            if text.endswith(s[:k]):
                best = max(best, k)
                break
    return best


def _load_tokenizer(pack: Pack):
    from tokenizers import Tokenizer

    if not pack.has_file("tokenizer.json"):
        pack.path_of("tokenizer.json")  # names an unlisted tokenizer lying in the folder
        raise PackFormatError(f"Text pack '{pack.name}' lists no tokenizer.json.")
    try:
        return Tokenizer.from_str(pack.read_bytes("tokenizer.json").decode("utf-8"))
    except BaseException as exc:  # noqa: BLE001 - see _tokenizer_failure
        raise _tokenizer_failure(exc, f"The tokenizer.json of '{pack.name}' cannot be loaded") from None


def _read_json(pack: Pack, name: str) -> dict:
    # Only through the pack: a listed, hash-checked file, or nothing (never a stray copy).
    data = pack.read_json(name, default={})
    return data if isinstance(data, dict) else {}


def _find_template(pack: Pack, tok_cfg: dict) -> str | None:
    """The pack's chat template: a listed chat_template.jinja, else tokenizer_config's."""
    if pack.has_file("chat_template.jinja"):
        try:
            return pack.read_bytes("chat_template.jinja").decode("utf-8")
        except UnicodeDecodeError:
            raise PackFormatError(f"The chat template of pack '{pack.name}' is not UTF-8 text.") from None
    pack.path_of("chat_template.jinja")  # present but unlisted: refused by name, never used
    tpl = tok_cfg.get("chat_template")
    if isinstance(tpl, list):  # named templates: take the default one
        tpl = next((t.get("template") for t in tpl if isinstance(t, dict) and t.get("name") == "default"), None)
    return tpl if isinstance(tpl, str) else None


@register_engine("text")
def _open(pack: Pack, settings: RuntimeSettings) -> TextEngine:
    return TextEngine(pack, settings, context_window=settings.context_window)


def _genai_eos(pack: Pack):
    model = _read_json(pack, "genai_config.json").get("model")
    return model.get("eos_token_id") if isinstance(model, dict) else None
