"""EngineSlot: the user's last choice of model wins, whatever load finishes first."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import desktop.ui.engine_slot as engine_slot
from desktop.ui.engine_slot import EngineSlot
from desktop.ui.notifier import Notifier


class FakeEngine:
    def __init__(self, name):
        self.name, self.closed = name, False
        self.provider = SimpleNamespace(fell_back=False)

    def close(self):
        self.closed = True


def gated_loads(monkeypatch):
    """Loads that finish only when the test opens their gate."""
    gates, made = {}, {}

    def fake_open(name, _settings, _library=None):
        gates.setdefault(name, threading.Event()).wait(20)
        made[name] = FakeEngine(name)
        yield made[name]

    monkeypatch.setattr(engine_slot, "_open_engine", fake_open)
    for name in ("first", "second"):
        gates[name] = threading.Event()
    return gates, made


def test_a_superseded_load_that_finishes_last_is_dropped(qtbot, monkeypatch):
    gates, made = gated_loads(monkeypatch)
    notifier = Notifier()
    ended = []
    notifier.activity.connect(lambda key, text: ended.append(key) if not text else None)
    slot = EngineSlot("image", lambda: None, notifier)
    slot.load("first")
    slot.load("second")  # the user changed their mind while "first" loads
    assert slot.loading_name == "second"
    with qtbot.waitSignal(slot.loaded, timeout=20_000):
        gates["second"].set()
    assert slot.name == "second" and slot.engine is made["second"]
    gates["first"].set()  # finishes after: must not replace the chosen engine
    # the old load's last event ("finished") has been delivered: everything before it too
    qtbot.waitUntil(lambda: "engine:image:first" in ended, timeout=20_000)
    assert slot.name == "second" and slot.engine is made["second"] and not made["second"].closed
    assert slot.loading_name is None


def test_choosing_the_loading_model_again_does_not_restart_it(qtbot, monkeypatch):
    gates, made = gated_loads(monkeypatch)
    slot = EngineSlot("image", lambda: None, Notifier())
    assert slot.load("first") is not None
    assert slot.load("first") is None  # already on its way
    with qtbot.waitSignal(slot.loaded, timeout=20_000):
        gates["first"].set()
    assert slot.load("first") is None and slot.engine is made["first"]
