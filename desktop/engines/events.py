"""Events that engines yield from ``generate()``.

Engines are generators so that a caller can stop between any two events: the worker
simply stops iterating and closes the generator. Each event is a small immutable record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Progress:
    """Long preparatory work (loading, prefill, export steps). fraction in [0, 1] or None."""

    message: str
    fraction: float | None = None


@dataclass(frozen=True)
class Notice:
    """Something the user should know that is not an error (e.g. provider fallback)."""

    message: str


@dataclass(frozen=True)
class Token:
    """A piece of streamed text. ``text`` is what to append to the visible reply."""

    text: str
    token_id: int | None = None


@dataclass(frozen=True)
class Step:
    """One denoising / sampling step of an image job, with an optional cheap preview."""

    index: int
    total: int
    preview: np.ndarray | None = None  # HxWx3 uint8


@dataclass(frozen=True)
class ImageResult:
    image: np.ndarray  # HxWx3 uint8
    seed: int
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AudioChunk:
    samples: np.ndarray  # float32 mono in [-1, 1]
    sample_rate: int
    text: str = ""  # the sentence this chunk speaks
    char_end: int = 0  # offset in the request text reached after this chunk


@dataclass(frozen=True)
class Done:
    """The job finished. ``stats`` holds measured figures (tokens/s, seconds, RTF...)."""

    stats: dict[str, Any] = field(default_factory=dict)
    finish_reason: str = "done"  # done | eos | stop | length | context_full
