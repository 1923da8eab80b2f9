"""A viewer for the local audit log (desktop/outputs/audit.py), to embed in Settings or Library.

Shows the newest records first and verifies the whole hash chain in a GeneratorWorker
(a long log never blocks the window). ``AuditView(ctx)``; ``refresh()`` re-reads the
log, ``verify()`` starts a check and the result lands in ``status`` and ``last_report``.
"""

from __future__ import annotations

from typing import Iterator

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QHeaderView, QLabel, QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from desktop.outputs import audit
from desktop.workers import GeneratorWorker, start

COLUMNS = ("#", "Time (UTC)", "Job", "Pack", "Pack SHA-256", "Settings SHA-256", "Output SHA-256")
MAX_ROWS = 2000  # the table shows the newest; verification always reads everything


class AuditView(QWidget):
    def __init__(self, ctx=None, parent=None):
        super().__init__(parent)
        self.ctx = ctx
        self.last_report: audit.AuditReport | None = None
        self._worker: GeneratorWorker | None = None
        lay = QVBoxLayout(self)
        top = QHBoxLayout()
        self.status = QLabel("Not verified yet.")
        self.status.setWordWrap(True)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        self.verify_button = QPushButton("Verify chain")
        self.verify_button.clicked.connect(self.verify)
        top.addWidget(self.status, 1)
        top.addWidget(self.refresh_button)
        top.addWidget(self.verify_button)
        lay.addLayout(top)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        lay.addWidget(self.table, 1)
        note = QLabel(
            "Each job adds a record linked to the previous one by its SHA-256, so editing or "
            "removing any record is detected. It is kept on this computer only; someone able "
            "to rewrite the whole file could recompute every link."
        )
        note.setWordWrap(True)
        lay.addWidget(note)
        self.refresh()

    def refresh(self) -> None:
        rows = list(audit.records())[-MAX_ROWS:][::-1]
        self.table.setRowCount(len(rows))
        for r, rec in enumerate(rows):
            values = (rec.get("seq"), rec.get("time"), rec.get("kind"), rec.get("pack"), rec.get("pack_sha256"), rec.get("settings_sha256"), rec.get("output_sha256"))
            for c, value in enumerate(values):
                text = "" if value is None else str(value)
                item = QTableWidgetItem(text[:16] + "…" if c >= 4 and len(text) > 16 else text)
                item.setToolTip(text)
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                self.table.setItem(r, c, item)

    def verify(self) -> GeneratorWorker | None:
        if self._worker is not None:
            return None
        self.status.setText("Verifying…")
        self.verify_button.setEnabled(False)
        worker = GeneratorWorker(_verify_job)
        worker.signals.yielded.connect(self._on_report)
        worker.signals.ended.connect(self._on_ended)
        self._worker = worker
        return start(worker)

    def _on_report(self, report: audit.AuditReport) -> None:
        self.last_report = report
        self.status.setText(("✓ " if report.ok else "✗ ") + report.message())
        self.refresh()

    def _on_ended(self, outcome) -> None:
        if outcome.failed:
            self.status.setText("Could not verify the audit log.")
            if self.ctx is not None:
                self.ctx.notifier.error(outcome.error)
        self._worker = None
        self.verify_button.setEnabled(True)

    def stop(self) -> None:
        if self._worker is not None:
            self._worker.abort()

    def shutdown(self) -> None:
        self.stop()


def _verify_job() -> Iterator[audit.AuditReport]:
    yield audit.verify()
