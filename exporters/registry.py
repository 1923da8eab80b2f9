"""Per-architecture export configs, registered by modality and architecture name.

Adding an architecture means writing a small config class and decorating it; the
pipeline never branches on architecture names.
"""

from __future__ import annotations

from desktop.engines.errors import UnsupportedArchitectureError

_REGISTRY: dict[str, dict[str, type]] = {}


def register(modality: str, *architectures: str):
    def deco(cls):
        table = _REGISTRY.setdefault(modality, {})
        for arch in architectures:
            table[arch] = cls
        cls.modality = modality
        return cls

    return deco


def supported(modality: str) -> list[str]:
    _load(modality)
    return sorted(_REGISTRY.get(modality, {}))


def lookup(modality: str, architecture: str) -> type:
    _load(modality)
    table = _REGISTRY.get(modality, {})
    if architecture not in table:
        raise UnsupportedArchitectureError(architecture, list(table), modality)
    return table[architecture]


def _load(modality: str) -> None:
    """Import the modality's module so its configs register themselves."""
    import importlib

    try:
        importlib.import_module(f"exporters.{modality}")
    except ModuleNotFoundError as exc:
        if exc.name != f"exporters.{modality}":
            raise
