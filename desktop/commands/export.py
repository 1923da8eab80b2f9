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
    code = export_main(args.rest)
    if code == 0:
        _audit(args.rest)
    return code


def _audit(rest: list[str]) -> None:
    """One record in the local audit log per finished export, so a user can prove what made a pack."""
    from exporters.__main__ import build_parser

    from desktop.engines.errors import PackError
    from desktop.engines.packs.pack import load_pack
    from desktop.outputs.audit import record_job

    ns = build_parser().parse_args(rest)
    try:
        pack = load_pack(ns.out, verify_hashes=False)
    except PackError:
        return
    record_job("export", pack, {"modality": ns.modality, "source": str(ns.source), "precision": ns.precision, "force": ns.force}, pack.pack_hash)
