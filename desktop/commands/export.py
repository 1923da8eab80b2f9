"""``export ...``: delegates to the exporters package (needs the export extra)."""

from __future__ import annotations

import argparse

from desktop.cli import command
from desktop.engines.errors import ExportError


@command("export", "export a PyTorch/GGUF/Hugging Face model to a pack (needs the export extra)")
def configure(p):
    p.add_argument("rest", nargs=argparse.REMAINDER, help="arguments of `python -m exporters` (MODALITY SOURCE --out DIR --precision P)")
    return run


def run(args) -> int:
    try:
        from exporters.__main__ import main as export_main
    except ImportError as exc:
        raise ExportError(f"Exporting needs the export extra ({exc.name} is missing): pip install -e '.[export]'") from None
    return export_main(args.rest)
