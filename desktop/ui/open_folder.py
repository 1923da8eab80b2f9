"""Open a folder in the system's file manager, or say where it is when that cannot happen.

``QDesktopServices.openUrl`` returns False (and shows nothing) where no file manager is
registered - a bare Linux session, a kiosk: the person then gets the path to copy.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout


class FolderPathDialog(QDialog):
    """The folder's path, selectable, with a Copy button."""

    def __init__(self, path: Path, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Folder location")
        lay = QVBoxLayout(self)
        note = QLabel("No file manager could be opened on this system. The folder is here:")
        note.setWordWrap(True)
        lay.addWidget(note)
        row = QHBoxLayout()
        self.path_field = QLineEdit(str(path))
        self.path_field.setReadOnly(True)
        self.path_field.setMinimumWidth(360)
        self.copy_button = QPushButton("Copy")
        self.copy_button.clicked.connect(self.copy)
        row.addWidget(self.path_field, 1)
        row.addWidget(self.copy_button)
        lay.addLayout(row)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(self.path_field.text())
        self.copy_button.setText("Copied")


def open_folder(path: str | Path, parent=None) -> bool:
    """Show ``path`` in the file manager; when none opens, show the path to copy.
    Returns whether a file manager took it."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if QDesktopServices.openUrl(QUrl.fromLocalFile(str(path))):
        return True
    dialog = FolderPathDialog(path, parent)
    dialog.setModal(False)
    dialog.show()
    if parent is not None:
        parent._folder_dialog = dialog  # kept alive while it shows
    return False
