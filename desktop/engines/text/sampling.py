"""Next-token selection in numpy: temperature, top-k, top-p, repetition penalty, seed.

Kept apart from the runtimes so every text backend samples identically: the same seed
and settings give the same text whichever runtime produced the logits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from desktop.engines.errors import RequestError


@dataclass(frozen=True)
class SamplingSettings:
    # Defaults are llama.cpp's current ones (common/common.h): what GGUF models are tuned
    # and reviewed against. A pack's own recommendation overrides them (pack_defaults).
    temperature: float = 0.8  # 0 means greedy
    top_k: int = 40  # 0 disables
    top_p: float = 0.95  # 1 disables
    repetition_penalty: float = 1.0  # 1 disables
    repetition_window: int = 64  # how many recent tokens the penalty looks at
    seed: int | None = None  # None: a fresh random seed per reply
    min_p: float = 0.05  # drop tokens below this fraction of the top token's probability; 0 disables

    def validate(self) -> None:
        # Types first: settings read from a file or a script may be "hot" or 2.5 for top-k,
        # and must be refused with words before the range checks compare them.
        for name in ("temperature", "top_p", "repetition_penalty", "min_p"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise RequestError(f"{name.replace('_', ' ').capitalize()} must be a number.")
        for name in ("top_k", "repetition_window"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise RequestError(f"{name.replace('_', ' ').capitalize()} must be a whole number.")
        if self.seed is not None and (not isinstance(self.seed, int) or isinstance(self.seed, bool)):
            raise RequestError("Seed must be a non-negative integer.")
        if not math.isfinite(self.temperature) or self.temperature < 0 or self.temperature > 5:
            raise RequestError("Temperature must be between 0 (greedy) and 5.")
        if self.top_k < 0:
            raise RequestError("Top-k cannot be negative (0 turns it off).")
        if not math.isfinite(self.top_p) or not 0 < self.top_p <= 1:
            raise RequestError("Top-p must be greater than 0 and at most 1.")
        if not math.isfinite(self.min_p) or not 0 <= self.min_p < 1:
            raise RequestError("Min-p must be at least 0 (off) and below 1.")
        if not math.isfinite(self.repetition_penalty) or not 0.5 <= self.repetition_penalty <= 3:
            raise RequestError("Repetition penalty must be between 0.5 and 3 (1 turns it off).")
        if self.seed is not None and not 0 <= self.seed < 2**63:
            raise RequestError("Seed must be a non-negative integer.")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0 or self.top_k == 1


class Sampler:
    def __init__(self, settings: SamplingSettings):
        self.settings = settings
        self.seed = settings.seed if settings.seed is not None else int(np.random.SeedSequence().entropy % 2**63)
        self.rng = np.random.default_rng(self.seed)

    def __call__(self, logits: np.ndarray, history: list[int]) -> int:
        s = self.settings
        logits = np.asarray(logits, dtype=np.float32).reshape(-1)
        if s.repetition_penalty != 1.0 and history:
            recent = np.unique(np.asarray(history[-s.repetition_window :], dtype=np.int64))
            recent = recent[recent < logits.shape[0]]
            logits = logits.copy()
            vals = logits[recent]
            # CTRL-style penalty: push positive logits down and negative ones further down.
            logits[recent] = np.where(vals > 0, vals / s.repetition_penalty, vals * s.repetition_penalty)
        if s.greedy:
            return int(np.argmax(logits))
        k = s.top_k if 0 < s.top_k < logits.shape[0] else logits.shape[0]
        # argpartition keeps this O(V): full sorts of a 50k vocabulary cost real tokens/s.
        idx = np.argpartition(logits, -k)[-k:] if k < logits.shape[0] else np.arange(logits.shape[0])
        cand = logits[idx]
        order = np.argsort(-cand)
        idx, cand = idx[order], cand[order]
        if s.min_p > 0:  # on the untempered distribution, as llama.cpp applies it before temperature
            keep = int(np.count_nonzero(cand >= cand[0] + math.log(s.min_p)))
            idx, cand = idx[:keep], cand[:keep]
        cand = cand / s.temperature
        probs = np.exp(cand - cand[0])
        probs /= probs.sum()
        if s.top_p < 1.0:
            keep = int(np.searchsorted(np.cumsum(probs), s.top_p) + 1)
            idx, probs = idx[:keep], probs[:keep] / probs[:keep].sum()
        return int(idx[self.rng.choice(len(idx), p=probs)])


# keys a pack may carry for its maker's recommendation -> SamplingSettings fields
_RECOMMENDED = {"temperature": float, "top_k": int, "top_p": float, "min_p": float, "repetition_penalty": float}


def pack_defaults(pack) -> SamplingSettings:
    """llama.cpp's defaults, overridden by what the model's maker recommends where the pack
    says so: the manifest's ``config.sampling`` (GGUF ``general.sampling.*``) or a
    ``generation_config.json`` that turns sampling on. Values that would not validate are
    ignored, so a bad recommendation never blocks a chat."""
    import json

    recommended: dict = {}
    gen = pack.root / "generation_config.json"
    if gen.is_file():
        try:
            cfg = json.loads(gen.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            cfg = {}
        if isinstance(cfg, dict) and cfg.get("do_sample"):
            recommended.update(cfg)
    sampling = (pack.manifest.get("config") or {}).get("sampling")
    if isinstance(sampling, dict):
        recommended.update(sampling)
    settings = SamplingSettings()
    for key, kind in _RECOMMENDED.items():
        value = recommended.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            candidate = replace(settings, **{key: kind(value)})
            try:
                candidate.validate()
            except RequestError:
                continue
            settings = candidate
    return settings
