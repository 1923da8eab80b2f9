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
    from desktop.engines.importers import import_path
    from desktop.engines.library import Library

    pack = import_path(text_pack, Library(), name="offline-import")
    return f"imported {pack.name} ({len(pack.files)} files)"


def job_import_zip(work: Path, text_pack: Path, **_) -> str:
    from desktop.engines.importers import import_path
    from desktop.engines.library import Library

    archive = work / "pack.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(text_pack.iterdir()):
            zf.write(f, f"tiny/{f.name}")
    pack = import_path(archive, Library(), name="offline-zip")
    return f"imported {pack.name} from a zip"


def job_text_generation(work: Path, text_pack: Path, **_) -> str:
    from desktop.engines.base import open_engine
    from desktop.engines.events import Done, Token
    from desktop.engines.packs import load_pack
    from desktop.engines.sampling import SamplingSettings
    from desktop.engines.text import ChatRequest

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


# name -> job. Speech and image jobs are added as their engines and tiny packs land.
JOBS: dict[str, Callable[..., str]] = {
    "import folder": job_import_folder,
    "import zip": job_import_zip,
    "load + text generation": job_text_generation,
    "CLI text": job_cli_text,
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
