"""Per-architecture export configs, registered by modality and architecture name.

Adding an architecture means writing a small config class (with its ``load_source``) and
decorating it; neither the pipeline nor the entry point branches on architecture names.
Each modality is a package (``exporters/text``, ``speech``, ``image``) that registers its
configs on import and says which architecture a source is (``detect_architecture``).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from desktop.engines.errors import UnsupportedArchitectureError

from .errors import UnsupportedModalityError

MODALITIES = ("text", "speech", "image")

_REGISTRY: dict[str, dict[str, type]] = {}


def register(modality: str, *architectures: str):
    def deco(cls):
        table = _REGISTRY.setdefault(modality, {})
        for arch in architectures:
            table[arch] = cls
        cls.modality = modality
        return cls

    return deco


def modality_package(modality: str) -> ModuleType:
    """The modality's package, imported so its configs register themselves."""
    if modality not in MODALITIES:
        raise UnsupportedModalityError(modality, MODALITIES)
    return importlib.import_module(f"exporters.{modality}")


def supported(modality: str) -> list[str]:
    modality_package(modality)
    return sorted(_REGISTRY.get(modality, {}))


def configs(modality: str) -> dict[str, type]:
    """Architecture -> config class, for one modality."""
    modality_package(modality)
    return dict(_REGISTRY.get(modality, {}))


def lookup(modality: str, architecture: str) -> type:
    modality_package(modality)
    table = _REGISTRY.get(modality, {})
    if architecture not in table:
        raise UnsupportedArchitectureError(architecture, list(table), modality)
    return table[architecture]
