"""``/v1/chat/completions`` and ``/v1/completions`` over the text engine.

Everything that needs the model (tokenizing, the context check, the grammar tokenizer)
runs in the job on the worker thread. The job's first event, :class:`Started`, arrives
before any response byte is sent, so a conversation longer than the context is a clean
400 with both numbers even for a streamed request - never a silently truncated prompt.
"""

from __future__ import annotations

import json
import time
import uuid
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

from desktop.engines.errors import ContextOverflowError
from desktop.engines.events import Done, Token

from .errors import status_of
from .schemas import ChatBody, CompletionBody
from .structured import GrammarTokenizer, JsonConstraint, grammar_for

FINISH = {"eos": "stop", "stop": "stop", "length": "length", "context_full": "length"}


@dataclass(frozen=True)
class Started:
    prompt_tokens: int


def _sampling(body, json_mode: bool):
    from desktop.engines.text.sampling import SamplingSettings

    studio = SamplingSettings()
    # Penalising repeats fights JSON's own repeated quotes and braces.
    default_penalty = 1.0 if json_mode else studio.repetition_penalty
    return SamplingSettings(
        temperature=studio.temperature if body.temperature is None else body.temperature,
        top_k=studio.top_k if body.top_k is None else body.top_k,
        top_p=studio.top_p if body.top_p is None else body.top_p,
        repetition_penalty=default_penalty if body.repetition_penalty is None else body.repetition_penalty,
        seed=body.seed,
    )


def _job(body, messages: list[dict[str, str]], raw: bool, max_tokens: int | None, grammar: str | None):
    """The worker-thread side of one text request: check, generate, audit."""
    from desktop.engines.text.engine import ChatRequest
    from desktop.outputs.saving import save_chat_result

    def make(engine, replica):
        request = ChatRequest(messages, max_tokens=1, sampling=_sampling(body, grammar is not None), stop=body.stop_list(), raw=raw, ignore_eos=body.ignore_eos)
        request.validate()
        prompt = len(engine.encode_request(request))
        ctx = engine.context_length
        if prompt >= ctx - 1 or (max_tokens and prompt + max_tokens > ctx):
            asked = f" plus max_tokens {max_tokens:,}" if max_tokens else ""
            raise ContextOverflowError(
                f"This request is {prompt:,} prompt tokens{asked}, but the model '{engine.pack.name}' holds "
                f"{ctx:,} tokens of context. Shorten the conversation or lower max_tokens."
            )
        request.max_tokens = min(max_tokens or ctx - prompt, 32768)
        if grammar is not None:
            if "grammar_tokenizer" not in replica.extras:
                replica.extras["grammar_tokenizer"] = GrammarTokenizer.for_engine(engine)
            request.logits_hook = JsonConstraint(replica.extras["grammar_tokenizer"], grammar, request.max_tokens)
        yield Started(prompt)
        reply, finish, seed = [], "cancelled", None
        try:
            for event in engine.generate(request):
                if isinstance(event, Token):
                    reply.append(event.text)
                elif isinstance(event, Done):
                    finish, seed = event.finish_reason, event.stats.get("seed")
                yield event
        finally:
            # What this replica's KV cache now holds: the next turn of this conversation
            # is sent to it (see shared_turns).
            replica.extras["conversation"] = [*messages, {"role": "assistant", "content": "".join(reply)}]
            extra = {"api": "completions" if raw else "chat", "json": grammar is not None, "finish": finish}
            save_chat_result("".join(reply), engine.pack, request.sampling, seed, max_tokens=request.max_tokens, extra=extra)

    return make


def shared_turns(messages: list[dict[str, str]]):
    """Scores a replica for a request: how many leading messages its last conversation
    shares with this one (the longer, the more of the prompt its KV cache already holds)."""

    def score(replica) -> int:
        held = replica.extras.get("conversation") or ()
        n = 0
        for a, b in zip(held, messages):
            if a != b:
                break
            n += 1
        return n

    return score


def _usage(done: Done) -> dict[str, Any]:
    s = done.stats
    return {
        "prompt_tokens": s["prompt_tokens"],
        "completion_tokens": s["generated_tokens"],
        "total_tokens": s["prompt_tokens"] + s["generated_tokens"],
        "prompt_tokens_details": {"cached_tokens": s.get("reused_tokens", 0)},
    }


async def _respond(request: Request, body, make, chat: bool, messages):
    runner = request.app.state.jobs
    events = runner.events(body.model, make, shared_turns(messages))
    request.state.model = body.model
    first = await anext(events)  # errors before the first byte become a status code
    assert isinstance(first, Started)
    ident = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:24]}"
    created = int(time.time())
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return ClosingStreamingResponse(_sse(events, ident, created, body.model, chat, include_usage, request.state), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
    text, done = [], None
    async with aclosing(events):
        async for event in events:
            if isinstance(event, Token):
                text.append(event.text)
            elif isinstance(event, Done):
                done = event
    request.state.tokens = done.stats["generated_tokens"]
    finish = FINISH.get(done.finish_reason, "stop")
    if chat:
        choice = {"index": 0, "message": {"role": "assistant", "content": "".join(text), "refusal": None}, "finish_reason": finish, "logprobs": None}
    else:
        choice = {"index": 0, "text": "".join(text), "finish_reason": finish, "logprobs": None}
    kind = "chat.completion" if chat else "text_completion"
    return {"id": ident, "object": kind, "created": created, "model": body.model, "choices": [choice], "usage": _usage(done), "system_fingerprint": None}


async def _sse(events, ident: str, created: int, model: str, chat: bool, include_usage: bool, state):
    kind = "chat.completion.chunk" if chat else "text_completion"

    def chunk(choices: list, usage: dict | None = None) -> str:
        payload = {"id": ident, "object": kind, "created": created, "model": model, "choices": choices}
        if usage is not None:
            payload["usage"] = usage
        return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"

    def choice(text: str | None, finish: str | None) -> dict:
        if chat:
            delta = {} if text is None else {"content": text}
            return {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return {"index": 0, "text": text or "", "finish_reason": finish, "logprobs": None}

    async with aclosing(events):
        try:
            if chat:
                yield chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None, "logprobs": None}])
            state.tokens = 0  # counted as they stream: a client that leaves still shows what it got
            async for event in events:
                if isinstance(event, Token) and event.token_id is not None:
                    state.tokens += 1
                if isinstance(event, Token) and event.text:
                    yield chunk([choice(event.text, None)])
                elif isinstance(event, Done):
                    yield chunk([choice(None, FINISH.get(event.finish_reason, "stop"))])
                    if include_usage:
                        yield chunk([], _usage(event))
        except Exception as exc:  # noqa: BLE001 - headers are sent: the error travels in the stream
            _, kind_, code = status_of(exc)
            yield f"data: {json.dumps({'error': {'message': str(exc), 'type': kind_, 'param': None, 'code': code}})}\n\n"
    yield "data: [DONE]\n\n"


class ClosingStreamingResponse(StreamingResponse):
    """Closes its stream when the client leaves. Starlette cancels the sending task but leaves
    the async generator suspended at its ``yield`` until the garbage collector finalizes it,
    which may be never while a reference lingers: the engine job then waited for its turn
    forever and kept its replica. Closing here runs the stream's ``finally`` (job cancelled)
    at once."""

    async def stream_response(self, send) -> None:
        async with aclosing(self.body_iterator):
            await super().stream_response(send)


def register(app: FastAPI) -> None:
    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatBody, request: Request):
        body.refuse_unsupported()
        request.app.state.catalog.entry(body.model, "text")
        messages = [{"role": "system" if m.role == "developer" else m.role, "content": m.text()} for m in body.messages]
        grammar = grammar_for(body.response_format)
        max_tokens = body.max_completion_tokens or body.max_tokens
        return await _respond(request, body, _job(body, messages, False, max_tokens, grammar), chat=True, messages=messages)

    @app.post("/v1/completions")
    async def completions(body: CompletionBody, request: Request):
        body.refuse_unsupported()
        if body.echo:
            from desktop.engines.errors import RequestError

            raise RequestError("echo is not supported.")
        request.app.state.catalog.entry(body.model, "text")
        messages = [{"role": "user", "content": body.prompt_text()}]
        return await _respond(request, body, _job(body, messages, True, body.max_tokens, None), chat=False, messages=messages)
