"""Picture arrays (H x W x 3, uint8) as Qt images, on the GUI thread.

The QImage is copied out of the array's memory at once: Qt would otherwise read an array that
Python may free (a preview replaced, a thumbnail's job finished) while the image is shown.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage, QPixmap


def rgb_qimage(image: np.ndarray) -> QImage:
    image = np.ascontiguousarray(image, dtype=np.uint8)
    h, w = image.shape[:2]
    return QImage(image.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def rgb_pixmap(image: np.ndarray) -> QPixmap:
    return QPixmap.fromImage(rgb_qimage(image))
