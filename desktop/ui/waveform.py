"""A small waveform picture (min/max envelope) for clip lists and the studio."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QPainter, QPen, QPixmap


def envelope(samples: np.ndarray, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-column (min, max) of the samples, for drawing."""
    samples = np.asarray(samples, dtype=np.float32).reshape(-1)
    if samples.size == 0 or columns <= 0:
        return np.zeros(max(columns, 0)), np.zeros(max(columns, 0))
    edges = np.linspace(0, samples.size, columns + 1).astype(int)
    lo, hi = np.zeros(columns), np.zeros(columns)
    for i in range(columns):
        seg = samples[edges[i] : max(edges[i + 1], edges[i] + 1)]
        lo[i], hi[i] = seg.min(), seg.max()
    return lo, hi


def waveform_pixmap(samples: np.ndarray, width: int = 160, height: int = 36, color: str = "#1f5fbf") -> QPixmap:
    pix = QPixmap(width, height)
    pix.fill(Qt.GlobalColor.transparent)
    lo, hi = envelope(samples, width)
    peak = max(float(np.abs(lo).max(initial=0)), float(np.abs(hi).max(initial=0)), 1e-6)
    mid = height / 2
    painter = QPainter(pix)
    painter.setPen(QPen(QColor(color), 1))
    for x in range(width):
        painter.drawLine(QPointF(x, mid - hi[x] / peak * (mid - 1)), QPointF(x, mid - lo[x] / peak * (mid - 1)))
    painter.end()
    return pix
