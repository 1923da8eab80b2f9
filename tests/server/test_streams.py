"""Several clients stream from one text model at once (one engine replica each), bounded
by ``text_streams`` and the memory budget, and a conversation's next turn goes back to
the replica that holds its KV cache."""

from __future__ import annotations

import threading

import httpx2 as httpx  # the HTTP client the openai package itself uses
import openai

from tests.server.conftest import start_server

LONG, TEXT = "tiny-long", "tiny-llama-fp32"


class Streams:
    """``n`` long streams on LONG; each records the moment its first token arrived and
    whether it saw the others' first tokens before it finished."""

    def __init__(self, url: str, n: int, max_tokens: int = 400):
        self.first = [threading.Event() for _ in range(n)]
        self.overlapped = [False] * n
        self.status = [None] * n
        body = {"model": LONG, "messages": [{"role": "user", "content": "go"}], "max_tokens": max_tokens, "stream": True, "ignore_eos": True}
        self.threads = [threading.Thread(target=self._run, args=(url, body, i)) for i in range(n)]

    def _run(self, url, body, i):
        with httpx.stream("POST", f"{url}/chat/completions", json=body, timeout=120) as r:
            self.status[i] = r.status_code
            for line in r.iter_lines():
                if '"content"' in line:
                    self.first[i].set()
        # Finished: did every other stream produce a token while this one ran?
        self.overlapped[i] = all(e.is_set() for e in self.first)

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
        assert any(s.overlapped)  # the first to finish saw the other's tokens: they ran side by side
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
        assert not any(s.overlapped[i] and s.overlapped[1 - i] for i in range(2))
        assert sum(s.overlapped) == 1  # only the later one saw both first tokens
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
