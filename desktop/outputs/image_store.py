"""Generated images kept under the data folder (``images/``), one PNG each (Qt-free).

The PNG is the whole record: pixels plus the provenance chunk with every setting, so an
image copied elsewhere still says how it was made. Names sort by time; nothing is
overwritten.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from desktop.engines.atomic_write import OutputExistsError
from desktop.outputs.folders import IMAGES, studio_folder
from desktop.outputs.image_meta import image_record, save_image
from desktop.outputs.trash import Trash, Trashed

MAX_LISTED = 500
MAX_SAME_SECOND = 10_000  # images of one seed named after one second before giving up


class ImageStore:
    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root else studio_folder(IMAGES)
        self.root.mkdir(parents=True, exist_ok=True)
        self.trash = Trash(self.root.parent / "trash")  # beside the store: a rename, never a copy

    def add(self, image: np.ndarray, pack, metadata: dict, provider: str = "") -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        seed = metadata.get("seed", "x")
        record = image_record(pack, metadata, provider)
        for n in range(1, MAX_SAME_SECOND + 1):
            path = self.root / (f"img-{stamp}-{seed}.png" if n == 1 else f"img-{stamp}-{seed}-{n}.png")
            try:  # the write itself claims the name: two images in one second never collide
                return save_image(path, image, record)
            except OutputExistsError:
                if n == MAX_SAME_SECOND:
                    raise
        raise AssertionError("unreachable")

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
