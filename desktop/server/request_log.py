"""The live request log: one row per HTTP request the server answered.

An ASGI middleware (outermost, so it also sees 401 and 413 answers) times each request
and records its status once the last byte of the reply is sent - for a streamed reply
that is the end of the stream, so the duration and token count are the whole reply's.
Routes add what only they know (the model, the tokens generated) to the request's
``state``. The log is bounded; listeners are called on the server's thread, so the
Settings panel hands rows to the GUI thread with a queued Qt signal.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RequestRow:
    when: float  # time.time() at arrival
    method: str
    path: str
    model: str | None
    status: int
    duration_s: float
    tokens: int | None  # generated tokens (text endpoints)


class RequestLog:
    def __init__(self, limit: int = 200):
        self.rows: collections.deque[RequestRow] = collections.deque(maxlen=limit)
        self._listeners: list[Callable[[RequestRow], None]] = []
        self._lock = threading.Lock()

    def subscribe(self, listener: Callable[[RequestRow], None]) -> None:
        with self._lock:
            self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[RequestRow], None]) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def add(self, row: RequestRow) -> None:
        with self._lock:
            self.rows.append(row)
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(row)
            except Exception:  # noqa: BLE001 - a broken viewer must not break serving
                log.warning("request log listener failed", exc_info=True)


class RequestLogMiddleware:
    def __init__(self, app, request_log: RequestLog):
        self.app, self.log = app, request_log

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        state = scope.setdefault("state", {})  # what Request.state reads and writes
        started, arrived = time.perf_counter(), time.time()
        status, logged = 0, False

        def record() -> None:
            nonlocal logged
            if not logged:
                logged = True
                self.log.add(RequestRow(arrived, scope.get("method", ""), scope.get("path", ""), state.get("model"),
                                        status or 499, round(time.perf_counter() - started, 3), state.get("tokens")))

        async def watched_send(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                record()

        try:
            await self.app(scope, receive, watched_send)
        finally:
            record()  # a client that left mid-stream still gets its row (status as sent)
