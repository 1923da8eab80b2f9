"""Dropping a model file anywhere on a studio imports it through the Library: a .gguf on the
Chat, a single-file checkpoint (.safetensors, or a pickle the Library asks about) on the Image studio.

An event filter rather than drop handlers in the studio: a drop lands on the deepest widget
that accepts drops (the message box's viewport takes text and URL drops itself), so the
filter sits on the studio and on every child, takes only drags that
carry a file of its kinds, and leaves every other drag (a PNG to reproduce) to the widget under it.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Signal
from PySide6.QtWidgets import QWidget

_DRAG_EVENTS = (QEvent.Type.DragEnter, QEvent.Type.DragMove, QEvent.Type.Drop)


def gguf_in(mime, suffixes: tuple[str, ...] = (".gguf",)) -> str | None:
    """The first local file with one of ``suffixes`` a drag carries, else None."""
    if mime is None or not mime.hasUrls():
        return None
    for url in mime.urls():
        if url.isLocalFile() and url.toLocalFile().lower().endswith(suffixes):
            return url.toLocalFile()
    return None


class GgufDrop(QObject):
    dropped = Signal(str)

    def __init__(self, target: QWidget, suffixes: tuple[str, ...] = (".gguf",)):
        super().__init__(target)
        self.suffixes = tuple(s.lower() for s in suffixes)
        target.setAcceptDrops(True)
        for widget in (target, *target.findChildren(QWidget)):  # scroll-area viewports take drops for their owner
            widget.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt's name
        if event.type() not in _DRAG_EVENTS:
            return False
        path = gguf_in(event.mimeData(), self.suffixes)
        if path is None:
            return False
        event.acceptProposedAction()
        if event.type() == QEvent.Type.Drop:
            self.dropped.emit(path)
        return True
