"""The API server driven by the official openai client, in-process on 127.0.0.1:0."""

from __future__ import annotations

import base64
import io
import json
import time

import httpx2 as httpx  # the HTTP client the openai package itself uses
import openai
import pytest

TEXT, LONG, VOICE_MODALITY, IMAGE = "tiny-llama-fp32", "tiny-long", "speech", "atelier-fashion-gan"


def _records(root):
    from desktop.outputs.audit import records

    return list(records(root))


def test_models_lists_every_pack_with_modality_precision_context(client):
    cards = {m.id: m.model_extra for m in client.models.list().data}
    assert cards[TEXT] == {"modality": "text", "precision": "fp32", "context_length": 256, "architecture": "llama"}
    assert cards[IMAGE]["modality"] == "image"
    assert any(c["modality"] == VOICE_MODALITY for c in cards.values())
    assert client.models.retrieve(TEXT).id == TEXT


def test_streamed_chat_with_system_message_usage_and_cache_reuse(client, atelier_home):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}]
    stream = client.chat.completions.create(model=TEXT, messages=messages, max_tokens=12, temperature=0, stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    usage = chunks[-1].usage
    assert finish == ["length"] and usage.completion_tokens == 12 and usage.prompt_tokens > 5
    assert usage.total_tokens == usage.prompt_tokens + 12
    # Same request, not streamed, greedy: the same text; the earlier turn's KV cache is reused.
    again = client.chat.completions.create(model=TEXT, messages=messages, max_tokens=12, temperature=0)
    assert again.choices[0].message.content == text
    assert again.usage.prompt_tokens_details.cached_tokens >= usage.prompt_tokens - 1
    assert [r["kind"] for r in _records(atelier_home)][-2:] == ["chat", "chat"]  # as the chat studio and the CLI name it


def test_max_completion_tokens_seed_and_stop(client):
    a = client.chat.completions.create(model=TEXT, messages=[{"role": "user", "content": "hi"}], max_completion_tokens=8, seed=7, temperature=1.0)
    b = client.chat.completions.create(model=TEXT, messages=[{"role": "user", "content": "hi"}], max_completion_tokens=8, seed=7, temperature=1.0)
    assert a.choices[0].message.content == b.choices[0].message.content and a.usage.completion_tokens == 8
    text = a.choices[0].message.content
    stop = next((ch for ch in text[2:] if ch.strip()), None)
    if stop is not None:
        c = client.chat.completions.create(model=TEXT, messages=[{"role": "user", "content": "hi"}], max_completion_tokens=8, seed=7, temperature=1.0, stop=[stop])
        assert c.choices[0].finish_reason == "stop" and stop not in c.choices[0].message.content


def test_raw_completion(client):
    r = client.completions.create(model=TEXT, prompt="The cat", max_tokens=5, temperature=0)
    assert r.object == "text_completion" and r.usage.completion_tokens == 5 and r.usage.prompt_tokens >= 1
    chunks = list(client.completions.create(model=TEXT, prompt="The cat", max_tokens=5, temperature=0, stream=True))
    assert "".join(c.choices[0].text for c in chunks) == r.choices[0].text


def test_conversation_longer_than_context_is_400_with_the_numbers(client):
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=TEXT, messages=[{"role": "user", "content": "word " * 400}], max_tokens=5)
    assert err.value.code == "context_length_exceeded" and "256" in str(err.value)
    with pytest.raises(openai.BadRequestError, match="max_tokens"):
        client.chat.completions.create(model=TEXT, messages=[{"role": "user", "content": "hi"}], max_tokens=300)


def test_unsupported_fields_are_refused_clearly(client):
    with pytest.raises(openai.BadRequestError, match="repetition_penalty"):
        client.chat.completions.create(model=TEXT, messages=[{"role": "user", "content": "hi"}], frequency_penalty=0.5)
    with pytest.raises(openai.BadRequestError, match="n must be 1"):
        client.chat.completions.create(model=TEXT, messages=[{"role": "user", "content": "hi"}], n=2)


def test_unknown_model_is_404_and_wrong_modality_400(client):
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    assert err.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError, match="image model"):
        client.chat.completions.create(model=IMAGE, messages=[{"role": "user", "content": "hi"}])
    # A path is never a model name: the client cannot make the server read a folder.
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model=str(client.base_url), messages=[{"role": "user", "content": "hi"}])


def test_image_generation_png_with_provenance_and_watermark(client, atelier_home, tmp_path):
    import numpy as np
    from PIL import Image

    from desktop.outputs.provenance_png import read_png_provenance
    from desktop.outputs.watermark import can_mark, detect_file

    r = client.images.generate(model=IMAGE, prompt="a shoe", n=2, extra_body={"seed": 5})
    assert len(r.data) == 2
    path = tmp_path / "out.png"
    path.write_bytes(base64.b64decode(r.data[0].b64_json))
    record = read_png_provenance(path)
    assert record["pack"] == IMAGE and record["settings"]["seed"] == 5
    pixels = np.asarray(Image.open(path).convert("RGB"))
    assert detect_file(path).found == can_mark(pixels)  # marked exactly as the studio marks (large enough images)
    assert record["note"]  # the AI-generated note the studio writes
    again = client.images.generate(model=IMAGE, prompt="a shoe", extra_body={"seed": 5})
    same = np.asarray(Image.open(io.BytesIO(base64.b64decode(again.data[0].b64_json))).convert("RGB"))
    assert np.array_equal(same, pixels)  # same seed, same pixels (the record's time differs)
    assert sum(1 for rec in _records(atelier_home) if rec["kind"] == "image") == 3


def test_image_endpoint_takes_sdxl_second_prompt_fields(client):
    """prompt_2 / negative_prompt_2 reach the image request (not refused as unknown fields): a
    pack without SDXL's second text encoder refuses them by what they are for."""
    for field in ("prompt_2", "negative_prompt_2"):
        with pytest.raises(openai.BadRequestError, match="a second prompt is for SDXL models"):
            client.images.generate(model=IMAGE, prompt="a shoe", extra_body={field: "watercolour"})


def test_speech_wav_and_flac(client, atelier_home):
    import soundfile as sf

    voice = next(m.id for m in client.models.list().data if m.model_extra["modality"] == "speech")
    wav = client.audio.speech.create(model=voice, input="Hello world.", voice="alloy", response_format="wav", speed=1.2)
    data, rate = sf.read(io.BytesIO(wav.content))
    assert wav.content[:4] == b"RIFF" and len(data) > rate * 0.05
    flac = client.audio.speech.create(model=voice, input="Hello world.", voice="alloy", response_format="flac")
    info = sf.info(io.BytesIO(flac.content))
    assert info.format == "FLAC" and info.frames > 0
    assert sum(1 for rec in _records(atelier_home) if rec["kind"] == "speech") == 2


def test_oversized_body_is_413(server):
    big = {"model": TEXT, "messages": [{"role": "user", "content": "x" * (server.config.max_body_bytes + 10)}]}
    r = httpx.post(f"{server.url}/chat/completions", json=big, timeout=30)
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"


def test_client_that_disconnects_mid_stream_stops_the_engine_within_one_token(client, server):
    runner = server.app.state.jobs
    with client.chat.completions.with_streaming_response.create(
        model=LONG, messages=[{"role": "user", "content": "go"}], max_tokens=4000, temperature=1.0, stream=True,
        extra_body={"ignore_eos": True},
    ) as response:
        seen = 0
        for line in response.iter_lines():
            seen += line.startswith("data:")
            if seen >= 5:
                break
    record = runner.records[-1]
    deadline = time.monotonic() + 30
    while not record.finished and time.monotonic() < deadline:
        time.sleep(0.01)
    assert record.finished and record.cancelled
    assert record.produced - record.delivered <= 1, (record.produced, record.delivered)
    assert record.produced < 1000  # it really stopped early (the reply could run to 4000)
    # ...and the server keeps serving that model.
    after = client.chat.completions.create(model=LONG, messages=[{"role": "user", "content": "again"}], max_tokens=3, extra_body={"ignore_eos": True})
    assert after.usage.completion_tokens == 3


def test_requests_beyond_the_queue_are_429(api_library):
    """One job runs, max_queue wait, the next is refused at once."""
    import threading

    from tests.server.conftest import start_server

    srv = start_server(api_library, max_queue=1, text_streams=1)  # one stream at a time: the second waits
    try:
        url = f"{srv.url}/chat/completions"
        body = {"model": LONG, "messages": [{"role": "user", "content": "go"}], "max_tokens": 3000, "stream": True, "ignore_eos": True}
        results = []

        def long_stream():
            with httpx.stream("POST", url, json=body, timeout=120) as r:
                results.append(r.status_code)
                for _ in r.iter_lines():
                    pass

        threads = [threading.Thread(target=long_stream) for _ in range(2)]
        for t in threads:
            t.start()
        slot = srv.app.state.pool.slot(LONG)
        deadline = time.monotonic() + 60
        while slot.waiting < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        r = httpx.post(url, json={**body, "stream": False, "max_tokens": 2}, timeout=30)
        assert r.status_code == 429 and r.json()["error"]["type"] == "rate_limit_error"
        for t in threads:
            t.join(120)
        assert results == [200, 200]
    finally:
        srv.stop()


def test_lru_unloads_idle_models_to_stay_in_budget(api_library):
    from tests.server.conftest import start_server

    srv = start_server(api_library, memory_budget_bytes=1)  # room for one model at a time
    try:
        with openai.OpenAI(base_url=srv.url, api_key="x", max_retries=0) as c:
            c.chat.completions.create(model=TEXT, messages=[{"role": "user", "content": "hi"}], max_tokens=2)
            assert srv.app.state.pool.resident() == [TEXT]
            c.images.generate(model=IMAGE, prompt="x")
            assert srv.app.state.pool.resident() == [IMAGE]
    finally:
        srv.stop()


def test_bad_api_key_is_401_and_good_key_works(api_library):
    from tests.server.conftest import start_server

    srv = start_server(api_library, api_key="correct-horse-battery")
    try:
        with openai.OpenAI(base_url=srv.url, api_key="wrong-key-123", max_retries=0) as bad:
            with pytest.raises(openai.AuthenticationError):
                bad.models.list()
        with openai.OpenAI(base_url=srv.url, api_key="correct-horse-battery", max_retries=0) as good:
            assert any(m.id == TEXT for m in good.models.list().data)
        assert httpx.get(f"{srv.url}/models").status_code == 401
    finally:
        srv.stop()


def test_non_loopback_without_key_is_refused_before_listening():
    from desktop.engines.errors import RequestError
    from desktop.server.config import ServerConfig

    for host in ("0.0.0.0", "192.168.1.10", "::"):
        with pytest.raises(RequestError, match="without an API key"):
            ServerConfig(host=host).validate()
    ServerConfig(host="0.0.0.0", api_key="long-enough-key").validate()  # allowed with a key
    ServerConfig(host="::1").validate()
    with pytest.raises(RequestError, match="at least"):
        ServerConfig(api_key="short").validate()


def test_cors_is_off_unless_origins_are_listed(server, api_library):
    from tests.server.conftest import start_server

    pre = {"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}
    r = httpx.options(f"{server.url}/chat/completions", headers=pre)
    assert "access-control-allow-origin" not in r.headers
    srv = start_server(api_library, cors_origins=("http://localhost:3000",))
    try:
        ok = httpx.options(f"{srv.url}/chat/completions", headers={**pre, "Origin": "http://localhost:3000"})
        assert ok.headers.get("access-control-allow-origin") == "http://localhost:3000"
        bad = httpx.options(f"{srv.url}/chat/completions", headers=pre)
        assert bad.headers.get("access-control-allow-origin") is None
    finally:
        srv.stop()


def test_chunked_oversized_body_is_413_and_bad_field_is_400(server):
    limit = server.config.max_body_bytes

    def chunks():  # no Content-Length: the limit must hold while the body streams in
        for _ in range(limit // 65536 + 2):
            yield b" " * 65536

    r = httpx.post(f"{server.url}/chat/completions", content=chunks(), headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == 413
    bad = httpx.post(f"{server.url}/chat/completions", json={"model": TEXT, "messages": [{"role": "user", "content": "hi"}], "max_tokens": "lots"}, timeout=30)
    assert bad.status_code == 400 and "max_tokens" in bad.json()["error"]["message"]
