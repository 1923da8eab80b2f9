"""Fashion-MNIST from the Debian package ``dataset-fashion-mnist`` (idx files, gzip).

Needed only to re-train or re-evaluate: ``apt-get install dataset-fashion-mnist``.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

FOLDER = Path("/usr/share/datasets/fashion-mnist")
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
SIZE = 28


def _idx(path: Path) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: install the Debian package dataset-fashion-mnist (only needed to re-train)")
    with gzip.open(path, "rb") as fh:
        data = fh.read()
    dims = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(split: str = "train", folder: Path = FOLDER) -> tuple[np.ndarray, np.ndarray]:
    """(images N x 28 x 28 uint8, labels N int64) for split 'train' (60k) or 'test' (10k)."""
    prefix = "train" if split == "train" else "t10k"
    images = _idx(folder / f"{prefix}-images-idx3-ubyte.gz")
    labels = _idx(folder / f"{prefix}-labels-idx1-ubyte.gz").astype(np.int64)
    return images, labels


def balanced_subset(labels: np.ndarray, per_class: int) -> np.ndarray:
    """Indices of the first ``per_class`` examples of every class (a fixed held-out set)."""
    return np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in range(len(CLASSES))])
