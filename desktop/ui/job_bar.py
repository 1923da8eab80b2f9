"""A progress bar with a Cancel button for one background job of a page.

Pages hand it the GeneratorWorker they start; it shows the job's Progress events and
aborts the worker on Cancel. It never runs anything itself.
"""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from desktop.engines.events import Progress


class JobBar(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel()
        self.bar = QProgressBar()
        self.bar.setMaximumWidth(260)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        lay.addWidget(self.label, 1)
        lay.addWidget(self.bar)
        lay.addWidget(self.cancel_button)
        self.worker = None
        self.hide()

    @property
    def busy(self) -> bool:
        return self.worker is not None

    def track(self, worker, text: str) -> None:
        self.worker = worker
        self.label.setText(text)
        self.bar.setRange(0, 0)  # busy until the first fraction arrives
        self.cancel_button.setEnabled(True)
        worker.signals.yielded.connect(self._on_event)
        worker.signals.finished.connect(self._on_finished)
        self.show()

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.abort()
            self.cancel_button.setEnabled(False)
            self.label.setText(self.label.text() + " - cancelling…")

    def _on_event(self, ev) -> None:
        if not isinstance(ev, Progress):
            return
        if self.cancel_button.isEnabled():
            self.label.setText(ev.message)
        if ev.fraction is None:
            self.bar.setRange(0, 0)
        else:
            self.bar.setRange(0, 1000)
            self.bar.setValue(int(ev.fraction * 1000))

    def _on_finished(self) -> None:
        self.worker = None
        self.hide()
