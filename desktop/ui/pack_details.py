"""The right-hand side of the model library: everything known about one pack.

Facts come from the manifest (desktop/pack_info.py); the model card and the validation
report are rendered markdown with raw HTML switched off, because both come from the pack
and a pack is untrusted input. Buttons only emit signals; the LibraryPage does the work.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import (
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from desktop.engines.packs.library import PackEntry
from desktop.pack_info import facts, validation_summary
from desktop.ui.library_image_facts import image_rows, licence_label, licence_markdown
from desktop.ui.tone import ToneLabel

# Markdown from a pack may not smuggle HTML (forms, remote images) into the window.
_UNTRUSTED_MARKDOWN = QTextDocument.MarkdownFeature(
    QTextDocument.MarkdownFeature.MarkdownDialectGitHub.value | QTextDocument.MarkdownFeature.MarkdownNoHTML.value
)
# integrity state -> tone: palette-derived colours, readable in both themes (tone.py)
INTEGRITY_TONES = {"verified": "ok", "failed": "bad", "unknown": "muted"}


class PackDetails(QWidget):
    verify_requested = Signal()
    remove_requested = Signal()
    open_folder_requested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        # the facts scroll: an image pack has ~17 rows, which would otherwise set the window's
        # minimum height past the smallest supported window (900×600)
        top = QWidget()
        lay = QVBoxLayout(top)
        self.facts_scroll = QScrollArea()
        self.facts_scroll.setWidget(top)
        self.facts_scroll.setWidgetResizable(True)
        self.facts_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.facts_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.facts_scroll.setMinimumHeight(120)
        self.facts_scroll.viewport().setAutoFillBackground(False)  # the page's background, not a grey box
        top.setAutoFillBackground(False)
        outer.addWidget(self.facts_scroll, 3)
        self.title = QLabel()
        self.title.setStyleSheet("font-size: 16pt; font-weight: 600;")
        self.title.setWordWrap(True)
        lay.addWidget(self.title)
        self.problem = ToneLabel(tone="bad")
        self.problem.setWordWrap(True)
        lay.addWidget(self.problem)
        self.form = QFormLayout()
        lay.addLayout(self.form)

        integrity_row = QHBoxLayout()
        self.integrity = ToneLabel()
        self.integrity.setWordWrap(True)
        self.verify_button = QPushButton("Verify integrity")
        self.verify_button.setToolTip("Re-hash every file and compare with the manifest's SHA-256")
        self.verify_button.clicked.connect(self.verify_requested)
        integrity_row.addWidget(self.integrity, 1)
        integrity_row.addWidget(self.verify_button)
        lay.addLayout(integrity_row)

        actions = QHBoxLayout()
        self.open_button = QPushButton("Open folder")
        self.open_button.clicked.connect(self.open_folder_requested)
        self.remove_button = QPushButton("Remove…")
        self.remove_button.clicked.connect(self.remove_requested)
        actions.addWidget(self.open_button)
        actions.addWidget(self.remove_button)
        actions.addStretch(1)
        lay.addLayout(actions)

        self.tabs = QTabWidget()
        self.card = QTextBrowser()
        self.card.setOpenExternalLinks(False)  # a link in a model card never opens by itself
        self.validation = QTextBrowser()
        self.tabs.addTab(self.card, "Model card")
        self.tabs.addTab(self.validation, "Validation report")
        self.licence = QTextBrowser()
        self.licence.setOpenExternalLinks(False)
        self.tabs.addTab(self.licence, "Licence")
        self.tabs.setMinimumHeight(120)
        outer.addWidget(self.tabs, 2)
        self.show_entry(None)

    def show_entry(self, entry: PackEntry | None, integrity: str = "unknown", integrity_text: str = "") -> None:
        while self.form.rowCount():
            self.form.removeRow(0)
        has = entry is not None
        for w in (self.verify_button, self.open_button, self.remove_button):
            w.setEnabled(has)
        self.verify_button.setEnabled(has and entry.manifest is not None)
        if entry is None:
            self.title.setText("No model selected")
            self.problem.hide()
            self.integrity.clear()
            self.card.clear()
            self.validation.clear()
            self.licence.clear()
            return
        self.title.setText(entry.name)
        self.problem.setVisible(bool(entry.problem))
        self.problem.setText(f"This pack cannot be used: {entry.problem}" if entry.problem else "")
        if entry.manifest is None:
            self.integrity.clear()
            self.card.clear()
            self.validation.clear()
            self.licence.clear()
            return
        rows = facts(entry).rows()
        # an image pack's family, size and recommended settings sit right under its architecture
        at = next((i + 1 for i, (label, _) in enumerate(rows) if label == "Architecture"), len(rows))
        rows[at:at] = image_rows(entry.manifest)
        for label, value in rows:
            if label == "Licence":
                value = licence_label(entry.manifest) + " - see the Licence tab"
            value_label = QLabel(value)
            value_label.setWordWrap(True)
            self.form.addRow(f"{label}:", value_label)
        self.set_integrity(integrity, integrity_text)
        card = entry.manifest.get("model_card") or "_No model card was shipped with this pack._"
        self.card.document().setMarkdown(card, _UNTRUSTED_MARKDOWN)
        self.validation.document().setMarkdown(validation_summary(entry.manifest), _UNTRUSTED_MARKDOWN)
        self.licence.document().setMarkdown(licence_markdown(entry), _UNTRUSTED_MARKDOWN)

    def set_integrity(self, state: str, text: str = "") -> None:
        default = {
            "verified": "Verified: every file matches its SHA-256.",
            "failed": "Integrity check FAILED.",
            "unknown": "Integrity not checked yet (files are also verified each time the model loads).",
        }[state]
        self.integrity.setText(text or default)
        self.integrity.set_tone(INTEGRITY_TONES[state])
        self.integrity_state = state
