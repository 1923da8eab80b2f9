"""The window stays responsive while engines work: a QTimer ticking every 10 ms on the GUI
thread records its longest gap while a job runs through the real worker (GeneratorWorker
on the thread pool). A native call that holds the GIL stalls that timer exactly as it
stalls repaints and clicks. And Stop ends a long prompt's prefill within one chunk."""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import QObject, Qt, QTimer

from desktop import workers
from desktop.engines.base import open_engine
from desktop.engines.events import Progress, Token
from desktop.engines.packs.pack import load_pack
from desktop.engines.text.backends import BACKEND_ENV
from desktop.engines.text.sampling import SamplingSettings
from desktop.engines.text.engine import PREFILL_CALL_S, ChatRequest, PrefillChunks, TextEngine
from tests.engines.test_prefill import LONG_PROMPT_TOKENS, FixedChunks, gap_limit, long_llama_pack, long_messages
from tests.speech_helpers import tiny_voice  # noqa: F401 - fixture

JOB_TIMEOUT_MS = 300_000


class GuiGaps(QObject):
    """A precise 10 ms QTimer on the GUI thread; ``longest`` is its worst extra wait (s)."""

    def __init__(self):
        super().__init__()
        self.longest = 0.0
        self._last = 0.0
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(10)
        self._timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.longest = max(self.longest, now - self._last - 0.01)
        self._last = now

    def __enter__(self) -> "GuiGaps":
        # counted from now, not from the first tick: a job that grabs the GIL at once
        # would otherwise freeze the GUI before any tick and go unseen
        self._last = time.perf_counter()
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.stop()
        self._tick()  # the stretch since the last tick counts too


def run_job(qtbot, func, *args, on_event=None) -> tuple[list, list[str], float]:
    """Run ``func(*args)`` through the app's worker; returns (events, outcome signals, longest gap)."""
    events, outcome, ended = [], [], []
    worker = workers.GeneratorWorker(func, *args)
    worker.signals.yielded.connect(events.append)
    if on_event is not None:
        worker.signals.yielded.connect(lambda ev: on_event(worker, ev))
    worker.signals.aborted.connect(lambda: outcome.append("aborted"))
    worker.signals.errored.connect(lambda exc: outcome.append(f"error: {exc}"))
    worker.signals.finished.connect(lambda: ended.append(True))
    with GuiGaps() as gaps:
        workers.start(worker)
        qtbot.waitUntil(lambda: bool(ended), timeout=JOB_TIMEOUT_MS)
    return events, outcome, gaps.longest


@pytest.fixture(scope="module")
def long_engine(cache_dir):
    engine = TextEngine(load_pack(long_llama_pack(cache_dir)))
    yield engine
    engine.close()


def test_long_prompt_prefill_keeps_the_gui_ticking(qtbot, long_engine, monkeypatch):
    request = ChatRequest(long_messages(long_engine), max_tokens=4, sampling=SamplingSettings(temperature=0))
    monkeypatch.setenv(BACKEND_ENV, "binding")  # genai's own binding, the whole prompt in one call: as before
    binding = TextEngine(long_engine.pack)
    try:
        binding.chunks = PrefillChunks(0)
        _, outcome, before = run_job(qtbot, binding.generate, request)
    finally:
        binding.close()
    assert outcome == []
    limit = gap_limit()
    assert before > 2 * limit, "the model is too small to show the freeze this test guards against"
    long_engine.reset_cache()
    long_engine.chunks = PrefillChunks(PREFILL_CALL_S)
    events, outcome, after = run_job(qtbot, long_engine.generate, request)
    assert outcome == [] and events[-1].stats["prompt_tokens"] >= LONG_PROMPT_TOKENS - 100
    assert any(isinstance(e, Progress) for e in events)
    assert after < limit, f"the GUI timer waited {after * 1000:.0f} ms (genai binding, one call: {before * 1000:.0f} ms)"


def test_stop_during_prefill_ends_the_job_within_one_chunk(qtbot, long_engine):
    chunk = 200
    long_engine.reset_cache()
    long_engine.chunks = FixedChunks(chunk)
    fed_at_stop = []

    def stop_at_first_progress(worker, ev):
        if isinstance(ev, Progress) and not fed_at_stop:
            fed_at_stop.append(long_engine.backend.cached)
            worker.abort()  # what the Stop button does

    request = ChatRequest(long_messages(long_engine), max_tokens=4, sampling=SamplingSettings(temperature=0))
    events, outcome, _ = run_job(qtbot, long_engine.generate, request, on_event=stop_at_first_progress)
    assert outcome == ["aborted"]
    assert not any(isinstance(e, Token) for e in events)
    fed = long_engine.backend.cached
    assert fed_at_stop and fed <= fed_at_stop[0] + chunk, f"fed {fed} tokens, {fed_at_stop[0]} when Stop was pressed"
    assert fed < LONG_PROMPT_TOKENS - 200


def test_image_job_keeps_the_gui_ticking(qtbot, cache_dir):
    from desktop.engines.image.engine import ImageRequest
    from tests.tiny_sd import tiny_sd_pack

    engine = open_engine(load_pack(tiny_sd_pack(cache_dir)))
    try:
        events, outcome, gap = run_job(qtbot, engine.generate, ImageRequest(prompt="a cat", seed=0, batch_count=2))
    finally:
        engine.close()
    assert outcome == [] and events[-1].__class__.__name__ == "Done"
    assert gap < gap_limit(), f"the GUI timer waited {gap * 1000:.0f} ms"


def test_speech_job_keeps_the_gui_ticking(qtbot, tiny_voice):  # noqa: F811
    from desktop.engines.speech.engine import SpeechRequest
    from desktop.engines.speech.synthesis import SynthesisSettings

    engine = open_engine(load_pack(tiny_voice))
    try:
        text = "The lighthouse keeper climbed the stairs. The sea was calm that night. " * 4
        events, outcome, gap = run_job(qtbot, engine.generate, SpeechRequest(text, SynthesisSettings(seed=0)))
    finally:
        engine.close()
    assert outcome == [] and events[-1].__class__.__name__ == "Done"
    assert gap < gap_limit(), f"the GUI timer waited {gap * 1000:.0f} ms"
