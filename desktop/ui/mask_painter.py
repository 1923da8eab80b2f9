"""Paint which part of the starting image to repaint (inpainting): brush, erase, clear.

The mask is kept at the picture's own size (white = repaint) while the canvas shows the picture
scaled to fit, with the painted part tinted; strokes are drawn as round-capped lines between
mouse positions, so a fast drag leaves no gaps.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QHBoxLayout, QLabel, QPushButton, QSlider,
                               QVBoxLayout, QWidget)

from desktop.ui.rgb_image import rgb_qimage


class MaskCanvas(QWidget):
    def __init__(self, image: np.ndarray, mask: np.ndarray | None = None, parent=None):
        super().__init__(parent)
        self.picture = rgb_qimage(image)
        self.mask = QImage(self.picture.size(), QImage.Format.Format_Grayscale8)
        self.mask.fill(0)
        if mask is not None and mask.shape == image.shape[:2]:
            self.mask = QImage(np.ascontiguousarray(np.where(mask > 127, 255, 0).astype(np.uint8)).data,
                               mask.shape[1], mask.shape[0], mask.shape[1], QImage.Format.Format_Grayscale8).copy()
        self.brush = 24  # in picture pixels
        self.erasing = False
        self._last: QPointF | None = None
        self.setMinimumSize(256, 256)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setAccessibleName("Mask canvas: drag to paint the part to repaint")

    # picture <-> widget coordinates (the picture is scaled to fit and centred)
    def _scale(self) -> tuple[float, float, float]:
        s = min(self.width() / self.picture.width(), self.height() / self.picture.height())
        return s, (self.width() - self.picture.width() * s) / 2, (self.height() - self.picture.height() * s) / 2

    def _to_picture(self, pos: QPointF) -> QPointF:
        s, ox, oy = self._scale()
        return QPointF((pos.x() - ox) / s, (pos.y() - oy) / s)

    def paintEvent(self, _event) -> None:
        s, ox, oy = self._scale()
        p = QPainter(self)
        p.translate(ox, oy)
        p.scale(s, s)
        p.drawImage(0, 0, self.picture)
        tint = QImage(self.mask.size(), QImage.Format.Format_ARGB32)
        tint.fill(QColor(255, 40, 40, 140))
        tint.setAlphaChannel(self._alpha())
        p.drawImage(0, 0, tint)
        p.end()

    def _alpha(self) -> QImage:
        a = (self.mask_array() // 255 * 140).astype(np.uint8)
        return QImage(np.ascontiguousarray(a).data, a.shape[1], a.shape[0], a.shape[1], QImage.Format.Format_Grayscale8).copy()

    def mousePressEvent(self, event) -> None:
        self._last = self._to_picture(event.position())
        self._stroke(self._last, self._last, erase=self.erasing or event.button() == Qt.MouseButton.RightButton)

    def mouseMoveEvent(self, event) -> None:
        if self._last is None:
            return
        here = self._to_picture(event.position())
        self._stroke(self._last, here, erase=self.erasing or bool(event.buttons() & Qt.MouseButton.RightButton))
        self._last = here

    def mouseReleaseEvent(self, _event) -> None:
        self._last = None

    def _stroke(self, a: QPointF, b: QPointF, erase: bool) -> None:
        p = QPainter(self.mask)
        p.setPen(QPen(QColor(0, 0, 0) if erase else QColor(255, 255, 255), self.brush, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
        p.drawLine(a, b) if a != b else p.drawPoint(a)
        p.end()
        self.update()

    def clear(self) -> None:
        self.mask.fill(0)
        self.update()

    def mask_array(self) -> np.ndarray:
        """H x W uint8, 255 where the picture is repainted."""
        m = self.mask
        ptr = m.constBits()
        rows = np.frombuffer(ptr, np.uint8, m.bytesPerLine() * m.height()).reshape(m.height(), m.bytesPerLine())
        return np.where(rows[:, : m.width()] >= 128, 255, 0).astype(np.uint8)


class MaskPainter(QDialog):
    """Modal: paint the mask over ``image``; ``mask()`` after Accept (None when nothing was painted)."""

    def __init__(self, image: np.ndarray, mask: np.ndarray | None = None, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Paint the part to repaint")
        self.canvas = MaskCanvas(image, mask)
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("Drag to paint what should change; right-drag or Erase to take paint away."))
        lay.addWidget(self.canvas, 1)
        row = QHBoxLayout()
        row.addWidget(QLabel("Brush"))
        self.brush = QSlider(Qt.Orientation.Horizontal)
        self.brush.setRange(2, max(4, max(image.shape[:2]) // 4))
        self.brush.setValue(min(self.canvas.brush, self.brush.maximum()))
        self.brush.valueChanged.connect(self._set_brush)
        self.canvas.brush = self.brush.value()
        row.addWidget(self.brush, 1)
        self.erase = QCheckBox("Erase")
        self.erase.toggled.connect(lambda on: setattr(self.canvas, "erasing", on))
        row.addWidget(self.erase)
        self.clear_button = QPushButton("Clear")
        self.clear_button.clicked.connect(self.canvas.clear)
        row.addWidget(self.clear_button)
        lay.addLayout(row)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.resize(560, 620)

    def _set_brush(self, value: int) -> None:
        self.canvas.brush = value

    def mask(self) -> np.ndarray | None:
        m = self.canvas.mask_array()
        return m if m.any() else None
