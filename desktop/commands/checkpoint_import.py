"""``models import FILE.safetensors``: a single-file image checkpoint becomes a pack by export.

A checkpoint holds PyTorch weights, not ONNX graphs, so importing one means running the image
exporter. The file is first read and recognised without torch, so a user without the export
extra learns what the file is (or why it is refused) and what to install, in one line.
"""

from __future__ import annotations

from pathlib import Path

from desktop.console import err
from desktop.engines.errors import ExportError
from desktop.engines.image.checkpoint import CHECKPOINT_SUFFIXES, detect
from desktop.engines.packs.library import Library
from desktop.engines.packs.pack import Pack
from desktop.engines.staging import staging_folder



def is_checkpoint_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in CHECKPOINT_SUFFIXES


def import_checkpoint(path: Path, library: Library, name: str | None = None, precision: str = "fp32", prediction_type: str | None = None) -> Pack:
    """``prediction_type`` (epsilon / v_prediction) overrides what the exporter would read from
    the file; it matters for SD 2.x, whose 512 and 768 models share one weight layout."""
    from desktop.engines.packs.importers import import_path

    found = detect(path)  # refuses pickles, lying headers and unknown models, naming them
    missing = next((m for m in ("exporters", "torch", "diffusers") if not _installed(m)), None)
    if missing:
        raise ExportError(
            f"'{path.name}' is {found.family.label}; importing a checkpoint converts it to ONNX, which needs the "
            f"export extra ({missing} is missing): pip install -e '.[export]'"
        )
    from desktop.defaults import run_export

    with staging_folder(library.root) as work:
        out = work / "pack"
        # a child process: the export loads torch and diffusers, which the app never imports
        options = ("--prediction-type", prediction_type) if prediction_type else ()
        run_export("image", path, out, precision, name or path.stem, *options, log=lambda line: err(f"[import] {line}"))
        return import_path(out, library, name=name or path.stem)


def _installed(module: str) -> bool:
    import importlib.util
    import sys

    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
