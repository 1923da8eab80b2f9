"""Responsiveness benchmark: how long can another Python thread (the GUI) be kept waiting?

A watcher thread wakes every 10 ms and records its longest gap while an engine job runs
on the main thread. A gap far above 10 ms means a native call held the GIL that long -
the window could neither repaint nor take a click. Text: a ~4,000-token prompt prefilled
and 32 tokens decoded, through onnxruntime-genai's own binding and through the default
graph backend (the same graph on onnxruntime), prefill chunking off (one native call)
and on; prefill tok/s, decode tok/s and their ratio to the binding. Then the total
tok/s of 1, 2 and 4 forks of one engine decoding at once, and an image and a speech
job. Uses the default packs in the user's library (scripts/setup installs them).

    python bench/responsiveness.py [--repeats 3] [--sizes 500,4000] [--streams 1,2,4] [--skip-image] [--skip-speech]
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


def text_rows(repeats: int, sizes: tuple[int, ...]) -> list[tuple]:
    """Prefill of each prompt size and 32 decoded tokens, for genai's own binding (holds the
    GIL) and the default graph backend (releases it), prefill chunking off and on."""
    from desktop.engines.text.backends import BACKEND_ENV
    from desktop.engines.text.engine import PREFILL_CALL_S, ChatRequest, PrefillChunks
    from desktop.engines.text.sampling import SamplingSettings

    rows, baseline = [], {}
    for backend in ("binding", "graph"):
        os.environ[BACKEND_ENV] = backend
        engine = open_default("text")
        for size in sizes:
            messages = prompt_of(engine, min(size, engine.context_length - 64))
            for label, target in (("one call", 0.0), (f"{PREFILL_CALL_S * 1000:.0f} ms chunks", PREFILL_CALL_S)):
                best = None
                for _ in range(repeats):
                    engine.reset_cache()
                    engine.chunks = PrefillChunks(target)
                    request = ChatRequest(messages, max_tokens=32, sampling=SamplingSettings(temperature=0), ignore_eos=True)
                    with GapWatcher() as watch:
                        done = list(engine.generate(request))[-1]
                    n, ttft = done.stats["prompt_tokens"], done.stats["ttft_s"]
                    run = (watch.longest, n / ttft, done.stats["tokens_per_s"], ttft)
                    best = run if best is None or run[1] > best[1] else best
                base = baseline.setdefault(size, best[1])  # binding, one call: what the ratios compare with
                rows.append((f"{backend:7} prefill {n} tok, {label}", best[0], best[1], best[1] / base, best[2], best[3]))
        engine.close()
    os.environ.pop(BACKEND_ENV)
    return rows


def stream_rows(counts: tuple[int, ...], tokens: int = 64) -> list[tuple[int, float, float]]:
    """Aggregate decode tok/s of N forks of one engine generating at once (graph backend)."""
    import threading

    from desktop.engines.text.engine import ChatRequest
    from desktop.engines.text.sampling import SamplingSettings
    from desktop.engines.text.streams import fork_engine

    engine = open_default("text")
    rows = []
    for count in counts:
        forks = [fork_engine(engine) for _ in range(count)]
        done: list = [None] * count
        start = threading.Barrier(count + 1)

        def run(i: int) -> None:
            request = ChatRequest([{"role": "user", "content": f"Tell me fact number {i + 1} about the sea."}], max_tokens=tokens, sampling=SamplingSettings(temperature=0), ignore_eos=True)
            start.wait()
            done[i] = list(forks[i].generate(request))[-1]

        threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
        for t in threads:
            t.start()
        start.wait()
        started = time.perf_counter()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started
        generated = sum(d.stats["generated_tokens"] for d in done)
        rows.append((count, generated / wall, sum(d.stats["tokens_per_s"] for d in done) / count))
        for f in forks:
            f.close()
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
    ap.add_argument("--repeats", type=int, default=1, help="text runs per row; the fastest is shown")
    ap.add_argument("--sizes", default="4000", help="prompt sizes in tokens, comma-separated (e.g. 500,4000)")
    ap.add_argument("--streams", default="1,2,4", help="concurrent stream counts to measure ('' skips)")
    ap.add_argument("--skip-image", action="store_true")
    ap.add_argument("--skip-speech", action="store_true")
    args = ap.parse_args()
    load = os.getloadavg()[0]
    rows = text_rows(args.repeats, tuple(int(x) for x in args.sizes.split(",")))
    streams = stream_rows(tuple(int(x) for x in args.streams.split(","))) if args.streams else []
    jobs = ([image_row()] if not args.skip_image else []) + ([speech_row()] if not args.skip_speech else [])
    print(f"load average at start: {load:.2f}, at end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs, ATELIER_THREADS={os.environ['ATELIER_THREADS']}")
    print(f"{'text job (32 tokens decoded after)':40} {'longest gap':>12} {'prefill tok/s':>14} {'x binding':>10} {'decode tok/s':>13} {'first token':>12}")
    for name, gap, rate, ratio, decode, ttft in rows:
        print(f"{name:40} {gap * 1000:>9.0f} ms {rate:>14.0f} {ratio:>9.2f}x {decode:>13.1f} {ttft:>10.2f} s")
    if streams:
        print(f"\n{'concurrent streams (forks, 64 tokens each)':40} {'total tok/s':>12} {'per stream':>11} {'x one':>7}")
        for count, total, each in streams:
            print(f"{count:<40} {total:>12.1f} {each:>11.1f} {total / streams[0][1]:>6.2f}x")
    if jobs:
        print(f"\n{'other job':58} {'longest gap':>12} {'job':>10}")
        for name, gap, _, seconds in jobs:
            print(f"{name:58} {gap * 1000:>9.0f} ms {seconds:>8.2f} s")


if __name__ == "__main__":
    main()
