"""The Image studio's gallery: thumbnails of the PNGs in the image store, newest first.

It lists what is on disk, so the gallery survives restarts by construction. One click (or
the arrow keys) shows an image in the preview. A delete moves the file to the trash and
leaves nothing selected, so a second press of Delete cannot silently take the next image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QIcon, QImageReader, QPixmap
from PySide6.QtWidgets import QListView, QListWidget, QListWidgetItem

from desktop.outputs.image_store import ImageStore
from desktop.outputs.trash import Trashed
from desktop.ui.rgb_image import rgb_pixmap

THUMB = 128
BATCH = 24  # thumbnails decoded per turn of the event loop: the window stays responsive


def thumbnail(path: Path) -> QPixmap:
    reader = QImageReader(str(path))
    size = reader.size()
    if size.isValid() and max(size.width(), size.height()) > THUMB:
        reader.setScaledSize(size.scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio))
    image = reader.read()
    if image.isNull():
        return QPixmap()
    pix = QPixmap.fromImage(image)
    if max(pix.width(), pix.height()) < THUMB // 2:  # tiny images: scale up crisply
        pix = pix.scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation)
    return pix


def thumbnail_image(image: np.ndarray) -> np.ndarray:
    """The gallery thumbnail of a freshly made picture, as a small RGB array, made on the
    job's worker thread so the GUI thread neither decodes the PNG again nor scales a
    1024 px picture down. Pillow, not Qt: Qt's smooth scaling of a large QImage fans out to
    Qt's GUI thread pool, which the GUI thread uses at the same moment to scale previews;
    a run crashed in the GUI thread's event loop while a worker scaled thumbnails that way.
    Qt objects are made and used on the GUI thread only."""
    from PIL import Image

    picture = Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)[..., :3])
    w, h = picture.size
    scale = THUMB / max(w, h)
    if max(w, h) < THUMB // 2:  # tiny images: scale up crisply
        picture = picture.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.NEAREST)
    elif max(w, h) > THUMB:
        picture = picture.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS)
    return np.asarray(picture, dtype=np.uint8)


class ImageGallery(QListWidget):
    image_activated = Signal(str)  # path

    def __init__(self, store: ImageStore, parent=None):
        super().__init__(parent)
        self.store = store
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setIconSize(QSize(THUMB, THUMB))
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setSpacing(4)
        self.itemActivated.connect(self._emit_activated)
        self.itemClicked.connect(self._emit_activated)
        self.currentItemChanged.connect(lambda item, _previous: self._emit_activated(item))
        self.reload()

    def reload(self) -> None:
        """List the store, newest first: the first batch now, the rest a batch at a time
        so a large gallery never delays the window."""
        self.clear()
        self._backlog = list(self.store.paths())
        self._load_batch()

    def _load_batch(self) -> None:
        batch, self._backlog = self._backlog[:BATCH], self._backlog[BATCH:]
        for path in batch:
            self._item(path, self.count())
        if self._backlog:
            QTimer.singleShot(0, self._load_batch)

    def add(self, path: Path, thumb: np.ndarray | None = None) -> QListWidgetItem:
        """A new image, first in the gallery; ``thumb`` (from ``thumbnail_image``) spares
        reading the PNG back."""
        return self._item(path, 0, thumb)

    def _item(self, path: Path, row: int, thumb: np.ndarray | None = None) -> QListWidgetItem:
        pixmap = rgb_pixmap(thumb) if thumb is not None and thumb.size else thumbnail(path)
        item = QListWidgetItem(QIcon(pixmap), "")
        item.setData(Qt.ItemDataRole.UserRole, str(path))
        item.setToolTip(path.name)
        self.insertItem(row, item)
        return item

    def _emit_activated(self, item: QListWidgetItem | None) -> None:
        if item is not None:
            self.image_activated.emit(item.data(Qt.ItemDataRole.UserRole))

    def paths(self) -> list[str]:
        return [self.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.count())]

    def selected_path(self) -> str | None:
        items = self.selectedItems()
        return items[0].data(Qt.ItemDataRole.UserRole) if items else None

    def remove_selected(self) -> Trashed | None:
        """Move the selected image to the trash and drop its thumbnail; raises OSError
        when the file cannot be moved."""
        path = self.selected_path()
        if path is None:
            return None
        trashed = self.store.delete(Path(path))
        self.blockSignals(True)  # the row that slides up is not "viewed" or selected
        self.takeItem(self.row(self.selectedItems()[0]))
        self.setCurrentItem(None)
        self.clearSelection()
        self.blockSignals(False)
        return trashed
