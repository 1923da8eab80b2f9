"""One reply in flight, and the context policy that decides what of a chat the model sees.

A reply belongs to the conversation it was asked in, not to whatever chat is on screen: the
``ReplyJob`` keeps its conversation id and its text, so switching chats (or closing the
window) never sends a reply to the wrong place or loses it. The policy runs on the worker
thread, before any token: tokenizing a long history is too slow for the GUI thread, and a
message that cannot fit is refused before anything is stored.

Policies (the ones LM Studio users know), chosen per chat:
- ``stop``: send everything; refuse a message that does not fit, with the numbers.
- ``truncate_middle``: keep the system prompt, the first exchange and the latest turns, leave
  out the middle; a last message too long on its own keeps its head and tail.
- ``rolling_window``: keep the system prompt and the latest turns, leave out the oldest.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Callable, Iterator

from desktop.engines.errors import ContextOverflowError
from desktop.engines.text.engine import ChatRequest

CHECKPOINT_TOKENS = 16  # a reply in flight is written to the store this often (crash safety)
POLICIES = {
    "stop": "Stop at the limit",
    "truncate_middle": "Truncate the middle",
    "rolling_window": "Rolling window",
}
CUT_MARK = "\n\n[…]\n\n"


@dataclass(frozen=True)
class Accepted:
    """The prompt fits (after the policy): yielded before the first token."""

    prompt_tokens: int
    context_length: int
    left_out: int = 0  # messages the policy left out
    shortened: bool = False  # the last message lost its middle


def reply_room(context_length: int, max_tokens: int) -> int:
    """Tokens kept free for the reply when a policy trims: the max tokens, at most a quarter."""
    return max(1, min(max_tokens, context_length // 4))


def fit_messages(messages: list[dict], count: Callable[[list[dict]], int], context_length: int, max_tokens: int, policy: str) -> tuple[list[dict], Accepted]:
    """The messages to send under ``policy``; raises ContextOverflowError when none fit."""
    limit = context_length - 2  # the engine needs the prompt plus at least one new token
    tokens = count(messages)
    if tokens <= limit and (policy == "stop" or tokens <= context_length - reply_room(context_length, max_tokens)):
        return messages, Accepted(tokens, context_length)
    if policy == "stop":
        raise ContextOverflowError(
            f"This message needs {tokens:,} tokens with the conversation, but the model's context window holds "
            f"{context_length:,}. Shorten it, delete earlier messages, or choose a context policy that trims "
            "(Truncate the middle or Rolling window)."
        )
    budget = context_length - reply_room(context_length, max_tokens)
    system = [m for m in messages[:1] if m["role"] == "system"]
    body = messages[len(system) :]
    turns = _turns(body[:-1])
    last = body[-1:]
    keep_first = policy == "truncate_middle" and len(turns) > 1
    head = turns[:1] if keep_first else []
    middle = turns[1:] if keep_first else turns

    def build(dropped: int, with_head: bool = True) -> list[dict]:
        kept = (head if with_head else []) + middle[dropped:]
        return system + [m for turn in kept for m in turn] + last

    # fewest turns left out that fit: dropping more never costs more tokens, so bisect
    lo, hi = 0, len(middle)
    while lo < hi:
        mid = (lo + hi) // 2
        if count(build(mid)) <= budget:
            hi = mid
        else:
            lo = mid + 1
    fitted = build(lo)
    left_out = sum(len(t) for t in middle[:lo])
    if count(fitted) > budget and head:
        fitted, left_out = build(len(middle), with_head=False), left_out + sum(len(t) for t in head)
    tokens = count(fitted)
    if tokens <= budget:
        return fitted, Accepted(tokens, context_length, left_out)
    if policy == "truncate_middle":
        shortened = _shorten_middle(system, last[0], count, budget)
        if shortened is not None:
            msgs = system + [shortened]
            return msgs, Accepted(count(msgs), context_length, len(body) - 1, shortened=True)
    raise ContextOverflowError(
        f"Your message alone needs {tokens:,} tokens, but the model's context window holds {context_length:,} "
        f"({budget:,} once room is kept for the reply). Shorten it, or choose Truncate the middle."
    )


def _turns(history: list[dict]) -> list[list[dict]]:
    """Messages grouped into turns, each starting at a user message, so that what is left after
    trimming still alternates the way chat templates expect."""
    turns: list[list[dict]] = []
    for m in history:
        if m["role"] == "user" or not turns:
            turns.append([m])
        else:
            turns[-1].append(m)
    return turns


def _shorten_middle(system: list[dict], message: dict, count, budget: int) -> dict | None:
    text = message["content"]
    lo, hi = 0, len(text)  # characters kept in all: the most that fit
    best = None
    while lo <= hi:
        keep = (lo + hi) // 2
        cut = dict(message, content=text[: keep // 2] + CUT_MARK + text[len(text) - (keep - keep // 2) :])
        if count(system + [cut]) <= budget:
            best, lo = cut, keep + 1
        else:
            hi = keep - 1
    return best


def reply_stream(engine, request: ChatRequest, policy: str) -> Iterator:
    """What the worker runs: apply the policy off the GUI thread, then the engine's stream."""
    messages, accepted = fit_messages(request.messages, engine.count_tokens, engine.context_length, request.max_tokens, policy)
    yield accepted
    # the same request when nothing was cut: it was checked already and is not checked again
    yield from engine.generate(request if messages == request.messages else replace(request, messages=messages))


def count_stream(engine, messages: list[dict]) -> Iterator[int]:
    """What the context meter runs on the worker thread."""
    yield engine.count_tokens(messages) if messages else 0


class ReplyJob:
    """A reply being written for one conversation (new, or regenerating ``replaces``)."""

    def __init__(self, conversation_id: int, user_text: str | None, replaces: int | None = None):
        self.conversation_id = conversation_id
        self.user_text = user_text  # None when regenerating: the user message is stored already
        self.replaces = replaces
        self.text = ""
        self.tokens = 0
        self.stats: dict = {}
        self.accepted: Accepted | None = None
        self.stored = False  # set once the reply is in the store (or given up): never twice
        self.bubble = None  # the transcript bubble, while this conversation is on screen
        self.message_id: int | None = None  # its row in the store, once checkpointed
        self._t_first: float | None = None

    def add(self, piece: str) -> None:
        if self._t_first is None:
            self._t_first = time.perf_counter()
        self.tokens += 1
        self.text += piece
        if self.bubble is not None:
            self.bubble.append(piece)

    def tokens_per_s(self) -> float:
        if self._t_first is None or self.tokens < 2:
            return 0.0
        elapsed = time.perf_counter() - self._t_first
        return (self.tokens - 1) / elapsed if elapsed > 0 else 0.0

    def live_status(self) -> str:
        return f"{self.tokens} tokens · {self.tokens_per_s():.1f} tok/s"
