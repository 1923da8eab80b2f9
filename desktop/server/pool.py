"""Resident engines for the API server: load on first use, unload the least recently used
idle one when the memory budget is reached, and one fair queue per model.

An engine is not thread-safe, so a job runs on one engine at a time. Each model has a
:class:`Slot` that admits up to ``slot.limit`` jobs at once, in arrival order; a bounded
number may wait, the next one is refused (429) rather than queued without end.

A text model may have several *replicas* (engines of the same pack, each with its own
KV cache), so several clients stream from one model at once instead of queueing behind
one reply. Replicas are opened lazily, only when every existing one is busy, and each
costs its full estimated memory: a first replica may unload idle models to make room,
an extra one only uses room that is free (it is an optimisation, and evicting a model
someone is about to use again would cost more than it gains). When there is no room for
another replica, the job waits for one of the model's own replicas to finish. Each job
picks the idle replica whose last conversation shares the longest prefix with its own,
so a client's next turn finds its KV cache as in the Chat studio.

Different models have different slots, so a text reply and an image run side by side.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from desktop.engines.errors import ResourceError

log = logging.getLogger(__name__)


class QueueFullError(ResourceError):
    """Too many requests already wait for this model (HTTP 429)."""


class BusyError(ResourceError):
    """No room to load a model now: the memory budget is held by busy models (HTTP 503)."""


@dataclass(eq=False)
class Replica:
    engine: Any = None
    bytes: int = 0
    last_used: float = 0.0
    active: bool = False  # a job runs on it (or it is loading): never unloaded under it
    extras: dict[str, Any] = field(default_factory=dict)  # per-engine caches (grammar tokenizer, last conversation)


@dataclass(eq=False)
class Slot:
    name: str
    limit: int = 1  # jobs admitted at once (= replicas it may have)
    running: int = 0
    waiters: collections.deque = field(default_factory=collections.deque)  # futures, arrival order
    replicas: list[Replica] = field(default_factory=list)
    loading: bool = False  # a replica is being opened (on its own thread)
    load_error: BaseException | None = None  # why the last load failed, for a waiting job
    no_room: bool = False  # the budget had no room for another replica (cleared when memory is freed)

    @property
    def waiting(self) -> int:
        return sum(1 for f in self.waiters if not f.done())

    @property
    def active(self) -> bool:
        return any(r.active for r in self.replicas)

    @property
    def engine(self):
        """An engine of this model (the first replica's), or None when none is loaded."""
        return next((r.engine for r in self.replicas if r.engine is not None), None)

    @property
    def bytes(self) -> int:
        return sum(r.bytes for r in self.replicas)


class ModelPool:
    def __init__(self, library, budget_bytes: int, max_queue: int = 8, open_engine=None, text_streams: int = 1):
        from desktop.engines.base import open_engine as default_open

        self.library = library
        self.budget_bytes = budget_bytes
        self.max_queue = max_queue
        self.text_streams = max(1, text_streams)
        self._open_engine = open_engine or default_open
        self._slots: dict[str, Slot] = {}
        self._lock = threading.Lock()  # guards residency: replicas, engine, bytes, active
        self._freed = threading.Condition(self._lock)  # a replica became idle
        self._loading = threading.Lock()  # one load at a time

    def slot(self, name: str) -> Slot:
        if name not in self._slots:
            self._slots[name] = Slot(name, limit=self._limit_for(name))
        return self._slots[name]

    def _limit_for(self, name: str) -> int:
        if self.text_streams == 1 or self.library is None:
            return 1
        try:
            modality = self.library.entry(name).manifest.get("modality")
        except Exception:  # noqa: BLE001 - an unknown name fails later with its own 404
            return 1
        return self.text_streams if modality == "text" else 1

    def adopt(self, name: str, engine) -> Slot:
        """Hold an engine opened elsewhere (Ray Serve's multiplexed loader) as ``name``'s replica."""
        slot = self.slot(name)
        slot.replicas.append(Replica(engine, last_used=time.monotonic()))
        return slot

    # -- admission (event-loop thread) -----------------------------------------------------

    async def acquire(self, name: str) -> Slot:
        """Wait for a turn on this model (FIFO); QueueFullError when too many already wait."""
        slot = self.slot(name)
        if slot.running < slot.limit and not slot.waiting:
            slot.running += 1
            return slot
        if slot.waiting >= self.max_queue:
            raise QueueFullError(f"{slot.waiting} requests already wait for '{name}'; try again shortly.")
        turn = asyncio.get_running_loop().create_future()
        slot.waiters.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.release(slot)  # the turn came just as the client left: pass it on
            else:
                try:
                    slot.waiters.remove(turn)
                except ValueError:
                    pass
            raise
        return slot

    def release(self, slot: Slot) -> None:
        """A job on ``slot`` ended: hand its turn to the longest waiter (event-loop thread)."""
        while slot.waiters:
            turn = slot.waiters.popleft()
            if not turn.done():
                turn.set_result(None)  # the turn moves on; ``running`` stays the same
                return
        slot.running -= 1

    # -- residency (worker threads) --------------------------------------------------------

    def checkout(self, slot: Slot, affinity: Callable[[Replica], int] | None = None) -> Replica:
        """An idle replica of ``slot`` for this job, opening another one if every one is busy.

        A job is not tied to the replica it starts loading: whichever replica comes free
        first - one finishing its reply or the new one - goes to the next waiting job, so
        a slow load never holds a client while another replica is idle. One load per model
        at a time; no new replica once there was no room for one (until memory is freed)."""
        while True:
            with self._freed:
                replica = self._take_idle(slot, affinity)
                if replica is not None:
                    return replica
                if slot.load_error is not None and not slot.loading and not slot.replicas:
                    error, slot.load_error = slot.load_error, None
                    raise error  # this model cannot be opened now (the memory refusal, a bad pack)
                if not slot.loading and (not slot.replicas or (not slot.no_room and len(slot.replicas) < slot.limit)):
                    slot.loading = True
                    threading.Thread(target=self._load_in_background, args=(slot,), name="atelier-load", daemon=True).start()
                self._freed.wait()

    def _load_in_background(self, slot: Slot) -> None:
        error = None
        try:
            self._add_replica(slot)
        except BaseException as exc:  # noqa: BLE001 - handed to a waiting job below
            error = exc
        with self._freed:
            if error is not None:
                if slot.replicas:  # an extra replica failed: keep serving on the ones there are
                    log.warning("could not open another replica of %s: %s", slot.name, error)
                    slot.no_room = True
                else:
                    slot.load_error = error
            slot.loading = False
            self._freed.notify_all()

    def _add_replica(self, slot: Slot) -> None:
        with self._loading:  # loads are booked one at a time: each sees what the others reserved
            pack = self.library.load(slot.name)
            replica = self._reserve(slot, pack)
        if replica is None:
            slot.no_room = True
            return
        self._open(slot, replica, pack)

    def ensure_loaded(self, slot: Slot):
        """The engine for a job on ``slot`` (the checked-out replica's)."""
        return self.checkout(slot).engine

    def _take_idle(self, slot: Slot, affinity) -> Replica | None:
        idle = [r for r in slot.replicas if r.engine is not None and not r.active]
        if not idle:
            return None
        # Ties go to the least recently used replica: its conversation is the least likely
        # to continue, so a newcomer does not overwrite the cache of one in progress.
        best = max(idle, key=lambda r: (affinity(r) if affinity else 0, -r.last_used))
        best.active, best.last_used = True, time.monotonic()
        return best

    def _reserve(self, slot: Slot, pack) -> Replica | None:
        from desktop.engines.memory import estimated_load_bytes

        need = estimated_load_bytes(pack)
        with self._lock:
            first = not slot.replicas
            if first:
                self._make_room(need, keep=slot)
            elif self._used() + need > self.budget_bytes:
                log.info("no room for another replica of %s; its jobs share the loaded ones", slot.name)
                return None
            replica = Replica(bytes=need, active=True, last_used=time.monotonic())  # reserved while loading
            slot.replicas.append(replica)
            return replica

    def _open(self, slot: Slot, replica: Replica, pack) -> None:
        try:
            engine = self._open_engine(pack, self._settings(slot))
        except BaseException:
            with self._freed:
                slot.replicas.remove(replica)
                self._freed.notify_all()  # a job waiting for this model's replicas re-checks
            raise
        with self._freed:
            replica.engine, replica.active = engine, False  # idle: the next waiting job takes it
            self._freed.notify_all()
        log.info("loaded %s replica %d (%d MB)", slot.name, len(slot.replicas), replica.bytes >> 20)

    def _settings(self, slot: Slot):
        """Runtime settings for one replica: with several, the cores are shared out so
        that replicas decoding at once do not fight over the same cores."""
        from desktop.engines.providers import RuntimeSettings

        settings = RuntimeSettings.from_env()
        if slot.limit > 1 and not settings.threads:
            return dataclasses.replace(settings, threads=max(1, (os.cpu_count() or 1) // slot.limit))
        return settings

    def finished(self, slot: Slot, replica: Replica | None = None) -> None:
        """The job on ``replica`` stopped (worker thread): it may serve or be unloaded again."""
        with self._freed:
            for r in [replica] if replica is not None else slot.replicas:
                r.active = False
                r.last_used = time.monotonic()
            self._freed.notify_all()

    def _used(self) -> int:
        return sum(s.bytes for s in self._slots.values())

    def _make_room(self, need: int, keep: Slot) -> None:
        resident = [(s, r) for s in self._slots.values() if s is not keep for r in s.replicas if r.bytes]
        used = sum(r.bytes for _, r in resident)
        for s, victim in sorted(((s, r) for s, r in resident if not r.active), key=lambda sr: sr[1].last_used):
            if used + need <= self.budget_bytes:
                break
            used -= victim.bytes
            self._unload(s, victim)
        if used + need > self.budget_bytes and used:
            raise BusyError(
                f"Loading '{keep.name}' needs about {need >> 20} MB but the server's memory budget "
                f"({self.budget_bytes >> 20} MB) is held by models in use; try again shortly."
            )

    def _unload(self, slot: Slot, replica: Replica) -> None:
        """Close ``replica`` (holding the pool's lock)."""
        slot.replicas.remove(replica)
        for s in self._slots.values():
            s.no_room = False  # memory was freed: another replica may fit now
        self._freed.notify_all()  # a job waiting for this model's replicas must load one again
        if replica.engine is not None:
            replica.engine.close()
            log.info("unloaded a replica of %s", slot.name)

    def unload(self, slot: Slot) -> None:
        with self._lock:
            for replica in list(slot.replicas):
                self._unload(slot, replica)

    def resident(self) -> list[str]:
        return [s.name for s in self._slots.values() if s.engine is not None]

    def close(self) -> None:
        """Unload every idle engine (shutdown); one still running a job is left to finish."""
        with self._lock:
            for slot in self._slots.values():
                for replica in [r for r in slot.replicas if not r.active]:
                    self._unload(slot, replica)
