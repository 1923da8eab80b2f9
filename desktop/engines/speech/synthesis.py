"""One speech call's choices, nested in ``SpeechRequest`` as ``SamplingSettings`` is in
``ChatRequest``: the voice reads them, the request only carries and validates them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from desktop.engines.errors import RequestError


@dataclass(frozen=True)
class SynthesisSettings:
    """``speed`` divides the voice's length scale; ``variation`` multiplies both noise
    scales (1 = the voice's defaults); explicit noise values win. ``seed`` None: random
    (the result carries the seed used)."""

    speed: float = 1.0
    variation: float = 1.0
    noise_scale: float | None = None
    noise_w: float | None = None
    speaker: int | str | None = None
    seed: int | None = None

    def validate(self) -> None:
        for name, value, lo, hi in (("Speed", self.speed, 0.25, 4.0), ("Variation", self.variation, 0.0, 2.0)):
            if not isinstance(value, (int, float)) or not np.isfinite(value) or not lo <= value <= hi:
                raise RequestError(f"{name} must be between {lo:g} and {hi:g} (got {value!r}).")
        for name, value in (("Noise scale", self.noise_scale), ("Noise width (noise-w)", self.noise_w)):
            if value is not None and (not np.isfinite(value) or not 0.0 <= value <= 2.0):
                raise RequestError(f"{name} must be between 0 and 2 (got {value!r}).")
        if self.seed is not None and not 0 <= int(self.seed) < 2**63:
            raise RequestError("Seed must be a non-negative integer.")
