"""Start/cancel cycles of a real text job, with resident memory sampled along the way.

Used by tests/engines/test_memory.py and bench/robustness.py. A cycle starts a reply on
the tiny exported llama, takes its first token, and cancels (closes the generator) - what
Stop does in the chat studio. The slope of resident memory over the cycles after a
warm-up is what must stay flat.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path

import numpy as np


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def slope(samples: list[tuple[int, int]]) -> float:
    """Least-squares bytes per cycle."""
    x = np.array([c for c, _ in samples], dtype=float)
    y = np.array([r for _, r in samples], dtype=float)
    return float(np.polyfit(x, y, 1)[0])


def text_cycles(pack_dir: Path, cycles: int = 1000, warmup: int = 100, every: int = 25) -> tuple[list[tuple[int, int]], float]:
    from desktop.engines.base import open_engine
    from desktop.engines.events import Token
    from desktop.engines.packs.pack import load_pack
    from desktop.engines.text.sampling import SamplingSettings
    from desktop.engines.text.engine import ChatRequest

    engine = open_engine(load_pack(pack_dir))
    samples: list[tuple[int, int]] = []
    try:
        for i in range(warmup + cycles):
            prompt = f"Tell me about cycle {i % 7}"  # varied prompts exercise the cache rewind
            gen = engine.generate(ChatRequest([{"role": "user", "content": prompt}], max_tokens=64, sampling=SamplingSettings(seed=i)))
            first = next(gen)
            assert isinstance(first, Token)
            gen.close()  # cancel after the first token
            if i >= warmup and (i - warmup) % every == 0:
                gc.collect()
                samples.append((i - warmup, rss_bytes()))
    finally:
        engine.close()
    return samples, slope(samples)
