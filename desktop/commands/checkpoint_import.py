"""``models import FILE.safetensors``: a single-file image checkpoint becomes a pack by export.

A checkpoint holds PyTorch weights, not ONNX graphs, so importing one means running the image
exporter. The file is first read and recognised without torch, so a user without the export
extra learns what the file is (or why it is refused) and what to install, in one line.
"""

from __future__ import annotations

from pathlib import Path

from desktop.console import err
from desktop.engines.errors import ExportError
from desktop.engines.events import Progress
from desktop.engines.image.checkpoint import detect
from desktop.engines.packs.library import Library
from desktop.engines.packs.pack import Pack
from desktop.engines.staging import staging_folder

CHECKPOINT_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth")


def is_checkpoint_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in CHECKPOINT_SUFFIXES


def import_checkpoint(path: Path, library: Library, name: str | None = None, precision: str = "fp32") -> Pack:
    from desktop.engines.packs.importers import import_path

    found = detect(path)  # refuses pickles, lying headers and unknown models, naming them
    try:
        import diffusers  # noqa: F401 - the export extra's heaviest parts, checked before any work
        import torch  # noqa: F401

        from exporters.base import run_export
        from exporters.image_checkpoint import load_checkpoint_source
        from exporters.registry import lookup
    except ImportError as exc:
        raise ExportError(
            f"'{path.name}' is {found.family.label}; importing a checkpoint converts it to ONNX, which needs the "
            f"export extra ({exc.name} is missing): pip install -e '.[export]'"
        ) from None
    source = load_checkpoint_source(str(path))
    with staging_folder(library.root) as work:
        out = work / "pack"
        for event in run_export(lookup("image", source.architecture)(source), out, precision, name=name or path.stem):
            if isinstance(event, Progress):
                err(f"[import] {event.message}")
        return import_path(out, library, name=name or path.stem)
