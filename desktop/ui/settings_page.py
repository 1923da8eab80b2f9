"""Settings: execution provider and threads, output folder, theme, history, context window,
the data folder and the audit log, and the Offline status.

The page scrolls, so every group stays reachable in a small window. Changes are kept
only by Save; closing the window with unsaved changes asks (``confirm_close``).

Values persist through desktop/settings.py (QSettings). Which providers onnxruntime
offers is asked in a worker when the page is first shown, because importing onnxruntime
costs time the window's start-up must not pay. A provider that is not installed can still
be chosen (the setting may travel to a machine that has it), but saving it says plainly
that models will run on the fallback, using the same rule the engines apply.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFrame,
    QMessageBox,
    QScrollArea,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from desktop.engines.errors import RequestError
from desktop.engines.providers import CHOICES, max_threads, resolve_order
from desktop.offline.checks import CheckResult, run_checks
from desktop.engines.packs.library import data_dir
from desktop.settings import AppSettings
from desktop.ui.open_folder import open_folder
from desktop.ui.server_panel import ServerPanel
from desktop.ui.theme import THEMES
from desktop.workers import GeneratorWorker, start

PROVIDER_LABELS = {"auto": "Automatic (best available)", "cuda": "CUDA (NVIDIA GPU)", "directml": "DirectML (Windows GPU)", "cpu": "CPU"}
THEME_LABELS = {"system": "Follow the system", "light": "Light", "dark": "Dark"}


class SettingsPage(QWidget):
    def __init__(self, ctx):
        super().__init__()
        self.ctx = ctx
        self.available: list[str] | None = None  # onnxruntime provider names, once known
        self._probe: GeneratorWorker | None = None
        self._checks: GeneratorWorker | None = None
        self.offline_results: list[CheckResult] = []
        self._build()
        self.show_values(ctx.settings.load())

    def _build(self) -> None:
        runtime = QGroupBox("Running models")
        rf = QFormLayout(runtime)
        self.provider = QComboBox()
        for choice in CHOICES:
            self.provider.addItem(PROVIDER_LABELS[choice], choice)
        self.offered = QLabel("Checking what onnxruntime offers…")
        self.offered.setWordWrap(True)
        self.threads = QSpinBox()
        self.threads.setRange(0, max_threads())  # the runtime's own bound (providers.py)
        self.threads.setSpecialValueText("Automatic")
        self.threads.setToolTip(f"CPU threads per model; this machine has {os.cpu_count()} logical cores")
        self.context_window = QSpinBox()
        self.context_window.setRange(256, 131072)
        self.context_window.setSingleStep(512)
        self.context_window.setSuffix(" tokens")
        rf.addRow("Execution provider:", self.provider)
        rf.addRow("", self.offered)
        rf.addRow("Threads:", self.threads)
        rf.addRow("Chat context window:", self.context_window)

        general = QGroupBox("General")
        gf = QFormLayout(general)
        row = QHBoxLayout()
        self.output_dir = QLineEdit()
        self.output_dir.setPlaceholderText("Not set: the app's data folder")
        self.output_dir.setToolTip("Where the studios save new images (images/) and clips (clips/), and where \u201cSave as\u2026\u201d and Export dialogs open")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_output)
        row.addWidget(self.output_dir, 1)
        row.addWidget(browse)
        self.theme = QComboBox()
        for t in THEMES:
            self.theme.addItem(THEME_LABELS[t], t)
        self.history_days = QSpinBox()
        self.history_days.setRange(0, 3650)
        self.history_days.setSpecialValueText("Forever")
        self.history_days.setSuffix(" days")
        gf.addRow("Default output folder:", row)
        gf.addRow("Theme:", self.theme)
        gf.addRow("Keep chat history:", self.history_days)

        buttons = QHBoxLayout()
        self.save_button = QPushButton("Save")
        self.save_button.clicked.connect(self.save)
        defaults = QPushButton("Restore defaults")
        defaults.clicked.connect(lambda: self.show_values(AppSettings()))
        buttons.addStretch(1)
        buttons.addWidget(defaults)
        buttons.addWidget(self.save_button)

        offline = QGroupBox("Offline")
        ol = QVBoxLayout(offline)
        intro = QLabel("Atelier has no accounts, update checks or telemetry, and never downloads models. What was checked:")
        intro.setWordWrap(True)
        self.offline_status = QLabel("Not checked yet.")
        self.offline_status.setWordWrap(True)
        recheck = QPushButton("Check again")
        recheck.clicked.connect(self.run_offline_checks)
        ol.addWidget(intro)
        ol.addWidget(self.offline_status)
        ol.addWidget(recheck)

        files = QGroupBox("Your files")
        fl = QVBoxLayout(files)
        where = QLabel(f"Models, gallery, clips, chat history and the audit log are kept in {data_dir()}")
        where.setWordWrap(True)
        where.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        frow = QHBoxLayout()
        open_data = QPushButton("Open data folder")
        open_data.clicked.connect(lambda: open_folder(data_dir(), self))
        self.audit_button = QPushButton("Audit log…")
        self.audit_button.setToolTip("Every generation, chained by SHA-256 so edits are detected")
        self.audit_button.clicked.connect(self.show_audit_log)
        frow.addWidget(open_data)
        frow.addWidget(self.audit_button)
        frow.addStretch(1)
        fl.addWidget(where)
        fl.addLayout(frow)

        content = QWidget()
        lay = QVBoxLayout(content)
        for w in (runtime, general):
            lay.addWidget(w)
        lay.addLayout(buttons)
        lay.addWidget(files)
        lay.addWidget(offline)
        self.server_panel = ServerPanel()  # Local API server: off until the person turns it on
        lay.addWidget(self.server_panel)
        lay.addStretch(1)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setWidget(content)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.scroll)

    # -- values -------------------------------------------------------------------------
    def show_values(self, s: AppSettings) -> None:
        self.provider.setCurrentIndex(max(0, self.provider.findData(s.provider)))
        self.threads.setValue(s.threads)
        self.context_window.setValue(s.context_window)
        self.output_dir.setText(s.output_dir)
        self.theme.setCurrentIndex(max(0, self.theme.findData(s.theme)))
        self.history_days.setValue(s.history_days)

    def values(self) -> AppSettings:
        return AppSettings(
            provider=self.provider.currentData(),
            threads=self.threads.value(),
            output_dir=self.output_dir.text().strip(),
            theme=self.theme.currentData(),
            history_days=self.history_days.value(),
            context_window=self.context_window.value(),
        )

    def save(self) -> bool:
        values = self.values()
        if values.output_dir:
            folder = Path(values.output_dir).expanduser()
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                self.ctx.notifier.error(RequestError(f"The output folder '{folder}' cannot be created ({exc.strerror}). Choose another one."))
                return False
            values.output_dir = str(folder)
        self.ctx.settings.save(values)
        self.ctx.notifier.info("Settings saved. Provider and threads apply the next time a model loads.")
        self._explain_provider(values.provider)
        self.ctx.events.settings_changed.emit()
        return True

    # -- unsaved changes and the audit log -----------------------------------------------------
    def unsaved(self) -> bool:
        """Whether the form differs from what is stored."""
        shown, stored = self.values(), self.ctx.settings.load()
        same_folder = Path(shown.output_dir).expanduser() == Path(stored.output_dir).expanduser() if shown.output_dir and stored.output_dir else shown.output_dir == stored.output_dir
        shown.output_dir = stored.output_dir
        return not same_folder or shown != stored

    def confirm_close(self) -> bool:
        """Before the window closes: unsaved changes are saved, dropped or the close is
        cancelled, as the person says. Returns whether the window may close."""
        if not self.unsaved():
            return True
        buttons = QMessageBox.StandardButton
        answer = QMessageBox.question(
            self, "Unsaved settings", "Some settings were changed but not saved. Save them before closing?",
            buttons.Save | buttons.Discard | buttons.Cancel, buttons.Save,
        )
        if answer == buttons.Save:
            return self.save()  # a folder that cannot be made keeps the window open, with the reason
        return answer == buttons.Discard

    def shutdown(self) -> None:
        """The window is closing: a running local API server stops with it."""
        self.server_panel.shutdown()

    def show_audit_log(self) -> QDialog:
        from desktop.ui.audit_view import AuditView

        dialog = QDialog(self)
        dialog.setWindowTitle("Audit log")
        dialog.resize(860, 480)
        lay = QVBoxLayout(dialog)
        view = AuditView(self.ctx, dialog)
        lay.addWidget(view)
        dialog.audit_view = view
        view.refresh()
        view.verify()
        dialog.show()
        self.audit_dialog = dialog
        return dialog

    def _explain_provider(self, requested: str) -> None:
        """Say now, not at the next load, when the chosen provider cannot be honoured."""
        if self.available is None or requested == "auto":
            return
        _order, reason = resolve_order(requested, self.available)
        if reason:
            self.ctx.notifier.warning(f"{reason} Models will run on CPU instead.")

    def _browse_output(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Default output folder", self.output_dir.text())
        if folder:
            self.output_dir.setText(folder)

    # -- background probes -----------------------------------------------------------------
    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self.available is None and self._probe is None:
            self.probe_providers()
        if self._checks is None and self.offline_status.text() == "Not checked yet.":
            self.run_offline_checks()

    def probe_providers(self) -> GeneratorWorker:
        self._probe = GeneratorWorker(_available_providers)
        self._probe.signals.yielded.connect(self._on_providers)
        self._probe.signals.errored.connect(self.ctx.notifier.error)
        return start(self._probe)

    def _on_providers(self, available: list[str]) -> None:
        from desktop.engines.providers import PROVIDERS

        self.available = available
        offered = [name for name, ort_name in PROVIDERS.items() if ort_name in available] or ["cpu"]
        for i in range(self.provider.count()):
            choice = self.provider.itemData(i)
            missing = choice not in ("auto", *offered)
            self.provider.setItemText(i, PROVIDER_LABELS[choice] + (" - not installed" if missing else ""))
        self.offered.setText(f"This onnxruntime build offers: {', '.join(p.upper() for p in offered)}.")

    def run_offline_checks(self) -> GeneratorWorker | None:
        """Run the checks registered in desktop/offline/checks.py; some scan the app's
        sources, so they run in a worker."""
        if self._checks is not None:
            return None
        self.offline_status.setText("Checking…")
        self._check_results: list[CheckResult] = []
        self._checks = GeneratorWorker(run_checks)
        # bound methods, not lambdas: Qt drops them if the page is gone before the checks end
        self._checks.signals.yielded.connect(self._add_check)
        self._checks.signals.errored.connect(self.ctx.notifier.error)
        self._checks.signals.finished.connect(self._show_checks)
        return start(self._checks)

    def _add_check(self, result: CheckResult) -> None:
        self._check_results.append(result)

    def _show_checks(self) -> None:
        results = self._check_results
        self._checks = None
        self.offline_results = results
        failed = [r.name for r in results if not r.ok]
        summary = "Offline: verified." if results and not failed else f"Offline: check {', '.join(failed)}." if failed else "No checks are registered."
        self.offline_status.setText("\n".join([summary, *(f"{'✓' if r.ok else '✗'} {r.name}: {r.detail}" for r in results)]))


def _available_providers() -> Iterator[list[str]]:
    from desktop.engines.providers import available_providers

    yield available_providers()
