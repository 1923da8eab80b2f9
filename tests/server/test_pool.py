"""Different models run side by side; a model that cannot fit beside a busy one is 503."""

from __future__ import annotations

import threading
import time

import httpx2 as httpx  # the HTTP client the openai package itself uses
import openai

from tests.server.conftest import start_server

LONG, TEXT, IMAGE = "tiny-long", "tiny-llama-fp32", "atelier-fashion-gan"


def _hold_long_stream(url: str, started: threading.Event, stop: threading.Event) -> None:
    body = {"model": LONG, "messages": [{"role": "user", "content": "go"}], "max_tokens": 4000, "stream": True, "ignore_eos": True}
    with httpx.stream("POST", f"{url}/chat/completions", json=body, timeout=120) as r:
        for line in r.iter_lines():
            if line.startswith("data:"):
                started.set()
            if stop.is_set():
                break


def _while_long_stream_runs(srv, check) -> None:
    started, stop = threading.Event(), threading.Event()
    t = threading.Thread(target=_hold_long_stream, args=(srv.url, started, stop))
    t.start()
    try:
        assert started.wait(60)
        runner = srv.app.state.jobs
        check()
        assert not runner.records[0].finished  # the long reply was still running meanwhile
    finally:
        stop.set()
        t.join(60)


def test_other_models_run_while_one_streams(api_library):
    srv = start_server(api_library)
    try:
        def check():
            with openai.OpenAI(base_url=srv.url, api_key="x", max_retries=0) as c:
                assert c.chat.completions.create(model=TEXT, messages=[{"role": "user", "content": "hi"}], max_tokens=3, extra_body={"ignore_eos": True}).usage.completion_tokens == 3  # a random model may end at once
                assert len(c.images.generate(model=IMAGE, prompt="x").data) == 1

        _while_long_stream_runs(srv, check)
    finally:
        srv.stop()


def test_model_that_cannot_fit_beside_a_busy_one_is_503(api_library):
    srv = start_server(api_library, memory_budget_bytes=1)  # room for one model at a time
    try:
        def check():
            r = httpx.post(f"{srv.url}/images/generations", json={"model": IMAGE, "prompt": "x"}, timeout=60)
            assert r.status_code == 503 and r.headers["retry-after"] and "memory budget" in r.json()["error"]["message"]

        _while_long_stream_runs(srv, check)
        deadline = time.monotonic() + 30
        while srv.app.state.pool.slot(LONG).active and time.monotonic() < deadline:
            time.sleep(0.01)
        with openai.OpenAI(base_url=srv.url, api_key="x", max_retries=0) as c:  # once idle, it makes room
            assert len(c.images.generate(model=IMAGE, prompt="x").data) == 1
    finally:
        srv.stop()
