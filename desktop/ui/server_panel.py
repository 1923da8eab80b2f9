"""Settings -> "Local API server": start and stop the OpenAI-compatible server from the
window (the same server as ``python main.py serve``), with its URL, API key and a live
log of the requests it answers.

Loopback only from here; serving to other machines belongs on the command line. Even on
loopback the panel's server asks for a key: any program of any local user could reach
the port otherwise. The key is generated on first enable and kept owner-only in the
config folder (desktop/server/api_key.py); regenerating asks first because every client
configured with the old key stops working.

Starting (importing FastAPI, scanning the library, binding, reading the key) and stopping
(draining requests) run in a worker, never on the GUI thread. Log rows arrive on the
server's thread and cross to the GUI thread through a queued signal.
"""

from __future__ import annotations

import time
from typing import Iterator

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
)

from desktop.workers import GeneratorWorker, start

LOG_ROWS = 100  # newest first; older rows drop off the bottom
COLUMNS = ("Time", "Method", "Path", "Model", "Status", "Duration", "Tokens")


class ServerPanel(QGroupBox):
    row_arrived = Signal(object)  # a RequestRow, emitted on the server's thread

    def __init__(self, parent=None):
        super().__init__("Local API server", parent)
        from desktop.server.api_key import read_key
        from desktop.server.config import DEFAULT_PORT

        self.server = None  # desktop.server.run.ApiServer while serving
        self._worker: GeneratorWorker | None = None
        form = QFormLayout(self)
        self.toggle = QCheckBox("Serve the library to OpenAI-compatible apps on this computer")
        self.port = QSpinBox()
        self.port.setRange(1024, 65535)
        self.port.setValue(DEFAULT_PORT)
        self.status = QLabel("Off.")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.url = QLineEdit()
        self.url.setReadOnly(True)
        self.url.setPlaceholderText("Shown while serving")
        self.copy_url = QPushButton("Copy")
        self.copy_url.clicked.connect(lambda: self._copy(self.url.text()))
        url_row = QHBoxLayout()
        url_row.addWidget(self.url, 1)
        url_row.addWidget(self.copy_url)

        self.key = QLineEdit(read_key() or "")
        self.key.setReadOnly(True)
        self.key.setPlaceholderText("Created when you first turn the server on")
        self.key.setAccessibleName("API key")
        self.copy_key = QPushButton("Copy")
        self.copy_key.clicked.connect(lambda: self._copy(self.key.text()))
        self.regenerate = QPushButton("Regenerate…")
        self.regenerate.setToolTip("Make a new key; apps using the old one must be given the new one.")
        self.regenerate.clicked.connect(self._on_regenerate)
        key_row = QHBoxLayout()
        key_row.addWidget(self.key, 1)
        key_row.addWidget(self.copy_key)
        key_row.addWidget(self.regenerate)
        self._key_buttons()

        self.log = QTableWidget(0, len(COLUMNS))
        self.log.setHorizontalHeaderLabels(COLUMNS)
        self.log.verticalHeader().setVisible(False)
        self.log.verticalHeader().setDefaultSectionSize(self.log.fontMetrics().height() + 6)  # more rows in view at 900x600
        self.log.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.log.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.log.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.log.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.log.setMinimumHeight(160)
        self.row_arrived.connect(self._add_row, Qt.ConnectionType.QueuedConnection)
        self._listener = self.row_arrived.emit  # one object, so unsubscribing finds it

        form.addRow(self.toggle)
        form.addRow("Port:", self.port)
        form.addRow("", self.status)
        form.addRow("URL:", url_row)
        form.addRow("API key:", key_row)
        form.addRow(QLabel("Requests (newest first):"))
        form.addRow(self.log)
        self.toggle.toggled.connect(self._on_toggled)

    # -- serving -------------------------------------------------------------------------

    def _on_toggled(self, on: bool) -> None:
        self.toggle.setEnabled(False)
        self.port.setEnabled(False)
        self.regenerate.setEnabled(False)
        self.status.setText("Starting…" if on else "Stopping…")
        job = _start_server(self.port.value()) if on else _stop_server(self.server, self._listener)
        self._worker = GeneratorWorker(lambda: job)
        self._worker.signals.yielded.connect(self._on_result)
        self._worker.signals.errored.connect(self._on_error)
        self._worker.signals.finished.connect(self._on_finished)
        start(self._worker)

    def _on_result(self, result) -> None:
        if result is None:
            self.server = None
            self.status.setText("Off.")
            self.url.clear()
            self.port.setEnabled(True)
            return
        server, key = result
        self.server = server
        self.key.setText(key)
        self.url.setText(server.url)
        server.request_log.subscribe(self._listener)  # server thread -> queued to the GUI
        self.status.setText(f"Serving at {server.url} - point any OpenAI client there with the API key below.")

    def _on_error(self, exc) -> None:
        self.server = None
        self.status.setText(f"Could not start: {exc}")
        self.port.setEnabled(True)
        self.toggle.blockSignals(True)
        self.toggle.setChecked(False)
        self.toggle.blockSignals(False)

    def _on_finished(self) -> None:
        self.toggle.setEnabled(True)
        self._key_buttons()

    def _key_buttons(self) -> None:
        has_key = bool(self.key.text())
        self.copy_key.setEnabled(has_key)
        self.regenerate.setEnabled(has_key)

    # -- key and log ---------------------------------------------------------------------

    def confirm_regenerate(self) -> bool:
        answer = QMessageBox.question(
            self, "Regenerate API key",
            "Make a new API key? Every app that uses the current key will be refused until you give it the new one.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Cancel,
        )
        return answer == QMessageBox.StandardButton.Yes

    def _on_regenerate(self) -> None:
        from desktop.server.api_key import regenerate_key

        if not self.confirm_regenerate():
            return
        try:
            key = regenerate_key()  # a 60-byte file: quick enough for the GUI thread
        except OSError as exc:
            self.status.setText(f"Could not save a new key: {exc}")
            return
        self.key.setText(key)
        if self.server is not None:
            self.server.config.api_key = key  # the running server checks the new key from the next request
        self._key_buttons()

    def _copy(self, text: str) -> None:
        if text:
            QGuiApplication.clipboard().setText(text)

    def _add_row(self, row) -> None:
        values = (
            time.strftime("%H:%M:%S", time.localtime(row.when)), row.method, row.path, row.model or "",
            str(row.status), f"{row.duration_s:.2f} s", "" if row.tokens is None else str(row.tokens),
        )
        self.log.insertRow(0)
        for col, value in enumerate(values):
            self.log.setItem(0, col, QTableWidgetItem(value))
        while self.log.rowCount() > LOG_ROWS:
            self.log.removeRow(self.log.rowCount() - 1)

    def shutdown(self) -> None:
        """Stop serving (window closing); blocks up to the server's drain timeout."""
        if self.server is not None:
            self.server.request_log.unsubscribe(self._listener)
            self.server.stop()
            self.server = None


def _start_server(port: int) -> Iterator:
    from desktop.server.api_key import load_or_create_key
    from desktop.server.config import ServerConfig
    from desktop.server.run import ApiServer

    key = load_or_create_key()
    yield ApiServer(ServerConfig(port=port, api_key=key)).start(), key


def _stop_server(server, listener) -> Iterator:
    if server is not None:
        server.request_log.unsubscribe(listener)
        server.stop()
    yield None
