"""Text engine behaviour on a tiny exported pack: streaming, stop, seeds, overflow, reuse."""

from __future__ import annotations

import pytest

from desktop.engines.errors import ContextOverflowError, RequestError
from desktop.engines.events import Done, Token
from desktop.engines.packs.pack import load_pack
from desktop.engines.text.sampling import SamplingSettings
from desktop.engines.text.engine import ChatRequest, TextEngine, _stop_prefix_len


@pytest.fixture
def engine(tiny_packs):
    eng = TextEngine(load_pack(tiny_packs["llama"]))
    yield eng
    eng.close()


def run(engine, request):
    events = list(engine.generate(request))
    text = "".join(e.text for e in events if isinstance(e, Token))
    done = [e for e in events if isinstance(e, Done)]
    assert len(done) == 1 and events[-1] is done[0]
    return text, done[0]


def user(text):
    return [{"role": "user", "content": text}]


def test_same_seed_same_text_and_different_seed_differs(engine):
    sampled = lambda seed: run(engine, ChatRequest(user("Tell me about classes."), max_tokens=30, sampling=SamplingSettings(temperature=1.0, top_k=0, top_p=1.0, seed=seed)))[0]
    a, b, c = sampled(7), sampled(7), sampled(8)
    assert a == b
    assert a != c


def test_stop_string_cuts_the_reply(engine):
    full, _ = run(engine, ChatRequest(user("Describe lists."), max_tokens=40, sampling=SamplingSettings(temperature=0)))
    assert len(full) > 6
    stop = full[3:6]
    cut, done = run(engine, ChatRequest(user("Describe lists."), max_tokens=40, sampling=SamplingSettings(temperature=0), stop=(stop,)))
    assert done.finish_reason == "stop"
    assert stop not in cut and full.startswith(cut)


def test_stop_prefix_is_held_back():
    assert _stop_prefix_len("hello <|us", ("<|user|>",)) == 4
    assert _stop_prefix_len("hello", ("<|user|>",)) == 0


def test_max_tokens_limits_the_reply(engine):
    events = list(engine.generate(ChatRequest(user("Go on."), max_tokens=3, sampling=SamplingSettings(temperature=0))))
    assert sum(1 for e in events if isinstance(e, Token) and e.token_id is not None) <= 3
    assert events[-1].finish_reason in ("length", "eos")


def test_second_turn_reuses_the_cache_and_matches_a_fresh_engine(engine, tiny_packs):
    greedy = SamplingSettings(temperature=0, repetition_penalty=1.0)
    first, _ = run(engine, ChatRequest(user("What is a tuple?"), max_tokens=12, sampling=greedy))
    turn2 = user("What is a tuple?") + [{"role": "assistant", "content": first}, {"role": "user", "content": "And a set?"}]
    second, done = run(engine, ChatRequest(turn2, max_tokens=12, sampling=greedy))
    assert done.stats["reused_tokens"] > 0
    fresh = TextEngine(load_pack(tiny_packs["llama"]))
    try:
        expected, fresh_done = run(fresh, ChatRequest(turn2, max_tokens=12, sampling=greedy))
    finally:
        fresh.close()
    assert fresh_done.stats["reused_tokens"] == 0
    assert second == expected


def test_context_overflow_is_an_error_not_a_truncation(engine):
    long = " ".join(["word"] * 3000)  # far beyond the tiny model's 256-token window
    with pytest.raises(ContextOverflowError, match="context window"):
        list(engine.generate(ChatRequest(user(long), max_tokens=5)))


def test_reply_that_reaches_the_window_says_so(engine):
    prompt = " ".join(["x"] * 100)
    n = engine.count_tokens(user(prompt))
    assert n < engine.context_length
    events = list(engine.generate(ChatRequest(user(prompt), max_tokens=engine.context_length, sampling=SamplingSettings(temperature=1.0, top_k=0, top_p=1.0, seed=1))))
    done = events[-1]
    assert done.finish_reason in ("context_full", "eos")
    if done.finish_reason == "context_full":
        assert done.stats["context_used"] == engine.context_length


@pytest.mark.parametrize(
    "messages, match",
    [
        ([], "empty"),
        (user("   "), "prompt is empty"),
        (user("x" * 100_001 * 2), "characters"),
        ([{"role": "robot", "content": "hi"}], "role"),
    ],
)
def test_bad_requests_fail_early_with_clear_messages(messages, match):
    with pytest.raises(RequestError, match=match):
        ChatRequest(messages).validate()


@pytest.mark.parametrize(
    "settings, match",
    [
        (SamplingSettings(temperature=-1), "Temperature"),
        (SamplingSettings(top_p=0), "Top-p"),
        (SamplingSettings(top_k=-3), "Top-k"),
        (SamplingSettings(repetition_penalty=float("nan")), "Repetition"),
    ],
)
def test_bad_sampling_settings(settings, match):
    with pytest.raises(RequestError, match=match):
        settings.validate()


def test_stop_between_tokens_leaves_engine_usable(engine):
    gen = engine.generate(ChatRequest(user("Explain modules."), max_tokens=50, sampling=SamplingSettings(temperature=0)))
    first = next(gen)
    assert isinstance(first, Token)
    gen.close()  # what the worker does on Stop
    text, done = run(engine, ChatRequest(user("Explain modules."), max_tokens=5, sampling=SamplingSettings(temperature=0)))
    assert done.stats["generated_tokens"] >= 1
