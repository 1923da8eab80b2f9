"""Classes found by a pack's ``architecture``: image pipelines and voices register the same way.

A package of implementations holds one ``ArchitectureRegistry``; each implementation module
decorates its class with ``registry.register("arch", ...)``. The package's modules are imported
on the first lookup, so adding an implementation means adding a module, nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from typing import Callable


class ArchitectureRegistry:
    def __init__(self, package: str, path: list[str]):
        self._package, self._path = package, path
        self._classes: dict[str, type] = {}
        self._loaded = False
        # Two studios load their first pack on two worker threads at once (Speech and Chat's
        # read-aloud): the second lookup must wait until every module has registered, not
        # see a half-filled registry and refuse a known architecture.
        self._lock = threading.RLock()

    def register(self, *architectures: str) -> Callable[[type], type]:
        """Class decorator: serve packs whose manifest ``architecture`` is one of these."""
        if not architectures:
            raise ValueError("register needs at least one architecture name")

        def deco(cls: type) -> type:
            for arch in architectures:
                self._classes[arch] = cls
            cls.architectures = tuple(architectures)
            return cls

        return deco

    def _load_all(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            for info in pkgutil.iter_modules(self._path):
                if not info.name.startswith("_"):
                    importlib.import_module(f"{self._package}.{info.name}")
            self._loaded = True

    def known(self) -> list[str]:
        self._load_all()
        return sorted(self._classes)

    def get(self, architecture: str) -> type | None:
        self._load_all()
        return self._classes.get(architecture)
