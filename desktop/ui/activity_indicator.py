"""Status-bar indicator of background work the user did not start by hand.

Engines load lazily after the window is up; while any load (or other background task
announced through ``Notifier.begin``/``end``) runs, this shows a busy bar and what is
happening, so a slow first load never looks like a frozen window.
"""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QWidget


class ActivityIndicator(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel()
        self.bar = QProgressBar()
        self.bar.setRange(0, 0)
        self.bar.setMaximumWidth(120)
        self.bar.setMaximumHeight(14)
        lay.addWidget(self.label)
        lay.addWidget(self.bar)
        self.tasks: dict[str, str] = {}
        self.hide()

    def on_activity(self, key: str, text: str) -> None:
        if text:
            self.tasks[key] = text
        else:
            self.tasks.pop(key, None)
        self.setVisible(bool(self.tasks))
        self.label.setText(" · ".join(self.tasks.values()))
