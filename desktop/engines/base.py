"""The engine seam: ``load(pack)``, ``generate(request) -> Iterator[event]``, ``close()``.

Every modality implements this shape so one worker can drive any of them and cancel is
simply "stop iterating" (the worker closes the generator between two events).
"""

from __future__ import annotations

from typing import Any, Iterator, Protocol

from .packs import Pack
from .providers import ProviderReport, RuntimeSettings


class Request(Protocol):
    def validate(self) -> None:
        """Raise RequestError with a message a person understands, before any work."""


class Engine(Protocol):
    pack: Pack
    provider: ProviderReport

    def generate(self, request: Any) -> Iterator[Any]: ...

    def close(self) -> None: ...


# modality -> callable(pack, settings) -> Engine. Filled by each engine module on import
# so the app and CLI load a pack without knowing which engine class serves it.
_ENGINE_FACTORIES: dict[str, Any] = {}


def register_engine(modality: str):
    def deco(factory):
        _ENGINE_FACTORIES[modality] = factory
        return factory

    return deco


def open_engine(pack: Pack, settings: RuntimeSettings | None = None) -> Engine:
    """Load the engine that serves ``pack``'s modality."""
    import importlib

    importlib.import_module(f"desktop.engines.{pack.modality}")  # registers its factory
    factory = _ENGINE_FACTORIES[pack.modality]
    return factory(pack, settings or RuntimeSettings.from_env())
