"""Shared fixtures: every test gets a throwaway model library (ATELIER_HOME), Qt runs
offscreen, and tiny models are built on the fly from config classes - never a hub."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# onnxruntime's native telemetry obeys only this, read when the library loads (before any
# test imports it): no test may write ~/.cache/Microsoft or resolve Microsoft's collector.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
# A shared cache for packs that are slow to build (the real SmolLM2 export); safe to delete.
CACHE = Path(os.environ.get("ATELIER_TEST_CACHE", ROOT / ".cache" / "tests"))


@pytest.fixture(autouse=True)
def atelier_home(tmp_path, monkeypatch):
    home = tmp_path / "atelier-home"
    monkeypatch.setenv("ATELIER_HOME", str(home))
    return home


@pytest.fixture(autouse=True)
def gui_thread_gc(request):
    """Tests that run Qt collect cycles on the GUI thread only, as the app does
    (desktop/ui/gui_thread_gc.py): otherwise the collector, run by a job's worker, could
    free an earlier test's widget there and leave its timers to fire on freed memory."""
    if not {"qtbot", "qapp"} & set(request.fixturenames):
        yield
        return
    from desktop.ui.gui_thread_gc import GuiThreadCollector

    collector = GuiThreadCollector(request.getfixturevalue("qapp"))
    yield
    collector.stop()
    collector.deleteLater()


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    return CACHE


@pytest.fixture(scope="session")
def tiny_packs(tmp_path_factory):
    """Exported tiny text packs, built once per session: {"llama": path, "gpt2": path}."""
    from tests.tiny_models import export_tiny

    root = tmp_path_factory.mktemp("tiny-text")
    return {kind: export_tiny(kind, root) for kind in ("llama", "gpt2")}
