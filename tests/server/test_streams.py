"""Several clients stream from one text model at once (one engine replica each), bounded
by ``text_streams`` and the memory budget, and a conversation's next turn goes back to
the replica that holds its KV cache."""

from __future__ import annotations

import threading
import time

import httpx2 as httpx  # the HTTP client the openai package itself uses
import openai

from tests.server.conftest import start_server

LONG, TEXT = "tiny-long", "tiny-llama-fp32"


class Streams:
    """``n`` long streams on LONG; each records when its first token and its finish chunk
    arrived, so a test can tell whether the streams ran side by side or one after another."""

    def __init__(self, url: str, n: int, max_tokens: int = 400):
        self.first = [None] * n
        self.finish = [None] * n
        self.status = [None] * n
        body = {"model": LONG, "messages": [{"role": "user", "content": "go"}], "max_tokens": max_tokens, "stream": True, "ignore_eos": True}
        self.threads = [threading.Thread(target=self._run, args=(url, body, i)) for i in range(n)]

    def _run(self, url, body, i):
        with httpx.stream("POST", f"{url}/chat/completions", json=body, timeout=120) as r:
            self.status[i] = r.status_code
            for line in r.iter_lines():
                if self.first[i] is None and '"content"' in line and '"content": ""' not in line:
                    self.first[i] = time.monotonic()
                if '"finish_reason": "' in line:
                    self.finish[i] = time.monotonic()

    def side_by_side(self, i: int, j: int) -> bool:
        """Both streams had produced a token before either finished."""
        return self.first[j] < self.finish[i] and self.first[i] < self.finish[j]

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        for t in self.threads:
            t.join(120)


def test_two_clients_stream_from_one_model_at_once_on_two_replicas(api_library):
    srv = start_server(api_library, text_streams=2)
    try:
        with Streams(srv.url, 2) as s:
            pass
        assert s.status == [200, 200]
        assert s.side_by_side(0, 1)
        slot = srv.app.state.pool.slot(LONG)
        assert len(slot.replicas) == 2 and slot.running == 0 and not slot.active
    finally:
        srv.stop()


def test_one_stream_per_model_when_configured_so_the_second_waits(api_library):
    srv = start_server(api_library, text_streams=1)
    try:
        with Streams(srv.url, 2) as s:
            pass
        assert s.status == [200, 200]
        assert not s.side_by_side(0, 1)  # the second one's first token came after the first one finished
        assert len(srv.app.state.pool.slot(LONG).replicas) == 1
    finally:
        srv.stop()


def test_no_room_for_a_second_replica_means_waiting_for_the_first_not_an_error(api_library):
    from desktop.engines.memory import estimated_load_bytes
    from desktop.engines.packs.pack import load_pack

    need = estimated_load_bytes(load_pack(api_library / LONG, verify_hashes=False))
    srv = start_server(api_library, text_streams=4, memory_budget_bytes=int(need * 1.5))
    try:
        with Streams(srv.url, 3, max_tokens=60) as s:
            pass
        assert s.status == [200, 200, 200]
        slot = srv.app.state.pool.slot(LONG)
        assert len(slot.replicas) == 1 and slot.bytes <= srv.app.state.pool.budget_bytes
    finally:
        srv.stop()


def test_a_conversations_next_turn_reuses_the_kv_cache_of_its_replica(api_library):
    srv = start_server(api_library, text_streams=2)
    try:
        with Streams(srv.url, 2, max_tokens=40):  # two replicas exist, each with another conversation
            pass
        first = [{"role": "user", "content": "Tell me about lighthouses."}]
        with openai.OpenAI(base_url=srv.url, api_key="x", max_retries=0, timeout=120) as c:
            reply = c.chat.completions.create(model=LONG, messages=first, max_tokens=8, extra_body={"ignore_eos": True})
            turn2 = [*first, {"role": "assistant", "content": reply.choices[0].message.content}, {"role": "user", "content": "And then?"}]
            for _ in range(3):  # whichever replica was used last, the conversation finds its own
                again = c.chat.completions.create(model=LONG, messages=turn2, max_tokens=2, extra_body={"ignore_eos": True})
                assert again.usage.prompt_tokens_details.cached_tokens >= reply.usage.prompt_tokens - 1
                c.chat.completions.create(model=LONG, messages=[{"role": "user", "content": "unrelated"}], max_tokens=2)
    finally:
        srv.stop()


def test_a_job_takes_a_replica_that_frees_up_instead_of_waiting_for_its_slow_load(api_library):
    """The second replica's load is held back; the second client is served by the first
    replica as soon as the first client's reply ends, not when the load finishes."""
    srv = start_server(api_library, text_streams=2)
    pool = srv.app.state.pool
    gate, opened = threading.Event(), []
    real_open = pool._open_engine

    def slow_second_open(pack, settings):
        opened.append(pack.name)
        if len(opened) == 2:
            assert gate.wait(120)
        return real_open(pack, settings)

    pool._open_engine = slow_second_open
    try:
        with openai.OpenAI(base_url=srv.url, api_key="x", max_retries=0, timeout=120) as c:
            ask = lambda n: c.chat.completions.create(model=LONG, messages=[{"role": "user", "content": "go"}], max_tokens=n, extra_body={"ignore_eos": True})  # noqa: E731
            ask(1)  # the first replica is open
            results = {}
            first = threading.Thread(target=lambda: results.setdefault("first", ask(200)))
            first.start()
            slot = pool.slot(LONG)
            deadline = time.monotonic() + 60
            while not slot.active and time.monotonic() < deadline:
                time.sleep(0.01)
            second = ask(3)  # its own load is held at the gate: it can only be served by the first replica
            first.join(120)
            assert second.usage.completion_tokens == 3 and results["first"].usage.completion_tokens == 200
            assert len(opened) == 2 and not gate.is_set()
    finally:
        gate.set()
        srv.stop()
