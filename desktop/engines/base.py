"""The engine seam: ``load(pack)``, ``generate(request) -> Iterator[event]``, ``close()``.

Every modality implements this shape so one worker can drive any of them and cancel is
simply "stop iterating" (the worker closes the generator between two events).
"""

from __future__ import annotations

import logging
from typing import Any, Iterator, Protocol

from desktop.engines.errors import AtelierError, PackFormatError, ResourceError
from desktop.engines.packs.pack import Pack
from desktop.engines.providers import ProviderReport, RuntimeSettings


class Request(Protocol):
    def validate(self) -> None:
        """Raise RequestError with a message a person understands, before any work."""


class Engine(Protocol):
    pack: Pack
    provider: ProviderReport

    def generate(self, request: Any) -> Iterator[Any]: ...

    def close(self) -> None: ...


log = logging.getLogger(__name__)

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

    from desktop.engines.packs.checks import preflight

    importlib.import_module(f"desktop.engines.{pack.modality}.engine")  # registers its factory
    factory = _ENGINE_FACTORIES[pack.modality]
    preflight(pack)  # graphs checked, runtime configs confined, memory fits: before any session
    try:
        return factory(pack, settings or RuntimeSettings.from_env())
    except (AtelierError, KeyboardInterrupt):
        raise
    except MemoryError:
        raise ResourceError(f"Ran out of memory while loading '{pack.name}'. Close other apps or choose a smaller model.") from None
    except Exception as exc:  # noqa: BLE001 - a pack from anywhere must fail as a pack problem, not a crash
        log.warning("loading %s failed", pack.name, exc_info=True)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise PackFormatError(f"Pack '{pack.name}' could not be loaded: {first}") from exc
