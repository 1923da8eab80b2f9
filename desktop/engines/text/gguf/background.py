"""A GGUF import as a stream of events, for a generator worker: progress while converting,
and a Cancel that stops the conversion between layers rather than after it.

The conversion itself is one blocking call (the importer registry's ``import_path``: staging
folder, conversion, verification, rename), so it runs on its own thread and reports each
layer through :data:`PROGRESS`; this generator relays those reports. Closing the generator
(the worker's Cancel) makes the next report raise :class:`ConversionCancelled`, the staging
folder is removed by the importer as for any failure, and nothing reaches the library.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from pathlib import Path
from typing import Callable, Iterator

from desktop.engines.events import Progress
from desktop.engines.text.gguf.reader import ConversionCancelled

# set by whoever runs a conversion and wants per-layer reports: called with (done, total)
PROGRESS: contextvars.ContextVar[Callable[[int, int], None] | None] = contextvars.ContextVar("gguf_progress", default=None)
_POLL_S = 0.1  # how often the relay looks for the thread's end when no report comes


def import_gguf_events(path: Path, library, name: str | None = None) -> Iterator:
    """Yields Progress events, then the imported Pack; raises what the import raised."""
    from desktop.engines.packs.importers import import_path

    reports: queue.Queue = queue.Queue()
    cancel = threading.Event()
    result: dict = {}

    def report(done: int, total: int) -> None:
        if cancel.is_set():
            raise ConversionCancelled(f"The import of '{path.name}' was cancelled; nothing was added to the library.")
        reports.put((done, total))

    def run() -> None:
        PROGRESS.set(report)
        try:
            result["pack"] = import_path(path, library, name)
        except BaseException as exc:  # noqa: BLE001 - handed to the relaying generator
            result["error"] = exc

    thread = threading.Thread(target=run, name="gguf-import", daemon=True)
    yield Progress(f"Converting {path.name}…", 0.0)
    thread.start()
    try:
        while thread.is_alive():
            try:
                done, total = reports.get(timeout=_POLL_S)
            except queue.Empty:
                continue
            yield Progress(f"Converting {path.name}: layer {done} of {total}…", done / max(total, 1))
    except GeneratorExit:
        cancel.set()
        thread.join()
        pack = result.get("pack")
        if pack is not None:  # finished just as Cancel came: the person still said no
            import shutil

            shutil.rmtree(pack.root, ignore_errors=True)
        raise
    thread.join()
    if "error" in result:
        raise result["error"]
    yield result["pack"]
