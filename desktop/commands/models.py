"""``models list|import|verify|remove``."""

from __future__ import annotations

import argparse

from desktop.cli import command
from desktop.console import err, out
from desktop.engines.errors import PackIntegrityError, RequestError
from desktop.engines.packs.library import Library
from desktop.engines.packs.pack import load_pack, stray_files
from desktop.pack_info import human_bytes, import_notice


@command("models", "list, import, verify or remove model packs")
def configure(p):
    sub = p.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="list installed packs")
    imp = sub.add_parser("import", help="import a pack, a Piper voice, an optimum / onnxruntime-genai / Stable Diffusion folder, a single-file SD checkpoint (.safetensors), or a .zip")
    imp.add_argument("path")
    imp.add_argument("--name", help="name in the library")
    imp.add_argument("--prediction-type", type=prediction_type, metavar="{epsilon,v}",
                     help="(SD 2.x checkpoint) what the UNet predicts: epsilon for 512 base models, v for 768 ones (default: read from the file)")
    ver = sub.add_parser("verify", help="re-hash every file of a pack")
    ver.add_argument("name")
    rm = sub.add_parser("remove", help="delete a pack from the library")
    rm.add_argument("name")
    return run


def prediction_type(text: str) -> str:
    """``epsilon`` or ``v`` (``v_prediction``, the exporter's and diffusers' name, is taken too)."""
    value = {"v": "v_prediction", "v-prediction": "v_prediction"}.get(text.strip().lower(), text.strip().lower())
    if value not in ("epsilon", "v_prediction"):
        raise argparse.ArgumentTypeError(f"--prediction-type must be epsilon (SD 2.x 512 base models) or v (768 models), not '{text}'")
    return value


def run(args) -> int:
    lib = Library()
    if args.action == "list":
        entries = lib.entries()
        if not entries:
            out("No models installed. Run the README's set-up command or `models import PATH`.")
        for e in entries:
            if e.manifest is None:
                out(f"{e.name:40s} BROKEN: {e.problem} (remove it: models remove {e.name})")
                continue
            m = e.manifest
            size = sum(f.get("bytes", 0) for f in m["files"])
            out(f"{m['name']:40s} {m['modality']:7s} {m['architecture']:14s} {m['precision']:5s} {human_bytes(size):>9s}  {m.get('license', {}).get('id', '?')}")
        return 0
    if args.action == "import":
        from pathlib import Path

        from desktop.commands.checkpoint_import import import_checkpoint, is_checkpoint_file
        from desktop.engines.packs.importers import import_path

        source = Path(args.path).expanduser()
        if is_checkpoint_file(source):
            pack = import_checkpoint(source, lib, name=args.name, prediction_type=args.prediction_type)
        elif args.prediction_type:  # a pack or folder already says what its model predicts
            raise RequestError(f"--prediction-type applies to single-file checkpoints (.safetensors); '{source.name}' is not one.")
        else:
            pack = import_path(args.path, lib, name=args.name)
        from desktop.outputs.audit import record_job

        record_job("import", pack, {"source": str(args.path)}, pack.pack_hash)  # the audit log proves which pack was installed
        out(f"imported '{pack.name}' ({pack.modality}, {pack.architecture}, {pack.precision}) -> {pack.root}")
        notice = import_notice(pack)
        if notice:
            err(f"note: {notice}")
        return 0
    if args.action == "verify":
        pack = load_pack(lib.find(args.name, allow_path=True), verify_hashes=True)
        strays = stray_files(pack.root, pack.manifest)
        if strays:
            more = f" and {len(strays) - 1} more" if len(strays) > 1 else ""
            raise PackIntegrityError(
                f"'{pack.name}' holds '{strays[0]}'{more}, not listed in its manifest (or a link / special file); "
                "a pack holds only listed, hashed files. Remove it, or remove and re-import the pack."
            )
        out(f"OK: '{pack.name}' - {len(pack.files)} files match their SHA-256 (pack hash {pack.pack_hash[:16]}).")
        return 0
    if args.action == "remove":
        folder = lib.remove(args.name)
        err(f"removed {folder}")
        return 0
    return 2
