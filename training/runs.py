"""What every recipe's training loop shares: resumable checkpoints, EMA, a log file.

A run is a folder: ``checkpoint.pt`` (rewritten atomically every few minutes, so a killed
run resumes where it stopped), ``train.log`` (one line per report) and, when finished,
``final.pt``. Batches are drawn from an RNG seeded by (seed, step), so a resumed run
sees exactly the batches an uninterrupted one would have seen.
"""

from __future__ import annotations

import copy
import os
import time
from pathlib import Path

import numpy as np
import torch

CHECKPOINT = "checkpoint.pt"
FINAL = "final.pt"


class RunLog:
    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "train.log"

    def __call__(self, message: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {message}"
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
        print(line, flush=True)


class EMA:
    """Exponential moving average of weights; warm-up so early averages are not stale."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        for e, p in zip(self.model.parameters(), model.parameters()):
            e.lerp_(p.detach(), 1 - d)
        for e, b in zip(self.model.buffers(), model.buffers()):
            e.copy_(b)


def batch_rng(seed: int, step: int) -> np.random.Generator:
    return np.random.default_rng([seed, step])


def save_atomic(obj, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(folder: Path):
    path = folder / CHECKPOINT
    return torch.load(path, map_location="cpu", weights_only=False) if path.is_file() else None


def cosine_lr(step: int, total: int, peak: float, warmup: int, floor: float = 0.1) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (floor + (1 - floor) * 0.5 * (1 + np.cos(np.pi * min(1.0, progress))))


class Clock:
    """Wall and CPU seconds spent training, carried across resumes for the model card."""

    def __init__(self, wall: float = 0.0, cpu: float = 0.0):
        self.wall0, self.cpu0 = wall, cpu
        self.t_wall, self.t_cpu = time.perf_counter(), time.process_time()

    @property
    def wall(self) -> float:
        return self.wall0 + time.perf_counter() - self.t_wall

    @property
    def cpu(self) -> float:
        return self.cpu0 + time.process_time() - self.t_cpu
