"""Engine jobs on worker threads, consumed as async iterators by the request handlers.

The event loop never runs an engine: a job holds its model's slot, runs the engine's
generator on the thread pool and hands each event over one at a time. The worker makes
the next event only after the handler has taken the previous one (one event of
look-ahead), so a client that goes away stops the engine within one token: the handler's
``finally`` sets ``cancel`` and the worker stops before asking for another event.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Iterator

from .pool import ModelPool, Replica, Slot

_END = object()


@dataclass
class JobRecord:
    """What a job did; the server keeps the last few (tests and the bench read them)."""

    model: str
    produced: int = 0  # events the engine yielded
    delivered: int = 0  # events the handler took
    cancelled: bool = False
    finished: bool = False


class JobRunner:
    def __init__(self, pool: ModelPool, executor, history: int = 32):
        self.pool = pool
        self.executor = executor
        self.records: collections.deque[JobRecord] = collections.deque(maxlen=history)

    async def events(self, model: str, make: Callable[[Any, Replica], Iterator[Any]],
                     affinity: Callable[[Replica], int] | None = None) -> AsyncIterator[Any]:
        """Yield the events of ``make(engine, replica)``, run on a worker thread once this
        model's turn comes (429 when its queue is full). ``affinity`` scores the idle
        replicas for this job (the one holding its conversation's KV cache scores highest)."""
        slot = await self.pool.acquire(model)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        turn = threading.Semaphore(1)  # the worker may make one event ahead of the handler
        cancel = threading.Event()
        record = JobRecord(model)
        self.records.append(record)

        def post(item) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is gone (server stopping): nobody listens
                cancel.set()

        def work() -> None:
            gen = replica = None
            try:
                replica = self.pool.checkout(slot, affinity)
                gen = make(replica.engine, replica)
                while True:
                    turn.acquire()
                    if cancel.is_set():
                        break
                    try:
                        event = next(gen)
                    except StopIteration:
                        break
                    record.produced += 1
                    post(event)
            except BaseException as exc:  # noqa: BLE001 - handed to the handler, which maps it
                post(exc)
            finally:
                if gen is not None:
                    gen.close()
                record.finished = True
                if replica is not None:
                    self.pool.finished(slot, replica)
                try:
                    loop.call_soon_threadsafe(_release, self.pool, slot, queue)
                except RuntimeError:
                    pass

        try:
            self.executor.submit(work)
        except BaseException:
            self.pool.release(slot)
            raise
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                record.delivered += 1
                yield item
                turn.release()
        finally:
            if not record.finished:
                record.cancelled = True
            cancel.set()
            turn.release()  # wake a worker waiting for its turn so it sees the cancel


def _release(pool: ModelPool, slot: Slot, queue: asyncio.Queue) -> None:
    pool.release(slot)
    queue.put_nowait(_END)
