"""Deleted gallery images and speech clips wait in ``trash/`` under the data folder (Qt-free).

A delete is a rename into the trash (same file system, so atomic and instant) and Undo
renames it back; nothing is unlinked until it has sat in the trash for ``KEEP_DAYS``
(emptied at start). The time of the delete is part of the trashed name, because a rename
keeps the file's own modification time.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from desktop.engines.packs.library import data_dir

KEEP_DAYS = 30


@dataclass(frozen=True)
class Trashed:
    original: Path
    path: Path  # where it waits in the trash


class Trash:
    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root else data_dir() / "trash"

    def move(self, path: Path) -> Trashed:
        """Move ``path`` into the trash; raises OSError when it cannot be moved."""
        path = Path(path)
        self.root.mkdir(parents=True, exist_ok=True)
        stamp = f"{time.time():.6f}"
        dest = self.root / f"{stamp}--{path.name}"
        n = 1
        while dest.exists():
            n += 1
            dest = self.root / f"{stamp}-{n}--{path.name}"
        os.replace(path, dest)
        return Trashed(path, dest)

    def restore(self, item: Trashed) -> Path:
        """Put a trashed file back where it was (beside it, if that name is taken again)."""
        target = item.original
        n = 1
        while target.exists():
            n += 1
            target = item.original.with_name(f"{item.original.stem}-{n}{item.original.suffix}")
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(item.path, target)
        return target

    def empty(self, older_than_days: float = KEEP_DAYS, now: float | None = None) -> int:
        """Remove what was deleted more than ``older_than_days`` ago; returns how many."""
        if not self.root.is_dir():
            return 0
        cutoff = (now if now is not None else time.time()) - older_than_days * 86400
        removed = 0
        for path in self.root.iterdir():
            try:
                deleted_at = float(path.name.split("--", 1)[0].split("-", 1)[0])
            except ValueError:
                continue  # not ours: never touched
            if deleted_at < cutoff and path.is_file():
                try:
                    path.unlink()
                    removed += 1
                except OSError:
                    continue
        return removed
