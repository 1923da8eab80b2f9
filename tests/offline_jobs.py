"""The real jobs Atelier runs, each as a function, for the offline checks.

``tests/desktop/test_offline.py`` runs each under a :class:`desktop.offline.NetworkGuard`
and asserts zero socket attempts; ``bench/robustness.py`` prints the counts. A job takes
a scratch folder and the tiny packs, does the real work (no mocks) and returns a short
description of what it produced, so a job that silently did nothing shows up.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path
from typing import Callable


def job_import_folder(work: Path, text_pack: Path, **_) -> str:
    from desktop.engines.packs.importers import import_path
    from desktop.engines.packs.library import Library

    pack = import_path(text_pack, Library(), name="offline-import")
    return f"imported {pack.name} ({len(pack.files)} files)"


def job_import_zip(work: Path, text_pack: Path, **_) -> str:
    from desktop.engines.packs.importers import import_path
    from desktop.engines.packs.library import Library

    archive = work / "pack.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(text_pack.iterdir()):
            zf.write(f, f"tiny/{f.name}")
    pack = import_path(archive, Library(), name="offline-zip")
    return f"imported {pack.name} from a zip"


def job_text_generation(work: Path, text_pack: Path, **_) -> str:
    from desktop.engines.base import open_engine
    from desktop.engines.events import Done, Token
    from desktop.engines.packs.pack import load_pack
    from desktop.engines.text.engine import ChatRequest
    from desktop.engines.text.sampling import SamplingSettings

    engine = open_engine(load_pack(text_pack))
    try:
        tokens = 0
        for ev in engine.generate(ChatRequest([{"role": "user", "content": "Hello"}], max_tokens=8, sampling=SamplingSettings(seed=1))):
            tokens += isinstance(ev, Token)
            if isinstance(ev, Done):
                return f"{ev.stats['generated_tokens']} tokens"
    finally:
        engine.close()
    raise AssertionError("text generation produced no Done event")


def job_cli_text(work: Path, text_pack: Path, **_) -> str:
    import contextlib
    import io

    from desktop.cli import main as cli_main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli_main(["text", "--model", str(text_pack), "--prompt", "Hello", "--max-tokens", "6", "--seed", "3"])
    if code != 0:
        raise AssertionError(f"CLI text exited {code}")
    return f"CLI printed {len(out.getvalue())} chars"


def job_export_local(work: Path, text_source: Path, **_) -> str:
    """Export of a local Hugging Face folder: transformers, torch.onnx and
    onnxruntime-genai's model builder (a child process) all run."""
    from tests.tiny_sources import export_text_pack

    out = export_text_pack(text_source, work / "exported", name="offline-export")
    return f"exported {sum(1 for _ in out.iterdir())} files"


def job_speech_synthesis(work: Path, voice_pack: Path, **_) -> str:
    from desktop.engines.base import open_engine
    from desktop.engines.events import AudioChunk
    from desktop.engines.packs.pack import load_pack
    from desktop.engines.speech.engine import SpeechRequest
    from desktop.engines.speech.synthesis import SynthesisSettings

    engine = open_engine(load_pack(voice_pack))
    try:
        samples = sum(ev.samples.size for ev in engine.generate(SpeechRequest("Hello there. How are you?", SynthesisSettings(seed=1))) if isinstance(ev, AudioChunk))
    finally:
        engine.close()
    if not samples:
        raise AssertionError("speech produced no audio")
    return f"{samples} samples"


def job_image_generation(work: Path, image_pack: Path, **_) -> str:
    from desktop.engines.base import open_engine
    from desktop.engines.events import ImageResult
    from desktop.engines.image.engine import ImageRequest
    from desktop.engines.packs.pack import load_pack
    from desktop.outputs.image_meta import image_record, save_image

    engine = open_engine(load_pack(image_pack))
    try:
        results = [ev for ev in engine.generate(ImageRequest(prompt="a red apple", steps=2, seed=1)) if isinstance(ev, ImageResult)]
        for i, ev in enumerate(results):  # saving (metadata + watermark) is part of the job
            save_image(work / f"image-{i}.png", ev.image, image_record(engine.pack, ev.metadata, engine.provider.used))
    finally:
        engine.close()
    if not results:
        raise AssertionError("image generation produced no image")
    return f"{len(results)} image(s) {results[0].image.shape}"


def job_cli_speak_image_verify(work: Path, voice_pack: Path, image_pack: Path, **_) -> str:
    import contextlib
    import io

    from desktop.cli import main as cli_main

    runs = [
        ["speak", "--model", str(voice_pack), "--text", "Offline speech.", "--out", str(work / "a.wav"), "--seed", "1"],
        ["image", "--model", str(image_pack), "--prompt", "a red apple", "--steps", "2", "--seed", "2", "--out", str(work / "b.png")],
        ["verify", str(work / "b.png")],
        ["verify", str(work / "a.wav")],
        ["audit", "verify"],
    ]
    for args in runs:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            code = cli_main(args)
        if code != 0:
            raise AssertionError(f"CLI {args[0]} exited {code}")
    return "speak, image, verify x2, audit verify"


# name -> job; each takes the packs it needs by keyword.
JOBS: dict[str, Callable[..., str]] = {
    "import folder": job_import_folder,
    "import zip": job_import_zip,
    "load + text generation": job_text_generation,
    "CLI text": job_cli_text,
    "load + speech synthesis": job_speech_synthesis,
    "load + image generation (+ PNG with watermark)": job_image_generation,
    "CLI speak, image, verify, audit": job_cli_speak_image_verify,
    "export local source": job_export_local,
}
SLOW_JOBS = {"export local source"}


def count_attempts(job: Callable[..., str], work: Path, **packs) -> tuple[str, list]:
    """Run ``job`` under a recording guard that also follows child processes."""
    from desktop.offline import NetworkGuard

    work.mkdir(parents=True, exist_ok=True)
    guard = NetworkGuard(block=False, follow_children=True)
    try:
        with guard:
            result = job(work, **packs)
        return result, guard.all_attempts()
    finally:
        guard.close()
        shutil.rmtree(work, ignore_errors=True)
