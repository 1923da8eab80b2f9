"""The Chat side panel: model picker with pack facts, system prompt, sampling settings, the
chat's context policy and how Enter behaves in the composer.

Sampling settings are a preset per model (QSettings ``chat_presets/<model>/...``; not the
group ``general``, which QSettings' INI format writes as ``[%General]`` and loses): a
change is kept at once, and picking a model brings its own values back, across restarts.
The system prompt a model was last used with is the default for its new chats.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QPlainTextEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from desktop.engines.text.sampling import SamplingSettings
from desktop.ui.chat_reply import POLICIES
from desktop.ui.tone import ToneLabel


def pack_summary(manifest: dict) -> str:
    """One paragraph a person can read: precision, size, RAM, validation."""
    size = sum(f.get("bytes", 0) for f in manifest.get("files", []))
    ram = (manifest.get("config") or {}).get("estimated_ram_bytes") or int(size * 1.3)
    parts = [f"{manifest.get('architecture', '?')} · {manifest.get('precision', '?')} · {size / 2**20:.0f} MB on disk · ~{ram / 2**20:.0f} MB RAM"]
    validation = manifest.get("validation") or {}
    report = (validation.get("reports") or {}).get(manifest.get("precision", ""), {})
    if "teacher_forced_agreement" in report:
        parts.append(
            f"vs PyTorch fp32: greedy agreement {report['teacher_forced_agreement']:.0%}, "
            f"perplexity ×{report.get('perplexity_ratio', float('nan')):.3f}" + ("" if validation.get("passed_floor", True) else " (below floor, forced)")
        )
    elif manifest.get("source", {}).get("kind"):
        parts.append(f"imported from {manifest['source']['kind']}; not validated by Atelier")
    return "\n".join(parts)


class ChatSettingsPanel(QWidget):
    model_chosen = Signal(str)
    policy_chosen = Signal(str)  # a key of POLICIES, picked by the user

    def __init__(self, settings=None, parent=None):
        super().__init__(parent)
        self.settings = settings
        lay = QVBoxLayout(self)
        form = QFormLayout()
        self.model = QComboBox()
        self.model.setToolTip("Text models in your library")
        self.model.currentIndexChanged.connect(self._on_model)
        form.addRow("Model", self.model)
        self.model_info = ToneLabel()
        self.model_info.setWordWrap(True)
        form.addRow(self.model_info)
        self.system = QPlainTextEdit()
        self.system.setPlaceholderText("System prompt (optional): how the assistant should behave")
        self.system.setMaximumHeight(90)
        form.addRow("System", self.system)
        d = SamplingSettings()
        self.temperature = _dspin(0, 5, 0.05, d.temperature, "0 = greedy (always the most likely token)")
        self.top_k = _ispin(0, 1000, d.top_k, "Sample only among the k most likely tokens (0 = off)")
        self.top_p = _dspin(0.01, 1, 0.01, d.top_p, "Nucleus sampling: smallest set with this probability mass")
        self.repetition = _dspin(0.5, 3, 0.01, d.repetition_penalty, "Penalise tokens used recently (1 = off)")
        self.max_tokens = _ispin(1, 32768, 512, "Longest reply, in tokens")
        self.fixed_seed = QCheckBox("Fixed seed")
        self.seed = _ispin(0, 2**31 - 1, 42, "Same seed + same settings = same text")
        self.seed.setEnabled(False)
        self.fixed_seed.toggled.connect(self.seed.setEnabled)
        self._loading_preset = False
        for w in (self.temperature, self.top_k, self.top_p, self.repetition, self.max_tokens, self.seed):
            w.valueChanged.connect(self._save_preset)
        self.fixed_seed.toggled.connect(self._save_preset)
        for label, w in (("Temperature", self.temperature), ("Top-k", self.top_k), ("Top-p", self.top_p), ("Repetition penalty", self.repetition), ("Max tokens", self.max_tokens)):
            form.addRow(label, w)
        form.addRow(self.fixed_seed, self.seed)
        self.policy = QComboBox()
        for key, label in POLICIES.items():
            self.policy.addItem(label, key)
        self.policy.setToolTip(
            "What this chat does when it outgrows the model's context window:\n"
            "Stop at the limit: refuse the message, saying how many tokens it needs.\n"
            "Truncate the middle: keep the system prompt, the first exchange and the latest turns.\n"
            "Rolling window: keep the system prompt and the latest turns, drop the oldest."
        )
        self.policy.activated.connect(lambda _i: self.policy_chosen.emit(self.policy_key()))
        form.addRow("Context overflow", self.policy)
        self.enter_sends = QCheckBox("Enter sends (Shift+Enter: new line)")
        self.enter_sends.setToolTip("Off: Enter adds a line and Ctrl+Enter sends")
        form.addRow(self.enter_sends)
        lay.addLayout(form)
        lay.addStretch(1)
        self._manifests: dict[str, dict] = {}

    def set_models(self, entries: list, current: str | None) -> None:
        self.model.blockSignals(True)
        self.model.clear()
        self._manifests = {}
        for e in entries:
            if e.manifest and e.manifest.get("modality") == "text":
                self._manifests[e.name] = e.manifest
                self.model.addItem(f"{e.name} ({e.manifest.get('precision')})", e.name)
        if self.model.count() == 0:
            self.model.addItem("No text model installed", None)
        idx = self.model.findData(current) if current else -1
        self.model.setCurrentIndex(max(idx, 0))
        self.model.blockSignals(False)
        self._show_info()
        self.load_preset()

    def policy_key(self) -> str:
        return self.policy.currentData() or "stop"

    def set_policy(self, key: str) -> None:
        self.policy.setCurrentIndex(max(0, self.policy.findData(key)))

    def current_model(self) -> str | None:
        return self.model.currentData()

    def sampling(self) -> SamplingSettings:
        return SamplingSettings(
            temperature=self.temperature.value(),
            top_k=self.top_k.value(),
            top_p=self.top_p.value(),
            repetition_penalty=self.repetition.value(),
            seed=self.seed.value() if self.fixed_seed.isChecked() else None,
        )

    # -- per-model presets -----------------------------------------------------------------
    def _preset_key(self, field: str, model: str | None = None) -> str | None:
        model = model or self.current_model()
        if not model or self.settings is None:
            return None
        return f"chat_presets/{model.replace('/', '_')}/{field}"

    def _save_preset(self, *_args) -> None:
        if self._loading_preset or self._preset_key("x") is None:
            return
        for field, value in self._preset_values().items():
            self.settings.set_value(self._preset_key(field), value)

    def _preset_values(self) -> dict:
        return {
            "temperature": self.temperature.value(),
            "top_k": self.top_k.value(),
            "top_p": self.top_p.value(),
            "repetition_penalty": self.repetition.value(),
            "max_tokens": self.max_tokens.value(),
            "fixed_seed": self.fixed_seed.isChecked(),
            "seed": self.seed.value(),
        }

    def load_preset(self) -> None:
        """The current model's values, or the defaults for a model never tuned."""
        if self._preset_key("x") is None:
            return
        d = SamplingSettings()
        defaults = {"temperature": d.temperature, "top_k": d.top_k, "top_p": d.top_p, "repetition_penalty": d.repetition_penalty, "max_tokens": 512, "fixed_seed": False, "seed": 42}
        widgets = {"temperature": self.temperature, "top_k": self.top_k, "top_p": self.top_p, "repetition_penalty": self.repetition, "max_tokens": self.max_tokens, "seed": self.seed}
        self._loading_preset = True
        try:
            for field, default in defaults.items():
                raw = self.settings.value(self._preset_key(field), default)
                try:
                    if field == "fixed_seed":
                        self.fixed_seed.setChecked(raw.lower() == "true" if isinstance(raw, str) else bool(raw))
                    else:
                        w = widgets[field]
                        w.setValue(type(w.value())(float(raw)) if isinstance(w.value(), int) else float(raw))
                except (TypeError, ValueError):
                    continue  # a damaged value (hand-edited file): keep what is shown
        finally:
            self._loading_preset = False

    def preset_system_prompt(self) -> str:
        key = self._preset_key("system_prompt")
        return str(self.settings.value(key, "") or "") if key else ""

    def remember_system_prompt(self, prompt: str) -> None:
        key = self._preset_key("system_prompt")
        if key:
            self.settings.set_value(key, prompt)

    def _on_model(self, _index: int) -> None:
        self._show_info()
        self.load_preset()
        name = self.current_model()
        if name:
            self.model_chosen.emit(name)

    def _show_info(self) -> None:
        manifest = self._manifests.get(self.current_model() or "")
        self.model_info.setText(pack_summary(manifest) if manifest else "Import a text model in the Library, or run the set-up command.")


def _dspin(lo: float, hi: float, step: float, value: float, tip: str) -> QDoubleSpinBox:
    w = QDoubleSpinBox()
    w.setRange(lo, hi)
    w.setSingleStep(step)
    w.setDecimals(2)
    w.setValue(value)
    w.setToolTip(tip)
    return w


def _ispin(lo: int, hi: int, value: int, tip: str) -> QSpinBox:
    w = QSpinBox()
    w.setRange(lo, hi)
    w.setValue(value)
    w.setToolTip(tip)
    return w
