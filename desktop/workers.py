"""The one bridge from engines to Qt: a generator worker on the global thread pool.

Modelled on napari/superqt's ``GeneratorWorker``: the worker iterates any engine's
``generate()`` off the GUI thread and emits each event as a signal, which Qt queues to
the receivers' (GUI) thread, so widgets are only ever touched there. ``abort()`` sets a
flag the loop checks between two events and closes the generator: no thread is ever
killed, and the engine's ``finally`` blocks run.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Literal

from PySide6.QtCore import QCoreApplication, QObject, QRunnable, QThread, QThreadPool, Signal

from desktop.engines.errors import AtelierError, EngineError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """How a job ended, decided once by the worker (callers never rebuild it from signals).

    ``status`` is "done" (the generator ran out), "stopped" (``abort()`` took effect) or
    "failed" (``error`` says why, in words for a person)."""

    status: Literal["done", "stopped", "failed"]
    error: AtelierError | None = None

    @property
    def done(self) -> bool:
        return self.status == "done"

    @property
    def stopped(self) -> bool:
        return self.status == "stopped"

    @property
    def failed(self) -> bool:
        return self.status == "failed"


DONE = Outcome("done")
STOPPED = Outcome("stopped")


class WorkerSignals(QObject):
    started = Signal()
    yielded = Signal(object)  # one engine event
    errored = Signal(object)  # an AtelierError (unexpected exceptions are wrapped)
    aborted = Signal()
    ended = Signal(object)  # the Outcome; after yielded/errored/aborted, just before finished
    finished = Signal()  # always last


class GeneratorWorker(QRunnable):
    """Runs ``func(*args, **kwargs)`` - which must return an iterator - on a pool thread."""

    def __init__(self, func: Callable[..., Iterator[Any]], *args: Any, **kwargs: Any):
        super().__init__()
        self.setAutoDelete(False)  # the owner keeps a reference until ``finished``
        self._func, self._args, self._kwargs = func, args, kwargs
        self._abort = threading.Event()
        self.signals = WorkerSignals(_gui_parent())

    def abort(self) -> None:
        """Ask the job to stop; takes effect before the next event is produced."""
        self._abort.set()

    @property
    def abort_requested(self) -> bool:
        return self._abort.is_set()

    def run(self) -> None:  # called on a pool thread
        self.signals.started.emit()
        gen = None
        outcome = DONE
        try:
            gen = self._func(*self._args, **self._kwargs)
            for event in gen:
                if self._abort.is_set():
                    break
                self.signals.yielded.emit(event)
                if self._abort.is_set():
                    break
            if self._abort.is_set():
                outcome = STOPPED
                self.signals.aborted.emit()
        except AtelierError as exc:
            outcome = Outcome("failed", exc)
        except MemoryError:
            outcome = Outcome("failed", EngineError("Ran out of memory. Close other apps or choose a smaller model or size."))
        except Exception as exc:  # noqa: BLE001 - never let a bug reach the user as a traceback
            log.exception("worker job failed")
            outcome = Outcome("failed", EngineError(f"Something went wrong: {exc}. Details are in the log."))
        finally:
            if outcome.failed:
                self.signals.errored.emit(outcome.error)
            if gen is not None and hasattr(gen, "close"):
                try:
                    gen.close()  # runs the engine's cleanup (finally blocks)
                except Exception:  # noqa: BLE001
                    log.exception("closing generator failed")
            self.signals.ended.emit(outcome)
            self.signals.finished.emit()


def start(worker: GeneratorWorker, pool: QThreadPool | None = None) -> GeneratorWorker:
    # The pool gets the bound ``run`` (PySide wraps it in its own QRunnable), not the
    # worker itself: PySide6 keeps every started Python QRunnable subclass alive forever
    # (6.11: ~8 KB per job, tests/desktop/test_worker_cycles.py), and 6.12.0 instead
    # over-releases None on each run() (tests/desktop/test_qt_refcounts.py).
    if worker.signals.parent() is not None:
        # connected last, so queued after every other handler of ``finished``
        worker.signals.finished.connect(worker.signals.deleteLater)
    (pool or QThreadPool.globalInstance()).start(worker.run)
    return worker


def _gui_parent() -> QObject | None:
    """The application object, when called on its thread.

    Parenting the signals object to it hands its lifetime to Qt: it is deleted with
    ``deleteLater`` on the GUI thread once ``finished`` has been delivered. Owned by Python
    instead, it died wherever the last reference went - often the pool thread that just
    ran the job, while the GUI thread was delivering its queued events (a segfault seen
    when a studio switched models during a load)."""
    app = QCoreApplication.instance()
    if app is not None and QThread.currentThread() is app.thread():
        return app
    return None
