"""The self-test: load each default pack, make one short output per modality, offline.

Used by ``python main.py self-test`` / ``Atelier --self-test`` (also inside the built
bundle, where CI runs it) and by bench/startup.py. Qt-free. A row fails when loading or
generating raises, or when the output is empty or not finite; the caller exits non-zero
if any row failed or nothing could be tested.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from desktop.engines.errors import AtelierError
from desktop.engines.packs.library import Library
from desktop.engines.packs.pack import MODALITIES, load_pack

TEXT_PROMPT = "What is the capital of France?"
TEXT_TOKENS = 24
SPEECH_TEXT = "Hello from Atelier. Everything runs on this computer."
IMAGE_PROMPT = "a red apple"


@dataclass
class Row:
    modality: str
    pack: str
    load_s: float = 0.0
    generate_s: float = 0.0
    speed: str = ""  # tokens/s, RTF or s/image: the figure that matters per modality
    output: str = ""
    provider: str = ""
    ok: bool = False
    error: str = ""


# -- what to test -------------------------------------------------------------------------


def default_packs(library: Library) -> list[Path]:
    """The pack folders to test, in modality order: every default pack the set-up installs
    that is in the library, every pack shipped with the app (by name, once), and for a
    modality still without one, the first pack of that modality in the library."""
    from desktop import bundled, defaults

    entries = [e for e in library.entries() if e.manifest]
    chosen: dict[str, tuple[str, Path]] = {}  # pack name -> (modality, folder)
    for e in entries:
        if e.name in defaults.DEFAULT_PACKS:
            chosen[e.name] = (e.manifest["modality"], e.root)
    for folder, manifest in bundled.bundled_packs():
        chosen.setdefault(manifest["name"], (manifest["modality"], folder))
    covered = {modality for modality, _ in chosen.values()}
    for e in entries:
        if e.manifest["modality"] not in covered:
            covered.add(e.manifest["modality"])
            chosen[e.name] = (e.manifest["modality"], e.root)
    return [folder for modality in MODALITIES for m, folder in chosen.values() if m == modality]


# -- one probe per modality -----------------------------------------------------------------
# probe(engine) -> (speed, output); raises on a bad output.


def _probe_text(engine) -> tuple[str, str]:
    from desktop.engines.events import Done, Token
    from desktop.engines.text.sampling import SamplingSettings
    from desktop.engines.text.engine import ChatRequest

    request = ChatRequest([{"role": "user", "content": TEXT_PROMPT}], max_tokens=TEXT_TOKENS, sampling=SamplingSettings(temperature=0, repetition_penalty=1.0))
    tokens, text, stats = 0, "", {}
    for ev in engine.generate(request):
        if isinstance(ev, Token):
            tokens += 1
            text += ev.text
        elif isinstance(ev, Done):
            stats = ev.stats
    if tokens == 0:
        raise ProbeFailed("the model produced no tokens")
    # the engine's own figures: decode rate after the first token, and time to it
    return f"{stats.get('tokens_per_s', 0):.0f} tok/s, first {stats.get('ttft_s', 0):.2f} s", text


def _probe_speech(engine) -> tuple[str, str]:
    from desktop.engines.events import AudioChunk
    from desktop.engines.speech.engine import SpeechRequest
    from desktop.engines.speech.synthesis import SynthesisSettings

    t0 = time.perf_counter()
    chunks, rate = [], 0
    for ev in engine.generate(SpeechRequest(SPEECH_TEXT, SynthesisSettings(seed=0))):
        if isinstance(ev, AudioChunk):
            chunks.append(ev.samples)
            rate = ev.sample_rate
    seconds = time.perf_counter() - t0
    audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    if audio.size == 0 or not np.isfinite(audio).all() or float(np.abs(audio).max()) < 1e-4:
        raise ProbeFailed("the voice produced no audible audio")
    audio_s = audio.size / rate
    return f"RTF {seconds / audio_s:.3f}", f"{audio_s:.1f} s of audio at {rate} Hz"


def _probe_image(engine) -> tuple[str, str]:
    from desktop.engines.events import ImageResult
    from desktop.engines.image.engine import ImageRequest

    caps = engine.capabilities
    request = ImageRequest(
        prompt=IMAGE_PROMPT if caps.prompt else "",
        class_label=(caps.classes or [None])[0],
        seed=0,
    )
    t0 = time.perf_counter()
    images = [ev.image for ev in engine.generate(request) if isinstance(ev, ImageResult)]
    seconds = time.perf_counter() - t0
    if not images:
        raise ProbeFailed("the model produced no image")
    img = images[0]
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ProbeFailed(f"the image has the wrong shape or type ({img.shape}, {img.dtype})")
    per_image = seconds / len(images)
    speed = f"{per_image:.2f} s/image" if per_image >= 0.1 else f"{per_image * 1000:.1f} ms/image"
    return speed, f"{img.shape[1]}×{img.shape[0]} image"


PROBES: dict[str, Callable[[object], tuple[str, str]]] = {"text": _probe_text, "speech": _probe_speech, "image": _probe_image}


class ProbeFailed(AtelierError):
    title = "Self-test failed"


# -- running ------------------------------------------------------------------------------------


def run(folders: list[Path], settings=None) -> Iterator[Row]:
    """Test each pack folder in turn; yields one Row per pack."""
    from desktop.engines.base import open_engine

    for folder in folders:
        row = Row("?", Path(folder).name)
        engine = None
        try:
            t0 = time.perf_counter()
            pack = load_pack(folder, verify_hashes=True)  # the integrity check is part of loading
            row.modality, row.pack = pack.modality, pack.name
            engine = open_engine(pack, settings)
            row.load_s = time.perf_counter() - t0
            row.provider = engine.provider.used
            t1 = time.perf_counter()
            row.speed, row.output = PROBES[pack.modality](engine)
            row.generate_s = time.perf_counter() - t1
            row.ok = True
        except AtelierError as exc:
            row.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - a self-test reports every failure as a row
            row.error = f"{type(exc).__name__}: {exc}"
        finally:
            if engine is not None:
                engine.close()
        yield row


def table(rows: list[Row]) -> str:
    head = ("modality", "pack", "load s", "generate s", "speed", "provider", "result")
    lines = [head]
    for r in rows:
        result = "pass: " + _short(r.output) if r.ok else "FAIL: " + _short(r.error, 120)
        lines.append((r.modality, r.pack, f"{r.load_s:.2f}", f"{r.generate_s:.2f}" if r.ok else "-", r.speed or "-", r.provider or "-", result))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head) - 1)]
    out = []
    for n, line in enumerate(lines):
        out.append("  ".join(cell.ljust(w) for cell, w in zip(line, widths)) + "  " + line[-1])
        if n == 0:
            out.append("  ".join("-" * w for w in widths) + "  " + "-" * 6)
    return "\n".join(out)


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
