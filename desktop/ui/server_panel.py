"""Settings -> "Local API server": start and stop the OpenAI-compatible server from the
window (the same server as ``python main.py serve``).

Loopback only from here: serving to other machines needs an API key, which belongs on
the command line (``--api-key-file``), not in a toggle. Starting (importing FastAPI,
scanning the library, binding) and stopping (draining requests) run in a worker, never
on the GUI thread; the label says where clients should point.
"""

from __future__ import annotations

from typing import Iterator

from PySide6.QtWidgets import QCheckBox, QFormLayout, QGroupBox, QLabel, QSpinBox

from desktop.workers import GeneratorWorker, start


class ServerPanel(QGroupBox):
    def __init__(self, parent=None):
        super().__init__("Local API server", parent)
        self.server = None  # desktop.server.run.ApiServer while serving
        self._worker: GeneratorWorker | None = None
        form = QFormLayout(self)
        self.toggle = QCheckBox("Serve the library to OpenAI-compatible apps on this computer")
        self.port = QSpinBox()
        self.port.setRange(1024, 65535)
        from desktop.server.config import DEFAULT_PORT

        self.port.setValue(DEFAULT_PORT)
        self.status = QLabel("Off.")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(self.status.textInteractionFlags() | self.status.textInteractionFlags().TextSelectableByMouse)
        form.addRow(self.toggle)
        form.addRow("Port:", self.port)
        form.addRow("", self.status)
        self.toggle.toggled.connect(self._on_toggled)

    def _on_toggled(self, on: bool) -> None:
        self.toggle.setEnabled(False)
        self.port.setEnabled(False)
        self.status.setText("Starting…" if on else "Stopping…")
        job = _start_server(self.port.value()) if on else _stop_server(self.server)
        self._worker = GeneratorWorker(lambda: job)
        self._worker.signals.yielded.connect(self._on_result)
        self._worker.signals.errored.connect(self._on_error)
        self._worker.signals.finished.connect(lambda: self.toggle.setEnabled(True))
        start(self._worker)

    def _on_result(self, server) -> None:
        self.server = server
        if server is None:
            self.status.setText("Off.")
            self.port.setEnabled(True)
        else:
            self.status.setText(f"Serving at {server.url} - point any OpenAI client there (any API key works on this computer).")

    def _on_error(self, exc) -> None:
        self.server = None
        self.status.setText(f"Could not start: {exc}")
        self.port.setEnabled(True)
        self.toggle.blockSignals(True)
        self.toggle.setChecked(False)
        self.toggle.blockSignals(False)

    def shutdown(self) -> None:
        """Stop serving (window closing); blocks up to the server's drain timeout."""
        if self.server is not None:
            self.server.stop()
            self.server = None


def _start_server(port: int) -> Iterator:
    from desktop.server.config import ServerConfig
    from desktop.server.run import ApiServer

    yield ApiServer(ServerConfig(port=port)).start()


def _stop_server(server) -> Iterator:
    if server is not None:
        server.stop()
    yield None
