"""Engines must stay Qt-free and torch-free: the app runs on onnxruntime + numpy alone."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = ("torch", "PySide6", "transformers", "diffusers", "exporters")


def test_engines_import_without_qt_or_torch():
    engines = sorted(
        ".".join(p.relative_to(ROOT / "desktop" / "engines").with_suffix("").parts).removesuffix(".__init__")
        for p in (ROOT / "desktop" / "engines").rglob("*.py")
        if p.stem != "__init__" or p.parent.name != "engines"
    )
    code = (
        "import sys, importlib\n"
        f"for m in {engines!r}: importlib.import_module('desktop.engines.' + m)\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"engines pulled in forbidden modules: {out.stdout}"


def test_engine_sources_do_not_mention_forbidden_imports():
    for path in (ROOT / "desktop" / "engines").rglob("*.py"):
        text = path.read_text()
        for name in FORBIDDEN:
            assert f"import {name}" not in text and f"from {name}" not in text, f"{path.name} imports {name}"
