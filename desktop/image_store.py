"""Generated images kept under the data folder (``images/``), one PNG each (Qt-free).

The PNG is the whole record: pixels plus the provenance chunk with every setting, so an
image copied elsewhere still says how it was made. Names sort by time; nothing is
overwritten.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from desktop.engines.library import data_dir
from desktop.image_meta import image_record, save_image
from desktop.trash import Trash, Trashed

MAX_LISTED = 500


class ImageStore:
    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root else data_dir() / "images"
        self.root.mkdir(parents=True, exist_ok=True)
        self.trash = Trash(self.root.parent / "trash")  # beside the store: a rename, never a copy

    def add(self, image: np.ndarray, pack, metadata: dict, provider: str = "") -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        seed = metadata.get("seed", "x")
        path = self.root / f"img-{stamp}-{seed}.png"
        n = 1
        while path.exists():
            n += 1
            path = self.root / f"img-{stamp}-{seed}-{n}.png"
        save_image(path, image, image_record(pack, metadata, provider))
        return path

    def paths(self) -> list[Path]:
        """Newest first, at most MAX_LISTED."""
        found = [p for p in self.root.glob("*.png") if p.is_file() and not p.name.startswith(".")]
        return sorted(found, key=lambda p: (p.stat().st_mtime, p.name), reverse=True)[:MAX_LISTED]

    def delete(self, path: Path) -> Trashed | None:
        """Move one of the store's images to the trash (Undo: ``restore``)."""
        path = Path(path)
        if path.parent.resolve() != self.root.resolve() or not path.is_file():
            return None
        return self.trash.move(path)

    def restore(self, item: Trashed) -> Path:
        return self.trash.restore(item)
