"""Responsiveness benchmark: how long can another Python thread (the GUI) be kept waiting?

A watcher thread wakes every 10 ms and records its longest gap while an engine job runs
on the main thread: text prefill of a ~500- and a ~4,000-token prompt with prefill
chunking off (the whole prompt in one native call, as before) and on, an image job and a
speech job. A gap far above 10 ms means a native call held the GIL that long - the
window could neither repaint nor take a click. Also prints prefill tok/s and time to
first token, so the price of chunking is visible. Uses the default packs in the user's
library (scripts/setup installs them). One run prints one table.

    python bench/responsiveness.py [--repeats 3] [--skip-image] [--skip-speech]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ATELIER_THREADS", "2")
from tests.engines.test_prefill import GapWatcher  # noqa: E402 - one watcher for tests and bench


def open_default(modality: str):
    from desktop.defaults import default_model
    from desktop.engines.base import open_engine
    from desktop.engines.packs.library import Library

    lib = Library()
    name = default_model(lib, modality)
    if name is None:
        sys.exit(f"No {modality} pack installed: run scripts/setup first.")
    return open_engine(lib.load(name))


def prompt_of(engine, tokens: int) -> list[dict[str, str]]:
    """A user message that renders to about ``tokens`` prompt tokens."""
    ids = engine.tokenizer.encode((ROOT / "README.md").read_text(encoding="utf-8"), add_special_tokens=False).ids
    while len(ids) < tokens:
        ids = ids + ids
    text = engine.tokenizer.decode(ids[: tokens - 16])
    return [{"role": "user", "content": text}]


def text_rows(repeats: int) -> list[tuple]:
    from desktop.engines.text.sampling import SamplingSettings
    from desktop.engines.text.engine import PREFILL_CALL_S, ChatRequest, PrefillChunks

    engine = open_default("text")
    rows = []
    for size in (500, 4000):
        messages = prompt_of(engine, min(size, engine.context_length - 64))
        for label, target in (("off (one call)", 0.0), (f"on ({PREFILL_CALL_S * 1000:.0f} ms calls)", PREFILL_CALL_S)):
            best = None
            for _ in range(repeats):
                engine.reset_cache()
                engine.chunks = PrefillChunks(target)
                request = ChatRequest(messages, max_tokens=1, sampling=SamplingSettings(temperature=0), ignore_eos=True)
                with GapWatcher() as watch:
                    done = list(engine.generate(request))[-1]
                n, ttft = done.stats["prompt_tokens"], done.stats["ttft_s"]
                run = (watch.longest, n / ttft, ttft)
                best = run if best is None or run[1] > best[1] else best
            rows.append((f"text prefill {n} tokens, chunking {label}", *best))
    engine.close()
    return rows


def image_row() -> tuple:
    from desktop.engines.image.engine import ImageRequest

    engine = open_default("image")
    with GapWatcher() as watch:
        started = time.perf_counter()
        for _ in engine.generate(ImageRequest(prompt="a red heart", seed=0)):
            pass
    engine.close()
    return (f"image job ({engine.pack.name})", watch.longest, None, time.perf_counter() - started)


def speech_row() -> tuple:
    from desktop.engines.speech.engine import SpeechRequest
    from desktop.engines.speech.synthesis import SynthesisSettings

    engine = open_default("speech")
    text = "The lighthouse keeper climbed the stairs. " * 6
    with GapWatcher() as watch:
        started = time.perf_counter()
        for _ in engine.generate(SpeechRequest(text, SynthesisSettings(seed=0))):
            pass
    engine.close()
    return (f"speech job ({engine.pack.name}, {len(text)} chars)", watch.longest, None, time.perf_counter() - started)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="text runs per row; the fastest is shown")
    ap.add_argument("--skip-image", action="store_true")
    ap.add_argument("--skip-speech", action="store_true")
    args = ap.parse_args()
    load = os.getloadavg()[0]
    rows = text_rows(args.repeats)
    if not args.skip_image:
        rows.append(image_row())
    if not args.skip_speech:
        rows.append(speech_row())
    print(f"load average at start: {load:.2f} on {os.cpu_count()} CPUs, ATELIER_THREADS={os.environ['ATELIER_THREADS']}")
    print(f"{'job':58} {'longest gap':>12} {'prefill tok/s':>14} {'first token / job':>18}")
    for name, gap, rate, seconds in rows:
        print(f"{name:58} {gap * 1000:>9.0f} ms {'' if rate is None else f'{rate:.0f}':>14} {seconds:>16.2f} s")


if __name__ == "__main__":
    main()
