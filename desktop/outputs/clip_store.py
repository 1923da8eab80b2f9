"""Spoken clips kept under the data folder (``clips/``), one WAV each (Qt-free).

The WAV is the whole record: audio plus the provenance JSON and the text in its INFO
chunk, so a clip copied elsewhere still says where it came from. Names sort by time.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from desktop.engines.atomic_write import OutputExistsError
from desktop.engines.speech.wav import read_wav
from desktop.outputs.folders import CLIPS, studio_folder
from desktop.outputs.provenance_wav import save_wav
from desktop.outputs.trash import Trash, Trashed


@dataclass
class Clip:
    path: Path
    samples: np.ndarray
    sample_rate: int
    text: str
    record: dict[str, Any]

    @property
    def seconds(self) -> float:
        return self.samples.size / self.sample_rate if self.sample_rate else 0.0

    @property
    def title(self) -> str:
        words = " ".join(self.text.split())
        return (words[:60] + "…") if len(words) > 60 else words or self.path.stem


MAX_SAME_SECOND = 10_000  # clips named after one second before giving up


class ClipStore:
    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root else studio_folder(CLIPS)
        self.root.mkdir(parents=True, exist_ok=True)
        self.trash = Trash(self.root.parent / "trash")  # beside the store: a rename, never a copy

    def add(self, samples: np.ndarray, sample_rate: int, record: dict[str, Any], text: str) -> Clip:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for n in range(1, MAX_SAME_SECOND + 1):
            path = self.root / (f"clip-{stamp}.wav" if n == 1 else f"clip-{stamp}-{n}.wav")
            try:  # the write itself claims the name: two clips in one second never collide
                save_wav(path, samples, sample_rate, record, text)
                return Clip(path, np.asarray(samples, dtype=np.float32), sample_rate, text, record)
            except OutputExistsError:
                if n == MAX_SAME_SECOND:
                    raise

    def load(self, path: Path) -> Clip:
        wav = read_wav(path)
        try:
            record = json.loads(wav.info.get("ICMT", "{}"))
        except json.JSONDecodeError:
            record = {}
        return Clip(path, wav.samples, wav.sample_rate, wav.info.get("INAM", ""), record if isinstance(record, dict) else {})

    def clips(self) -> list[Clip]:
        """Newest first; unreadable files are skipped, never deleted."""
        out = []
        for path in sorted(self.root.glob("clip-*.wav"), reverse=True):
            try:
                out.append(self.load(path))
            except (OSError, ValueError):
                continue
        return out

    def delete(self, clip: Clip) -> Trashed | None:
        """Move the clip's WAV to the trash (Undo: ``restore``)."""
        if clip.path.parent.resolve() != self.root.resolve() or not clip.path.is_file():
            return None
        return self.trash.move(clip.path)

    def restore(self, item: Trashed) -> Clip:
        return self.load(self.trash.restore(item))
