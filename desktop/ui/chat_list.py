"""The list of chats in the Chat studio's left column.

A chat's title is its first message (up to 60 characters) or whatever the person typed in
Rename, so it can be much wider than the column. The list never scrolls sideways (at 900 px
that hid the beginning of every title): a long title ends in "…" and is whole in its tooltip.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QStyledItemDelegate


class _FitWidth(QStyledItemDelegate):
    """Asks for no width of its own: the row is as wide as the list, and the style elides
    the text to fit it (a QListView row is otherwise as wide as its whole text)."""

    def sizeHint(self, option, index) -> QSize:
        return QSize(1, super().sizeHint(option, index).height())


class ConversationList(QListWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.setItemDelegate(_FitWidth(self))

    def add(self, conversation_id: int, title: str) -> QListWidgetItem:
        item = QListWidgetItem(title)
        item.setToolTip(title)
        item.setData(Qt.ItemDataRole.UserRole, conversation_id)
        self.addItem(item)
        return item

    def set_title(self, conversation_id: int, title: str) -> None:
        for i in range(self.count()):
            item = self.item(i)
            if item.data(Qt.ItemDataRole.UserRole) == conversation_id:
                item.setText(title)
                item.setToolTip(title)
