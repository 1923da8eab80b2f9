"""onnxruntime-genai packs run on plain onnxruntime (GenaiGraphBackend): the same greedy
tokens as genai's own binding, KV reuse and rewind kept, and forks that decode at the same time on separate caches."""

from __future__ import annotations

import threading

import pytest

from desktop.engines.errors import PackFormatError
from desktop.engines.events import Token
from desktop.engines.packs.pack import load_pack
from desktop.engines.text.backends import BACKEND_ENV, GenaiBackend
from desktop.engines.text.engine import ChatRequest, TextEngine
from desktop.engines.text.genai_graph import GenaiGraphBackend
from desktop.engines.text.sampling import SamplingSettings
from desktop.engines.text.streams import fork_engine
from tests.engines.test_prefill import FixedChunks, long_messages


def greedy_ids(engine: TextEngine, messages, max_tokens: int = 16) -> tuple[list[int], dict]:
    request = ChatRequest(messages, max_tokens=max_tokens, sampling=SamplingSettings(temperature=0), ignore_eos=True)
    events = list(engine.generate(request))
    return [e.token_id for e in events if isinstance(e, Token) and e.token_id is not None], events[-1].stats


def conversation(engine: TextEngine) -> list[tuple[list[int], int]]:
    """Two turns (the cache reused), then an edited earlier turn (a rewind), chunked."""
    engine.reset_cache()
    engine.chunks = FixedChunks(5)
    messages = [{"role": "user", "content": "hello there, tell me about the sea"}]
    out = []
    for follow_up in ("and the mountains?", "and the rivers?"):
        ids, stats = greedy_ids(engine, messages)
        out.append((ids, stats["reused_tokens"]))
        messages = messages + [{"role": "assistant", "content": engine.tokenizer.decode(ids)}, {"role": "user", "content": follow_up}]
    edited = messages[:2] + [{"role": "user", "content": "something else entirely"}]
    cached_before_edit = engine.backend.cached
    ids, stats = greedy_ids(engine, edited)
    out.append((ids, stats["reused_tokens"]))
    assert 0 < stats["reused_tokens"] < cached_before_edit  # rewound to the shared prefix
    return out


def test_graph_backend_matches_genai_binding_across_turns_and_rewinds(tiny_packs, monkeypatch):
    pack = load_pack(tiny_packs["llama"])
    graph = TextEngine(pack)
    monkeypatch.setenv(BACKEND_ENV, "binding")
    binding = TextEngine(pack)
    try:
        assert isinstance(graph.backend, GenaiGraphBackend) and isinstance(binding.backend, GenaiBackend)
        ours, theirs = conversation(graph), conversation(binding)
        assert ours == theirs
        assert ours[1][1] > 0  # the second turn reused the first's cache
    finally:
        graph.close()
        binding.close()


def test_unknown_backend_choice_is_refused_with_words(tiny_packs, monkeypatch):
    monkeypatch.setenv(BACKEND_ENV, "fastest")
    with pytest.raises(PackFormatError, match="'graph' or 'binding'"):
        TextEngine(load_pack(tiny_packs["llama"]))


def test_kv_buffer_grows_past_its_first_size_without_changing_tokens(tiny_packs, monkeypatch):
    monkeypatch.setattr("desktop.engines.text.genai_graph.FIRST_BUFFER", 8)
    pack = load_pack(tiny_packs["llama"])
    engine = TextEngine(pack)
    try:
        messages = long_messages(engine, 120)
        small_steps, _ = greedy_ids(engine, messages)
        assert engine.backend._kv.length >= engine.backend.cached > 64  # grew 8 -> 16 -> ... -> 256
    finally:
        engine.close()
    monkeypatch.setenv(BACKEND_ENV, "binding")
    reference = TextEngine(pack)
    try:
        assert greedy_ids(reference, messages)[0] == small_steps
    finally:
        reference.close()


@pytest.mark.parametrize("backend", ["graph", "binding"])
def test_forks_decode_at_the_same_time_on_their_own_caches(tiny_packs, monkeypatch, backend):
    monkeypatch.setenv(BACKEND_ENV, backend)
    engine = TextEngine(load_pack(tiny_packs["llama"]))
    copies_cache = backend == "graph"  # genai's binding cannot copy a cache: its forks start empty
    try:
        shared = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "hi"}]
        greedy_ids(engine, shared, max_tokens=4)
        prompts = [[shared[0], {"role": "user", "content": f"question number {i}"}] for i in range(4)]
        alone = []
        for messages in prompts:
            engine.reset_cache()
            alone.append(greedy_ids(engine, messages, max_tokens=24)[0])
        greedy_ids(engine, shared, max_tokens=4)
        forks = [fork_engine(engine) for _ in prompts]
        assert all(f.backend.cached == (engine.backend.cached if copies_cache else 0) for f in forks)
        results: dict[int, tuple[list[int], dict]] = {}
        start = threading.Barrier(len(forks))

        def run(i: int) -> None:
            start.wait()
            results[i] = greedy_ids(forks[i], prompts[i], max_tokens=24)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(forks))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert [results[i][0] for i in range(len(forks))] == alone
        if copies_cache:
            assert all(results[i][1]["reused_tokens"] > 0 for i in range(len(forks)))  # the system prompt was not read again
        assert engine.backend.cached > 0 and greedy_ids(engine, shared, max_tokens=4)[1]["reused_tokens"] > 0  # the original is untouched
        for f in forks:
            f.close()
        assert greedy_ids(engine, prompts[0], max_tokens=24)[0] == alone[0]  # closing forks leaves the model usable
    finally:
        engine.close()


def test_decode_steps_keep_one_binding_until_the_cache_grows(tiny_packs, monkeypatch):
    """A step rebinds only its token and mask: the KV buffers stay bound (binding 60 of them
    per token cost as much Python time as a small model's whole step)."""
    monkeypatch.setattr("desktop.engines.text.genai_graph.FIRST_BUFFER", 64)
    engine = TextEngine(load_pack(tiny_packs["llama"]))
    try:
        session = engine.backend._session
        made = []
        real = session.io_binding
        monkeypatch.setattr(session, "io_binding", lambda: made.append(1) or real())
        ids, _ = greedy_ids(engine, [{"role": "user", "content": "hi"}], max_tokens=60)
        assert len(ids) == 60 and engine.backend.cached > 64
        assert len(made) == 2  # the first buffer, then once more when it doubled
    finally:
        engine.close()


def test_step_logits_stay_the_callers_after_later_steps(tiny_packs):
    """The first one-token step's logits came back as a view of the buffer every later step
    writes into, so a caller that kept them saw the next step's values instead."""
    import numpy as np

    backend = TextEngine(load_pack(tiny_packs["llama"])).backend
    try:
        assert isinstance(backend, GenaiGraphBackend)
        backend.extend([1, 2, 3])
        first = backend.extend([4])
        kept = first.copy()
        backend.extend([5])
        backend.extend([6])
        assert np.array_equal(first, kept)
    finally:
        backend.close()
