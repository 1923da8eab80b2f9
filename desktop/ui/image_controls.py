"""The Image studio's settings form: prompt, negative prompt, model, size, steps,
guidance, scheduler, seed, batch, class and img2img - adapting to the pack's capabilities.

The form only holds values: ``request()`` builds an ImageRequest from them and
``apply_settings()`` fills them from a reproduced image's settings.

Which values a model starts with: each model chosen starts at its pack's recommendations (size,
steps, guidance, scheduler - a Turbo pack says 1 step, guidance 0) rather than fixed defaults.
A value the person sets while a model is chosen (typed, picked, or restored from a reproduced
image) is theirs for that model for the rest of the session: switching away and back brings
it back instead of the recommendation. Nothing of this outlives the session.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QRegularExpression, Qt, Signal
from PySide6.QtGui import QRegularExpressionValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop.engines.errors import RequestError
from desktop.engines.image.capabilities import Capabilities
from desktop.engines.image.engine import ImageRequest
from desktop.engines.image.schedulers import LABELS


def _short(name: str, limit: int = 24) -> str:
    """A file name cut in the middle: a long one would widen the settings column past the
    window and push the chip's × out of sight (seen at 900×600)."""
    return name if len(name) <= limit else f"{name[: limit // 2 - 1]}…{name[-(limit // 2):]}"


class ImageControls(QWidget):
    model_chosen = Signal(str)  # pack name
    init_image_changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.caps: Capabilities | None = None
        self.init_image: np.ndarray | None = None
        self.mask: np.ndarray | None = None  # inpainting: white = repaint, over init_image
        self.init_path = ""
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.prompt = QPlainTextEdit()
        self.prompt.setPlaceholderText("Describe the picture… (Ctrl+Enter generates)")
        self.prompt.setMaximumHeight(90)
        self.negative = QPlainTextEdit()
        self.negative.setPlaceholderText("Negative prompt: what to avoid (optional)")
        self.negative.setMaximumHeight(60)
        # SDXL's second text encoder can read a prompt of its own (often a style); empty, it
        # reads the prompt above. One line each: shown only for packs that have that encoder.
        self.prompt_2 = QLineEdit()
        self.prompt_2.setPlaceholderText("Prompt 2 (style, optional): what the second text encoder reads")
        self.prompt_2.setAccessibleName("Prompt 2 (style)")
        self.negative_2 = QLineEdit()
        self.negative_2.setPlaceholderText("Negative prompt 2 (optional)")
        self.negative_2.setAccessibleName("Negative prompt 2")
        for line in (self.prompt_2, self.negative_2):
            line.setVisible(False)  # until a pack with a second text encoder is chosen
        lay.addWidget(self._armed_chip())
        lay.addWidget(self.prompt)
        lay.addWidget(self.prompt_2)
        lay.addWidget(self.negative)
        lay.addWidget(self.negative_2)
        form = QFormLayout()
        self.model = QComboBox()
        self.model.currentTextChanged.connect(lambda name: name and self.model_chosen.emit(name))
        self.width_box, self.height_box = QSpinBox(), QSpinBox()
        for box in (self.width_box, self.height_box):
            box.setRange(8, 4096)
            box.setSingleStep(8)
            box.setValue(512)
        self.fixed_size = QComboBox()
        size_row = QHBoxLayout()
        size_row.addWidget(self.width_box)
        self.times_label = QLabel("×")  # hidden with the boxes for fixed-size packs
        size_row.addWidget(self.times_label)
        size_row.addWidget(self.height_box)
        size_row.addWidget(self.fixed_size)
        self.steps = QSpinBox()
        self.steps.setRange(1, 150)
        self.guidance = QDoubleSpinBox()
        self.guidance.setRange(0.0, 30.0)
        self.guidance.setSingleStep(0.5)
        self.scheduler = QComboBox()
        self.random_seed = QCheckBox("random")
        self.random_seed.setChecked(True)
        self.seed = QLineEdit()
        self.seed.setValidator(QRegularExpressionValidator(QRegularExpression(r"\d{0,18}")))
        self.seed.setPlaceholderText("seed")
        self.random_seed.toggled.connect(lambda on: self.seed.setEnabled(not on))
        self.seed.setEnabled(False)
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(self.random_seed)
        self.batch = QSpinBox()
        self.batch.setRange(1, 16)
        self.class_label = QComboBox()
        self.form, self.rows = form, {}
        for label, widget in (
            ("Model", self.model), ("Size", size_row), ("Steps", self.steps), ("Guidance", self.guidance),
            ("Scheduler", self.scheduler), ("Seed", seed_row), ("Batch", self.batch), ("Class", self.class_label),
        ):
            self.rows[label] = form.rowCount()
            form.addRow(label, widget)
        lay.addLayout(form)
        lay.addWidget(self._img2img_box())
        self._chosen: dict[str, dict[str, object]] = {}  # model -> the values the person set for it
        self._caps_model = ""  # the model whose capabilities the form shows
        self._applying = False  # the form itself is setting values: not the person's choice
        for key, box in (("width", self.width_box), ("height", self.height_box), ("steps", self.steps), ("guidance", self.guidance)):
            box.valueChanged.connect(lambda value, key=key: self._remember(key, value))
        self.scheduler.currentIndexChanged.connect(lambda _i: self._remember("scheduler", self.scheduler.currentData()))
        self.fixed_size.currentIndexChanged.connect(lambda index: self._remember("fixed_size", index))

    def _armed_chip(self) -> QWidget:
        """Above the prompt, while a starting image is armed: every Generate is img2img
        until the "×" disarms it (a hidden armed image silently changed later prompts)."""
        chip = QFrame()
        chip.setObjectName("armedChip")
        chip.setStyleSheet("#armedChip { border: 2px solid palette(highlight); border-radius: 4px; }")
        h = QHBoxLayout(chip)
        h.setContentsMargins(6, 2, 2, 2)
        self.armed_label = QLabel()
        self.armed_label.setWordWrap(True)
        self.armed_clear = QToolButton()
        self.armed_clear.setText("×")
        self.armed_clear.setToolTip("Stop starting from this image")
        self.armed_clear.setAccessibleName("Clear the starting image")
        self.armed_clear.clicked.connect(lambda: self.set_init_image(None))
        h.addWidget(self.armed_label, 1)
        h.addWidget(self.armed_clear)
        chip.hide()
        self.armed_chip = chip
        return chip

    def _img2img_box(self) -> QWidget:
        box = QWidget()
        v = QVBoxLayout(box)
        v.setContentsMargins(0, 4, 0, 0)
        row = QHBoxLayout()
        self.init_button = QPushButton("Start from image…")
        self.init_button.clicked.connect(self._pick_init)
        self.init_clear = QPushButton("Clear")
        self.init_clear.clicked.connect(lambda: self.set_init_image(None))
        self.init_label = QLabel("no starting image")
        # a name must not widen the column past the window (the chip above the prompt shows it)
        self.init_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.init_label.setMinimumWidth(self.init_label.fontMetrics().horizontalAdvance("no starting image") + 4)
        self.mask_button = QPushButton("Paint mask…")
        self.mask_button.setToolTip("Repaint only the part you paint (inpainting)")
        self.mask_button.clicked.connect(self._paint_mask)
        row.addWidget(self.init_button)
        row.addWidget(self.init_clear)
        row.addWidget(self.mask_button)
        row.addWidget(self.init_label, 1)
        v.addLayout(row)
        srow = QHBoxLayout()
        self.strength = QSlider(Qt.Orientation.Horizontal)
        self.strength.setRange(5, 100)
        self.strength.setValue(75)
        self.strength_label = QLabel("0.75")
        self.strength.valueChanged.connect(lambda s: self.strength_label.setText(f"{s / 100:.2f}"))
        srow.addWidget(QLabel("Strength"))
        srow.addWidget(self.strength, 1)
        srow.addWidget(self.strength_label)
        v.addLayout(srow)
        self.img2img_box = box
        self.set_init_image(None)
        return box

    # -- models and capabilities -------------------------------------------------------
    def set_models(self, names: list[str], current: str = "") -> None:
        self.model.blockSignals(True)
        self.model.clear()
        self.model.addItems(names)
        if current in names:
            self.model.setCurrentText(current)
        self.model.blockSignals(False)
        if not names:
            self.model.setPlaceholderText("No image model installed")

    def apply_capabilities(self, caps: Capabilities, model: str = "") -> None:
        """Show the controls the pack of ``model`` uses, with its recommended values, or the
        values the person set for that model this session."""
        self._applying = True
        try:
            self._apply_capabilities(caps, model or self.model.currentText())
        finally:
            self._applying = False

    def _apply_capabilities(self, caps: Capabilities, model: str) -> None:
        first = self.caps is None or self.caps is not caps or model != self._caps_model
        self.caps, self._caps_model = caps, model
        self.prompt.setEnabled(caps.prompt)
        self.negative.setVisible(caps.negative_prompt)
        self.prompt_2.setVisible(caps.prompt_2)
        self.negative_2.setVisible(caps.prompt_2 and caps.negative_prompt)
        self.times_label.setVisible(caps.free_size)
        for box in (self.width_box, self.height_box):
            box.setVisible(caps.free_size)
            box.setSingleStep(caps.size_multiple)
            box.setMinimum(caps.size_multiple)
        self.fixed_size.setVisible(not caps.free_size)
        self.fixed_size.clear()
        self.fixed_size.addItems([f"{w}×{h}" for w, h in caps.sizes])
        self._show_row("Steps", caps.steps)
        self._show_row("Guidance", caps.guidance)
        self._show_row("Scheduler", bool(caps.schedulers))
        self._show_row("Class", bool(caps.classes))
        self.scheduler.clear()
        for name in caps.schedulers:
            self.scheduler.addItem(LABELS.get(name, name), name)
        self.class_label.clear()
        if caps.classes:
            self.class_label.addItem("any (random)", None)
            for label in caps.classes:
                self.class_label.addItem(label, label)
        self.img2img_box.setVisible(caps.img2img)
        self._update_armed()
        if first:
            w, h = caps.default_size
            self.width_box.setValue(w)
            self.height_box.setValue(h)
            self.steps.setValue(caps.default_steps)
            self.guidance.setValue(caps.default_guidance)
        self._restore_chosen(model)

    def _remember(self, key: str, value) -> None:
        if not self._applying and self._caps_model:
            self._chosen.setdefault(self._caps_model, {})[key] = value

    def _restore_chosen(self, model: str) -> None:
        chosen = self._chosen.get(model, {})
        for key, box in (("width", self.width_box), ("height", self.height_box), ("steps", self.steps), ("guidance", self.guidance)):
            if key in chosen:
                box.setValue(chosen[key])
        if "scheduler" in chosen and self.scheduler.findData(chosen["scheduler"]) >= 0:
            self.scheduler.setCurrentIndex(self.scheduler.findData(chosen["scheduler"]))
        if 0 <= int(chosen.get("fixed_size", -1)) < self.fixed_size.count():
            self.fixed_size.setCurrentIndex(int(chosen["fixed_size"]))

    def _show_row(self, label: str, visible: bool) -> None:
        self.form.setRowVisible(self.rows[label], visible)

    # -- img2img ---------------------------------------------------------------------------
    def _pick_init(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Starting image", "", "Images (*.png *.jpg *.jpeg *.webp *.bmp)")
        if path:
            self.load_init_image(Path(path))

    def load_init_image(self, path: Path) -> None:
        """Raises RequestError for a file that is not a readable picture."""
        from desktop.engines.image.init_image import load_init_image

        self.set_init_image(load_init_image(path), path.name)

    def _paint_mask(self) -> None:
        from desktop.ui.mask_painter import MaskPainter

        painter = MaskPainter(self.init_image, self.mask, self)
        if painter.exec():
            self.mask = painter.mask()
            self.mask_button.setText("Mask painted ✓" if self.mask is not None else "Paint mask…")

    def set_init_image(self, image: np.ndarray | None, name: str = "") -> None:
        self.init_image = image
        self.mask = None
        if hasattr(self, "mask_button"):
            self.mask_button.setText("Paint mask…")
            self.mask_button.setEnabled(image is not None)
        self.init_path = name
        self.init_label.setText(f"{_short(name)} ({image.shape[1]}×{image.shape[0]})" if image is not None else "no starting image")
        self.init_label.setToolTip(name)
        self.init_clear.setEnabled(image is not None)
        self.strength.setEnabled(image is not None)
        self._update_armed()
        self.init_image_changed.emit()

    def img2img_armed(self) -> bool:
        """Whether the next Generate starts from ``init_image``."""
        return self.init_image is not None and bool(self.caps and self.caps.img2img)

    def _update_armed(self) -> None:
        if hasattr(self, "armed_chip"):
            self.armed_label.setText(f"Starting from {_short(self.init_path) or 'an image'} (img2img)")
            self.armed_chip.setToolTip(self.init_path)
            self.armed_chip.setVisible(self.img2img_armed())

    # -- values ----------------------------------------------------------------------------
    def size(self) -> tuple[int, int]:
        caps = self.caps
        if caps and not caps.free_size and caps.sizes:
            return caps.sizes[max(self.fixed_size.currentIndex(), 0)]
        return self.width_box.value(), self.height_box.value()

    def request(self) -> ImageRequest:
        caps = self.caps or Capabilities(prompt=True, negative_prompt=True, steps=True, guidance=True)  # no model yet: offer everything
        seed_text = self.seed.text().strip()
        if not self.random_seed.isChecked() and not seed_text:
            raise RequestError("Type a seed, or tick 'random'.")
        w, h = self.size()
        return ImageRequest(
            prompt=self.prompt.toPlainText().strip() if caps.prompt else "",
            negative_prompt=self.negative.toPlainText().strip() if caps.negative_prompt else "",
            prompt_2=self.prompt_2.text().strip() if caps.prompt_2 else "",
            negative_prompt_2=self.negative_2.text().strip() if caps.prompt_2 and caps.negative_prompt else "",
            width=w,
            height=h,
            steps=self.steps.value() if caps.steps else None,
            guidance=self.guidance.value() if caps.guidance else None,
            scheduler=self.scheduler.currentData() or "",
            seed=None if self.random_seed.isChecked() else int(seed_text),
            batch_count=self.batch.value(),
            init_image=self.init_image if caps.img2img else None,
            mask=self.mask if caps.img2img else None,
            strength=self.strength.value() / 100,
            class_label=self.class_label.currentData() if caps.classes else None,
            capabilities=self.caps,
        )

    def apply_settings(self, s: dict) -> None:
        """Fill the form from a reproduced image's (schema-checked) settings."""
        self.prompt.setPlainText(s.get("prompt", ""))
        self.negative.setPlainText(s.get("negative_prompt", ""))
        self.prompt_2.setText(s.get("prompt_2", ""))
        self.negative_2.setText(s.get("negative_prompt_2", ""))
        if s.get("width") and s.get("height"):
            self.width_box.setValue(s["width"])
            self.height_box.setValue(s["height"])
            i = self.fixed_size.findText(f"{s['width']}×{s['height']}")
            if i >= 0:
                self.fixed_size.setCurrentIndex(i)
        if s.get("steps"):
            self.steps.setValue(s["steps"])
        if s.get("guidance") is not None:
            self.guidance.setValue(float(s["guidance"]))
        if s.get("scheduler"):
            i = self.scheduler.findData(s["scheduler"])
            if i >= 0:
                self.scheduler.setCurrentIndex(i)
        if s.get("seed") is not None:
            self.random_seed.setChecked(False)
            self.seed.setText(str(s["seed"]))
        self.batch.setValue(1)
        if s.get("class_label"):
            i = self.class_label.findData(s["class_label"])
            if i >= 0:
                self.class_label.setCurrentIndex(i)
        if s.get("strength"):
            self.strength.setValue(int(round(float(s["strength"]) * 100)))

