"""Morph controls for latent-space packs (GAN, VAE): two seeds, a frame count, a slider
over the frames, and saving them as an animated GIF or WebP.

The panel holds frames and values only; the studio runs the job (one at a time, with
Cancel) and hands frames in with ``add_frame``.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRegularExpression, Qt, Signal
from PySide6.QtGui import QRegularExpressionValidator
from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QLineEdit, QPushButton, QSlider, QSpinBox, QVBoxLayout

from desktop.engines.errors import RequestError


class MorphPanel(QGroupBox):
    run_requested = Signal(int, int, int)  # seed a, seed b, frames
    save_requested = Signal()
    frame_shown = Signal(object)  # HxWx3 uint8
    problem = Signal(object)  # an AtelierError for the notifier

    def __init__(self, parent=None):
        super().__init__("Morph between two seeds", parent)
        self.frames: list[np.ndarray] = []
        self.records: list[dict] = []
        v = QVBoxLayout(self)
        row = QHBoxLayout()
        digits = QRegularExpressionValidator(QRegularExpression(r"\d{1,18}"))
        self.seed_a, self.seed_b = QLineEdit("1"), QLineEdit("2")
        for box in (self.seed_a, self.seed_b):
            box.setValidator(digits)
            box.setMaximumWidth(110)
        self.count = QSpinBox()
        self.count.setRange(2, 120)
        self.count.setValue(24)
        self.make = QPushButton("Make frames")
        self.make.clicked.connect(self._run)
        for w in (QLabel("Seed A"), self.seed_a, QLabel("Seed B"), self.seed_b, QLabel("Frames"), self.count, self.make):
            row.addWidget(w)
        v.addLayout(row)
        srow = QHBoxLayout()
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setEnabled(False)
        self.slider.valueChanged.connect(self._show)
        self.position = QLabel("–")
        self.save = QPushButton("Save GIF/WebP…")
        self.save.setEnabled(False)
        self.save.clicked.connect(self.save_requested.emit)
        srow.addWidget(self.slider, 1)
        srow.addWidget(self.position)
        srow.addWidget(self.save)
        v.addLayout(srow)

    def _run(self) -> None:
        try:
            a, b = int(self.seed_a.text()), int(self.seed_b.text())
        except ValueError:
            self.problem.emit(RequestError("Type two seeds (whole numbers) to morph between."))
            return
        self.run_requested.emit(a, b, self.count.value())

    def clear(self) -> None:
        self.frames, self.records = [], []
        self.slider.setEnabled(False)
        self.save.setEnabled(False)
        self.position.setText("–")

    def add_frame(self, image: np.ndarray, metadata: dict) -> None:
        self.frames.append(image)
        self.records.append(metadata)
        self.slider.setRange(0, len(self.frames) - 1)
        self.slider.setEnabled(True)
        self.save.setEnabled(len(self.frames) >= 2)
        self.slider.setValue(len(self.frames) - 1)
        self._show(len(self.frames) - 1)

    def _show(self, index: int) -> None:
        if 0 <= index < len(self.frames):
            self.position.setText(f"{index + 1}/{len(self.frames)}")
            self.frame_shown.emit(self.frames[index])
