"""Resident engines for the API server: load on first use, unload the least recently used
idle one when the memory budget is reached, and one fair queue per engine.

An engine is not thread-safe, so each loaded pack has a :class:`Slot` whose FIFO lock
(asyncio.Lock wakes waiters in arrival order) admits one job at a time; a bounded number
may wait, the next one is refused (429) rather than queued without end. Different packs
have different slots, so a text reply and an image can run side by side.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from desktop.engines.errors import ResourceError

log = logging.getLogger(__name__)


class QueueFullError(ResourceError):
    """Too many requests already wait for this model (HTTP 429)."""


class BusyError(ResourceError):
    """No room to load a model now: the memory budget is held by busy models (HTTP 503)."""


@dataclass
class Slot:
    name: str
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    waiting: int = 0
    engine: Any = None
    bytes: int = 0
    last_used: float = 0.0
    extras: dict[str, Any] = field(default_factory=dict)  # per-engine caches (grammar tokenizer)
    active: bool = False  # a job runs on the engine now: never unloaded under it


class ModelPool:
    def __init__(self, library, budget_bytes: int, max_queue: int = 8, open_engine=None):
        from desktop.engines.base import open_engine as default_open

        self.library = library
        self.budget_bytes = budget_bytes
        self.max_queue = max_queue
        self._open_engine = open_engine or default_open
        self._slots: dict[str, Slot] = {}
        self._lock = threading.Lock()  # guards residency: engine, bytes, active
        self._loading = threading.Lock()  # one load at a time

    def slot(self, name: str) -> Slot:
        if name not in self._slots:
            self._slots[name] = Slot(name)
        return self._slots[name]

    async def acquire(self, name: str) -> Slot:
        """Wait for this model's turn (FIFO); QueueFullError when too many already wait."""
        slot = self.slot(name)
        if slot.lock.locked() and slot.waiting >= self.max_queue:
            raise QueueFullError(f"{slot.waiting} requests already wait for '{name}'; try again shortly.")
        slot.waiting += 1
        try:
            await slot.lock.acquire()
        finally:
            slot.waiting -= 1
        return slot

    def ensure_loaded(self, slot: Slot):
        """Load ``slot``'s engine if needed (called on a worker thread, holding the slot).

        Bookkeeping is under a short lock; the load itself is not, so jobs on models
        already resident start while another model loads. Loads run one at a time: each
        one's room is measured against what the others already reserved."""
        from desktop.engines.memory import estimated_load_bytes

        with self._lock:
            slot.active = True
            slot.last_used = time.monotonic()
            if slot.engine is not None:
                return slot.engine
        with self._loading:
            pack = self.library.load(slot.name)
            need = estimated_load_bytes(pack)
            with self._lock:
                self._make_room(need, keep=slot)
                slot.bytes = need  # reserved while loading
            try:
                engine = self._open_engine(pack)
            except BaseException:
                with self._lock:
                    slot.bytes = 0
                raise
            with self._lock:
                slot.engine = engine
            log.info("loaded %s (%d MB)", slot.name, need >> 20)
            return engine

    def finished(self, slot: Slot) -> None:
        """The job on ``slot`` stopped (worker thread): its engine may be unloaded again."""
        with self._lock:
            slot.active = False
            slot.last_used = time.monotonic()

    def _make_room(self, need: int, keep: Slot) -> None:
        resident = [s for s in self._slots.values() if s.bytes and s is not keep]
        used = sum(s.bytes for s in resident)
        for victim in sorted((s for s in resident if not s.active), key=lambda s: s.last_used):
            if used + need <= self.budget_bytes:
                break
            used -= victim.bytes
            self.unload(victim)
        if used + need > self.budget_bytes and used:
            raise BusyError(
                f"Loading '{keep.name}' needs about {need >> 20} MB but the server's memory budget "
                f"({self.budget_bytes >> 20} MB) is held by models in use; try again shortly."
            )

    def unload(self, slot: Slot) -> None:
        engine, slot.engine, slot.bytes = slot.engine, None, 0
        slot.extras.clear()
        if engine is not None:
            engine.close()
            log.info("unloaded %s", slot.name)

    def resident(self) -> list[str]:
        return [s.name for s in self._slots.values() if s.engine is not None]

    def close(self) -> None:
        """Unload every idle engine (shutdown); one still running a job is left to finish."""
        with self._lock:
            for slot in self._slots.values():
                if not slot.active:
                    self.unload(slot)
