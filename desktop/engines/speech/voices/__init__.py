"""Voices: the runtime half of a speech pack, one class per pack architecture.

The speech engine (``speech/engine.py``) looks up ``pack.architecture`` here and hands
the pack to the registered class, as the image engine does with its pipelines. Every
module in this package is imported on first lookup, so adding a voice family means
adding one module; the engine never branches on the architecture.

CONTRACT - what a voice implements (see :class:`Voice`)::

    @register_voice("my-arch")                    # pack.architecture values served
    class MyVoice:
        def __init__(self, pack, settings):        # Pack, providers.RuntimeSettings
            self.session, self.provider = voice_session(pack, settings)   # the shared factory
            ...

The engine splits and cleans the text, then per sentence calls ``phoneme_ids`` and,
when ``speakable(ids)`` is not zero, ``synthesize_ids``; randomness comes only from the
``rng`` it passes (seeded from the request), so a seedable voice repeats a clip exactly.
"""

from __future__ import annotations

from collections import Counter
from typing import Callable, Protocol, runtime_checkable

import numpy as np

from desktop.engines.errors import PackFormatError
from desktop.engines.registry import ArchitectureRegistry
from desktop.engines.speech.synthesis import SynthesisSettings

_REGISTRY = ArchitectureRegistry(__name__, __path__)


@runtime_checkable
class Voice(Protocol):
    provider: object  # a providers.ProviderReport
    load_seconds: float
    sample_rate: int
    scripts: frozenset[str] | None  # letter scripts it reads (None: any)
    # A character voice's alphabet (does it have a sound for this character?); None when
    # any letter of its scripts is fine.
    alphabet: Callable[[str], bool] | None
    seedable: bool  # True when the rng passed in decides all of its noise

    def speaker_names(self) -> list[str]: ...

    def speaker_id(self, speaker: int | str | None) -> int:
        """The model's speaker index; RequestError naming the speakers for an unknown one."""

    def scales(self, settings: SynthesisSettings) -> np.ndarray: ...

    def phoneme_ids(self, sentence: str, missing: Counter) -> list[int]:
        """The model's input ids for one cleaned sentence; counts symbols it had to skip."""

    def speakable(self, ids: list[int]) -> int:
        """How many of ``ids`` carry sound (not framing or blanks): 0 means skip it."""

    def synthesize_ids(self, ids: list[int], scales: np.ndarray, sid: int, rng: np.random.Generator) -> np.ndarray: ...

    def close(self) -> None: ...


register_voice = _REGISTRY.register  # class decorator: serve speech packs of these architectures


def known_architectures() -> list[str]:
    return _REGISTRY.known()


def voice_class(pack) -> type:
    """The class that runs ``pack``'s voice, or PackFormatError naming what runs."""
    cls = _REGISTRY.get(pack.architecture)
    if cls is None:
        raise PackFormatError(
            f"Pack '{pack.name}' is a '{pack.architecture}' voice; this app plays {', '.join(known_architectures())} voices. "
            "Update Atelier or re-export the pack."
        )
    return cls
