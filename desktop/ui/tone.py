"""Secondary text (status lines, footers, integrity states) in colours taken from the
palette, so it stays readable (WCAG contrast >= 4.5) in the light AND the dark theme.

A fixed ``color: gray`` or ``#666`` is ~3.6:1 or worse on the dark window; these labels
recompute their colour whenever the application's palette changes (a theme switch).
"""

from __future__ import annotations

from PySide6.QtCore import QEvent
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QLabel

R = QPalette.ColorRole
MIN_CONTRAST = 4.5
# state colours for a light and a dark background; adjusted further if a palette needs it
TONES = {
    "ok": (QColor("#1b7f3b"), QColor("#6cc785")),
    "bad": (QColor("#b3261e"), QColor("#f28b82")),
}


def luminance(c: QColor) -> float:
    def channel(v: float) -> float:
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(c.redF()) + 0.7152 * channel(c.greenF()) + 0.0722 * channel(c.blueF())


def contrast(a: QColor, b: QColor) -> float:
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def _blend(a: QColor, b: QColor, t: float) -> QColor:
    """``t`` of the way from ``a`` to ``b``."""
    return QColor.fromRgbF(*(x + (y - x) * t for x, y in zip((a.redF(), a.greenF(), a.blueF()), (b.redF(), b.greenF(), b.blueF()))))


def tone_color(tone: str, palette: QPalette | None = None) -> QColor:
    """The colour of ``tone`` ("muted", "ok", "bad") on ``palette``'s backgrounds, moved
    towards the text colour until it reaches MIN_CONTRAST on every one of them."""
    p = palette or QApplication.palette()
    text = p.color(R.WindowText)
    backgrounds = [p.color(r) for r in (R.Window, R.Base, R.AlternateBase)]
    dark = luminance(p.color(R.Window)) < 0.2
    start = _blend(p.color(R.Window), text, 0.55) if tone == "muted" else TONES[tone][int(dark)]
    for step in range(11):
        c = _blend(start, text, step / 10)
        if all(contrast(c, bg) >= MIN_CONTRAST for bg in backgrounds):
            return c
    return text


class ToneLabel(QLabel):
    """A QLabel in a palette-derived secondary colour (see the module's docstring)."""

    def __init__(self, text: str = "", tone: str = "muted", parent=None):
        super().__init__(text, parent)
        self._tone = tone
        self._applying = False
        self._apply()

    def set_tone(self, tone: str) -> None:
        self._tone = tone
        self._apply()

    def tone(self) -> str:
        return self._tone

    def _apply(self) -> None:
        self._applying = True
        try:
            pal = self.palette()
            pal.setColor(R.WindowText, tone_color(self._tone, QApplication.palette()))
            self.setPalette(pal)
        finally:
            self._applying = False

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange) and not self._applying:
            self._apply()
