"""Prefill: a long prompt is fed in chunks, so Stop takes effect between two chunks and
progress is reported, the reply is the same as with the whole prompt fed at once, and
other Python threads (the GUI) keep running throughout.

onnxruntime-genai's own ``append_tokens`` holds the GIL for its whole call; the default
backend runs the pack's graph with the GIL released. A watcher thread that wakes every
10 ms measures how long it was kept waiting.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from desktop.engines.events import Done, Progress, Token
from desktop.engines.packs.pack import load_pack
from desktop.engines.text.backends import BACKEND_ENV
from desktop.engines.text.sampling import SamplingSettings
from desktop.engines.text.engine import PREFILL_CALL_S, ChatRequest, PrefillChunks, TextEngine

LONG_PROMPT_TOKENS = 3900  # the ~4,000-token prompt of the measured freeze, inside a 4,096 window
GAP_LIMIT_S = 0.1


def gap_limit() -> float:
    """100 ms; 200 ms while the machine has more runnable work than cores, 300 ms with more
    than twice as much. Margin for a loaded machine: at load average ~8 on 2 cores an image
    job that adds no GIL hold at all was once seen at 108 ms, and a chat stream beside a
    concurrent install at 216 ms. The freezes guarded against are 0.6-1.5 s here."""
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    return GAP_LIMIT_S * (3 if load > 2 * cores else 2 if load > cores else 1)


def long_llama_pack(cache: Path) -> Path:
    """A small random llama with a 4,608-token context, exported by our exporter (genai
    runtime). Big enough that one 3,900-token prefill call takes ~2 s on a busy 2-core
    machine, so feeding it at once visibly starves other threads. Cached across runs."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    import exporters

    from tests.tiny_models import tiny_tokenizer

    root = cache / "long-llama-v1"
    pack = root / "pack"
    if (pack / "manifest.json").is_file():
        return pack
    shutil.rmtree(root, ignore_errors=True)
    tok = tiny_tokenizer()
    torch.manual_seed(0)
    config = LlamaConfig(
        hidden_size=128, intermediate_size=256, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=4608, tie_word_embeddings=False, vocab_size=len(tok), eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id,
    )
    hf = root / "hf"
    LlamaForCausalLM(config).save_pretrained(str(hf))
    tok.save_pretrained(str(hf))
    return exporters.export("text", hf, pack, "fp32", name="tiny-long-llama", force=True)


def long_messages(engine: TextEngine, tokens: int = LONG_PROMPT_TOKENS) -> list[dict[str, str]]:
    """One user message of about ``tokens`` tokens (Python's bundled docs)."""
    from pydoc_data.topics import topics

    ids = engine.tokenizer.encode(" ".join(topics[k] for k in sorted(topics)), add_special_tokens=False).ids
    return [{"role": "user", "content": engine.tokenizer.decode(ids[: tokens - 20])}]


class GapWatcher:
    """A Python thread waking every 10 ms; ``longest`` is its worst extra wait in seconds."""

    def __init__(self):
        self.longest = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, daemon=True)

    def _tick(self) -> None:
        while not self._stop.wait(0.01):
            self._note()

    def _note(self) -> None:
        now = time.perf_counter()
        self.longest = max(self.longest, now - self._last - 0.01)
        self._last = now

    def __enter__(self) -> "GapWatcher":
        # counted from now: a job that takes the GIL before the thread first runs would
        # otherwise go unseen
        self._last = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._note()  # the stretch since the last tick counts too


class FixedChunks(PrefillChunks):
    """Chunks of a fixed, odd size: boundaries that fall anywhere in the prompt."""

    def __init__(self, tokens: int):
        super().__init__(1.0)
        self._size = tokens

    def observe(self, tokens: int, seconds: float) -> None:
        pass


@pytest.fixture(scope="module")
def long_engine(cache_dir):
    engine = TextEngine(load_pack(long_llama_pack(cache_dir)))
    yield engine
    engine.close()


def greedy(engine: TextEngine, messages, chunks: PrefillChunks, max_tokens: int = 24) -> tuple[list[int], Done, int]:
    engine.reset_cache()
    engine.chunks = chunks
    events = list(engine.generate(ChatRequest(messages, max_tokens=max_tokens, sampling=SamplingSettings(temperature=0), ignore_eos=True)))
    ids = [e.token_id for e in events if isinstance(e, Token) and e.token_id is not None]
    return ids, events[-1], sum(isinstance(e, Progress) for e in events)


@pytest.mark.parametrize("kind", ["llama", "gpt2"])  # genai backend, plain onnxruntime backend
def test_chunked_prefill_gives_the_same_greedy_tokens(tiny_packs, kind):
    engine = TextEngine(load_pack(tiny_packs[kind]))
    try:
        messages = long_messages(engine, 200)  # tiny packs hold 256 positions
        whole, done, progress = greedy(engine, messages, PrefillChunks(0))
        assert progress == 0 and done.stats["prompt_tokens"] > 150
        for chunks in (FixedChunks(7), FixedChunks(64), PrefillChunks(PREFILL_CALL_S)):
            ids, _, _ = greedy(engine, messages, chunks)
            assert ids == whole
        _, _, progress = greedy(engine, messages, FixedChunks(7))
        assert progress == -(-done.stats["prompt_tokens"] // 7) - 1  # one event between two chunks
    finally:
        engine.close()


def test_long_prompt_chunked_matches_one_call_and_reports_progress(long_engine):
    messages = long_messages(long_engine)
    whole, done, progress = greedy(long_engine, messages, PrefillChunks(0))
    assert progress == 0 and done.stats["prompt_tokens"] >= LONG_PROMPT_TOKENS - 100
    ids, _, progress = greedy(long_engine, messages, FixedChunks(257))
    assert ids == whole and progress == -(-done.stats["prompt_tokens"] // 257) - 1


def test_no_prefill_call_keeps_other_threads_waiting(long_engine, monkeypatch):
    """genai's own binding holds the GIL for a whole prefill call (what froze the window);
    the default backend runs the same graph with the GIL released, so neither the whole
    prompt in one call nor chunked calls keep another thread waiting."""
    messages = long_messages(long_engine)
    request = lambda: ChatRequest(messages, max_tokens=1, sampling=SamplingSettings(temperature=0))
    monkeypatch.setenv(BACKEND_ENV, "binding")
    binding = TextEngine(long_engine.pack)
    try:
        binding.chunks = PrefillChunks(0)
        with GapWatcher() as before:
            list(binding.generate(request()))
    finally:
        binding.close()
    limit = gap_limit()
    assert before.longest > 2 * limit, "the model is too small to show the freeze this test guards against"
    for chunks in (PrefillChunks(0), PrefillChunks(PREFILL_CALL_S)):
        long_engine.reset_cache()
        long_engine.chunks = chunks
        with GapWatcher() as after:
            list(long_engine.generate(request()))
        assert after.longest < limit, f"another thread waited {after.longest * 1000:.0f} ms (binding, one call: {before.longest * 1000:.0f} ms)"


def test_closing_during_prefill_stops_within_one_chunk_and_keeps_the_fed_prefix(long_engine):
    messages = long_messages(long_engine)
    reference, _, _ = greedy(long_engine, messages, PrefillChunks(0), max_tokens=8)
    long_engine.reset_cache()
    long_engine.chunks = FixedChunks(300)
    gen = long_engine.generate(ChatRequest(messages, max_tokens=8, sampling=SamplingSettings(temperature=0), ignore_eos=True))
    first = next(gen)
    assert isinstance(first, Progress) and 0 < first.fraction < 1
    gen.close()  # what the worker does on Stop
    assert long_engine.backend.cached == 300  # nothing fed after the chunk that yielded
    ids, done = greedy_keeping_cache(long_engine, messages)
    assert done.stats["reused_tokens"] == 300  # the fed chunk is not fed again
    assert ids == reference


def greedy_keeping_cache(engine: TextEngine, messages) -> tuple[list[int], Done]:
    events = list(engine.generate(ChatRequest(messages, max_tokens=8, sampling=SamplingSettings(temperature=0), ignore_eos=True)))
    return [e.token_id for e in events if isinstance(e, Token) and e.token_id is not None], events[-1]


def test_chunk_sizes_follow_the_measured_call_time():
    chunks = PrefillChunks(0.5)
    assert chunks.size(10_000) == PrefillChunks.FIRST == 128
    chunks.observe(128, 0.1)  # 5x faster than the target: grows, but at most 2x per call
    assert chunks.size(10_000) == 256
    chunks.observe(256, 2.0)  # 4x slower: shrinks at once, but never below the floor
    assert chunks.size(10_000) == PrefillChunks.SMALLEST
    chunks.observe(128, 10.0)  # a starved machine: still the floor, where calls get costly
    assert chunks.size(10_000) == PrefillChunks.SMALLEST
    assert chunks.size(5) == 5
    chunks.observe(3, 0.001)  # a short last chunk is mostly fixed cost: no growth from it
    assert chunks.size(10_000) == PrefillChunks.SMALLEST
    assert PrefillChunks(0).size(10_000) == 10_000  # off: the whole prompt in one call


def test_tokenizing_a_long_conversation_lets_other_threads_run(long_engine):
    text = long_messages(long_engine)[0]["content"]
    messages = [{"role": "user", "content": (text * (190_000 // len(text) + 1))[:190_000]}]  # near the 200,000-character limit
    with GapWatcher() as watch:
        ids = long_engine.encode_chat(messages)
    rendered = long_engine.template.render(messages, add_generation_prompt=True)
    assert ids == long_engine.tokenizer.encode(rendered, add_special_tokens=False).ids
    assert watch.longest < gap_limit(), f"another thread waited {watch.longest * 1000:.0f} ms"
