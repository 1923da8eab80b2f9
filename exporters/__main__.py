"""``python -m exporters MODALITY SOURCE --out DIR --precision P`` (also ``main.py export``).

Only parses arguments and calls :func:`exporters.export`; the work and every check live there.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from desktop.engines.errors import AtelierError
from desktop.engines.events import Done, Progress

from .registry import MODALITIES


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m exporters", description="Export a PyTorch / GGUF / Hugging Face model to a validated ONNX pack.")
    p.add_argument("modality", choices=MODALITIES)
    p.add_argument("source", help="model folder, .gguf file, checkpoint, or hub id (only with a network)")
    p.add_argument("--out", required=True, type=Path, help="folder to create for the pack")
    p.add_argument("--precision", default="fp32", choices=("fp32", "fp16", "int8", "int4"))
    p.add_argument("--name", help="pack name shown in the library (default: from the source)")
    p.add_argument("--force", action="store_true", help="keep a pack that is below the quality floor")
    p.add_argument("--lora", type=Path, help="(image) LoRA weights merged before export")
    p.add_argument("--vae", type=Path, help="(image) a VAE .safetensors replacing a checkpoint's own")
    p.add_argument("--convert-pickle", action="store_true", help="(image) unpickle a .ckpt in a separate process, tensors only")
    p.add_argument("--prediction-type", choices=("epsilon", "v_prediction"),
                   help="(image checkpoint) what the UNet predicts; SD 2.x 512 base models: epsilon, 768 ones: v_prediction (default: read from the file)")
    return p


def _print_progress(event: Progress | Done) -> None:
    if isinstance(event, Progress):
        pct = f"{event.fraction * 100:3.0f}% " if event.fraction is not None else ""
        print(f"[export] {pct}{event.message}", file=sys.stderr, flush=True)
    elif isinstance(event, Done):
        print(f"[export] done in {event.stats['seconds']} s -> {event.stats['out']}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .api import export
    from .parent_watch import exit_with_parent

    exit_with_parent()  # started by the app: end when it does, even when it is killed outright

    try:
        pack = export(args.modality, args.source, args.out, args.precision, name=args.name, force=args.force, progress=_print_progress,
                      lora=args.lora, vae=args.vae, convert_pickle=args.convert_pickle or None, prediction_type=args.prediction_type)
    except AtelierError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: export cancelled; nothing was written.", file=sys.stderr)
        return 130
    _print_notes(pack)
    return 0


def _print_notes(pack: Path) -> None:
    """Choices the export made that the user should know (an SD 2.x prediction type read from the
    file, say), as progress lines, so `models import` shows them too."""
    import json

    try:
        notes = json.loads((Path(pack) / "manifest.json").read_text(encoding="utf-8")).get("config", {}).get("export_notes", [])
    except (OSError, ValueError):
        return
    for note in notes:
        print(f"[export] note: {note}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
