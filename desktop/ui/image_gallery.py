"""The Image studio's gallery: thumbnails of the PNGs in the image store, newest first.

It lists what is on disk, so the gallery survives restarts by construction.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImageReader, QPixmap
from PySide6.QtWidgets import QListView, QListWidget, QListWidgetItem

from desktop.image_store import ImageStore

THUMB = 128


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
        self.itemActivated.connect(lambda item: self.image_activated.emit(item.data(Qt.ItemDataRole.UserRole)))
        self.reload()

    def reload(self) -> None:
        self.clear()
        for path in reversed(self.store.paths()):
            self.add(path)

    def add(self, path: Path) -> QListWidgetItem:
        item = QListWidgetItem(QIcon(thumbnail(path)), "")
        item.setData(Qt.ItemDataRole.UserRole, str(path))
        item.setToolTip(path.name)
        self.insertItem(0, item)
        return item

    def paths(self) -> list[str]:
        return [self.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.count())]

    def selected_path(self) -> str | None:
        items = self.selectedItems()
        return items[0].data(Qt.ItemDataRole.UserRole) if items else None

    def remove_selected(self) -> Path | None:
        """Delete the selected image file (an explicit user action) and its thumbnail."""
        path = self.selected_path()
        if path is None:
            return None
        Path(path).unlink(missing_ok=True)
        self.takeItem(self.row(self.selectedItems()[0]))
        return Path(path)
