"""Storing the Image studio's results on the job's worker thread.

Encoding and writing a PNG takes 0.1 s at 128 px and up to a second at 1024 px; done on
the GUI thread it froze the window once per image. The job's stream is wrapped so each
image is stored, audited and thumbnailed where it was made; the GUI thread only shows it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from desktop.engines.events import ImageResult
from desktop.outputs.image_store import ImageStore
from desktop.outputs.saving import save_image_result
from desktop.ui.image_gallery import thumbnail_image


@dataclass(frozen=True, eq=False)  # compared by identity: it holds arrays
class SavedImage:
    """An ImageResult already written to the store by the job (worker thread)."""

    image: np.ndarray
    metadata: dict
    path: Path
    thumb: np.ndarray  # the gallery thumbnail (small RGB), made on the worker thread


class SavingJob:
    """Wraps the engine's stream: each finished image is stored, audited and thumbnailed
    on the worker thread. ``unshown`` holds the saved images the GUI has not taken yet: a
    job stopped between a save and its delivery drops that event, and the studio adds
    those from here when the job ends, so the gallery always matches the store."""

    def __init__(self, engine, store: ImageStore):
        self.engine, self.store = engine, store
        self._lock = threading.Lock()
        self._unshown: list[SavedImage] = []

    def __call__(self, request) -> Iterator[Any]:
        engine = self.engine
        for ev in engine.generate(request):
            if isinstance(ev, ImageResult):
                path = save_image_result(ev.image, ev.metadata, engine.pack, engine.provider.used, store=self.store)
                ev = SavedImage(ev.image, ev.metadata, path, thumbnail_image(ev.image))
                with self._lock:
                    self._unshown.append(ev)
            yield ev

    def take(self, saved: SavedImage) -> bool:
        """Claim ``saved`` for showing; False when it was already shown."""
        with self._lock:
            if saved in self._unshown:
                self._unshown.remove(saved)
                return True
            return False

    def take_all(self) -> list[SavedImage]:
        with self._lock:
            rest, self._unshown = self._unshown, []
            return rest
