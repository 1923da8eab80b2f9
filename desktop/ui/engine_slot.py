"""An engine held by a studio: loaded in the background, one job at a time.

Studios ask the slot to ``load(name)`` and to ``run(request)``; both go through the one
GeneratorWorker, so loading never blocks the window and every job can be cancelled.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

from PySide6.QtCore import QObject, Signal

from desktop.engines.errors import RequestError
from desktop.engines.events import Progress
from desktop.workers import GeneratorWorker, Outcome, start


class EngineSlot(QObject):
    loading = Signal(str)  # pack name
    loaded = Signal(object)  # the engine
    load_failed = Signal(object)  # error
    busy_changed = Signal(bool)

    def __init__(self, modality: str, runtime_settings: Callable[[], Any], notifier, parent=None, *, library=None):
        super().__init__(parent)
        self.modality = modality
        # the studios pass the app's library (``ctx.library``): a pack is loaded from the same
        # folder the pickers list, not from wherever a fresh Library() would look
        self.library = library
        self._runtime_settings = runtime_settings
        self.notifier = notifier
        self.engine = None
        self.name: str | None = None
        self._loader: GeneratorWorker | None = None
        self.loading_name: str | None = None  # the pack of the load in flight
        self._load_serial = 0  # which load() is the latest
        self.job: GeneratorWorker | None = None

    # -- loading -------------------------------------------------------------------
    def load(self, name: str) -> GeneratorWorker | None:
        """Make ``name`` the engine. A no-op when it already is or is on its way; any other
        load in flight is superseded (the user's last choice wins, whatever finishes first)."""
        if self._loader is not None and self.loading_name == name:
            return None
        if self._loader is not None:
            self._loader.abort()  # its engine, if it still arrives, is dropped
        self._load_serial += 1
        self._loader, self.loading_name = None, None
        if name == self.name and self.engine is not None:
            return None
        if self.job is not None:
            self.job.abort()  # the old engine's job cannot outlive the engine
        serial = self._load_serial
        settings = self._runtime_settings()
        self.loading.emit(name)
        worker = GeneratorWorker(_open_engine, name, settings, self.library)
        worker.signals.yielded.connect(lambda ev: self._on_load_event(name, ev, serial))
        worker.signals.errored.connect(lambda exc: self._on_load_error(exc, serial))
        # the window's status bar shows a busy indicator while any engine loads
        key = f"engine:{self.modality}:{name}"
        self.notifier.begin(key, f"Loading {name}…")
        worker.signals.finished.connect(lambda: self._load_finished(key, serial))
        self._loader, self.loading_name = worker, name
        return start(worker)

    def _load_finished(self, key: str, serial: int) -> None:
        self.notifier.end(key)
        if serial == self._load_serial:
            self._loader, self.loading_name = None, None

    def _on_load_event(self, name: str, ev, serial: int) -> None:
        if isinstance(ev, Progress):
            return
        if serial != self._load_serial:
            # loads finish in any order; only the last one asked for becomes the engine
            ev.close()
            return
        old, self.engine, self.name = self.engine, ev, name
        if old is not None:
            old.close()
        if ev.provider.fell_back:
            self.notifier.warning(ev.provider.message())
        self.loaded.emit(ev)

    def _on_load_error(self, exc, serial: int) -> None:
        if serial != self._load_serial:
            return  # a superseded load: the user has moved on
        self.notifier.error(exc)
        self.load_failed.emit(exc)

    # -- jobs ------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.job is not None

    def run(
        self, request, on_event: Callable[[Any], None], on_end: Callable[[Outcome], None] | None = None, generate: Callable[[Any], Iterator[Any]] | None = None
    ) -> GeneratorWorker | None:
        """Start ``engine.generate(request)`` (or ``generate(request)``, a studio's own stream
        around the engine's); ``on_end`` gets the worker's Outcome (a failure was already
        shown to the person through the notifier)."""
        if self.engine is None:
            self.notifier.error(RequestError(f"No {self.modality} model is loaded yet."))
            return None
        if self.job is not None:
            self.notifier.error(RequestError("A job is already running; stop it first."))
            return None
        try:
            request.validate()  # fail fast, on the GUI thread, with the user's words
        except RequestError as exc:
            self.notifier.error(exc)
            return None
        worker = GeneratorWorker(generate or self.engine.generate, request)
        worker.signals.yielded.connect(on_event)
        worker.signals.ended.connect(lambda outcome: self._job_finished(outcome, on_end))
        self.job = worker
        self.busy_changed.emit(True)
        return start(worker)

    def stop(self) -> None:
        if self.job is not None:
            self.job.abort()

    def _job_finished(self, outcome: Outcome, on_end) -> None:
        if outcome.failed:
            self.notifier.error(outcome.error)
        self.job = None
        self.busy_changed.emit(False)
        if on_end:
            on_end(outcome)

    def close(self) -> None:
        if self._loader is not None:
            self._loader.abort()
        self._load_serial += 1  # an engine still loading is closed when it arrives, never kept
        self.stop()
        if self.engine is not None:
            self.engine.close()
            self.engine = None


def _open_engine(name: str, settings, library=None) -> Iterator[Any]:
    from desktop.engines.base import open_engine
    from desktop.engines.packs.library import Library
    from desktop.offline import disable_runtime_telemetry

    disable_runtime_telemetry()  # deferred from start-up; before the first session exists
    yield Progress(f"Verifying {name}", 0.1)
    pack = (library or Library()).load(name)
    yield Progress(f"Loading {name}", 0.5)
    yield open_engine(pack, settings)
