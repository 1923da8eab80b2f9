"""Slow: the real SmolLM2 int4 pack prefilling a ~4,000-token prompt through the worker
keeps the GUI timer ticking, and Stop ends the prefill."""

from __future__ import annotations

import os

import pytest

from desktop.engines.events import Progress, Token
from desktop.engines.text.sampling import SamplingSettings
from desktop.engines.text.engine import PREFILL_CALL_S, ChatRequest, PrefillChunks, TextEngine
from tests.desktop.test_responsiveness import run_job
from tests.engines.test_prefill import GAP_LIMIT_S, long_messages
from tests.engines.test_smollm2_real import smollm2_pack  # noqa: F401 - fixture

pytestmark = pytest.mark.slow


def overloaded() -> bool:
    """More runnable work than cores: a thread holding the GIL is then also descheduled for
    long stretches, so a gap measures CPU starvation as much as the GIL (measured at load
    13 on 2 cores: 16-token calls of 0.2-2 s, whatever their size)."""
    return os.getloadavg()[0] > (os.cpu_count() or 1)


def test_smollm2_long_prompt_keeps_the_gui_ticking_and_stops(qtbot, smollm2_pack):  # noqa: F811
    engine = TextEngine(smollm2_pack)
    try:
        engine.chunks = PrefillChunks(PREFILL_CALL_S)
        messages = long_messages(engine, 3900)
        request = ChatRequest(messages, max_tokens=2, sampling=SamplingSettings(temperature=0))
        events, outcome, gap = run_job(qtbot, engine.generate, request)
        assert outcome == [] and events[-1].stats["prompt_tokens"] >= 3800
        assert sum(isinstance(e, Progress) for e in events) > 3  # 128- to 4,096-token calls of ~0.5 s
        if not overloaded():
            assert gap < GAP_LIMIT_S, f"the GUI timer waited {gap * 1000:.0f} ms"

        engine.reset_cache()
        stopped_at = []

        def stop(worker, ev):
            if isinstance(ev, Progress) and not stopped_at:
                stopped_at.append((engine.backend.cached, engine.chunks.size(10**9)))
                worker.abort()

        events, outcome, _ = run_job(qtbot, engine.generate, request, on_event=stop)
        assert outcome == ["aborted"] and not any(isinstance(e, Token) for e in events)
        fed, chunk = stopped_at[0]
        assert engine.backend.cached <= fed + 2 * chunk < 3800  # at most the call in flight (which may have doubled)
    finally:
        engine.close()
