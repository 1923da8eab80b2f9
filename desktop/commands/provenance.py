"""``verify FILE`` (did Atelier make it, with which pack?) and ``audit verify|list``."""

from __future__ import annotations

import json
from pathlib import Path

from desktop.cli import command
from desktop.console import err, out, out_block
from desktop.engines.errors import InputFileError, ProvenanceError

IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"RIFF", b"GIF8", b"BM", b"II*\x00", b"MM\x00*")


@command("verify", "tell whether a PNG/JPEG/WAV/Markdown file came from Atelier, and from which pack")
def configure_verify(p):
    p.add_argument("file")
    p.add_argument("--json", action="store_true", help="print the findings as JSON")
    return run_verify


def find_packs_by_hash(prefix: str) -> list[str]:
    """Names of installed packs whose pack hash starts with ``prefix``."""
    from desktop.engines.errors import PackError
    from desktop.engines.packs.library import Library
    from desktop.engines.packs.pack import load_pack

    names = []
    if not prefix:
        return names
    for entry in Library().entries():
        if entry.manifest is None:
            continue
        try:
            if load_pack(entry.root, verify_hashes=False).pack_hash.startswith(prefix):
                names.append(entry.name)
        except PackError:
            continue
    return names


def read_file_provenance(path: Path) -> dict | None:
    """The Atelier record carried by a PNG, WAV or Markdown file (sniffed by content,
    not by name: a renamed file is still recognised), or None. Raises ProvenanceError
    for a damaged file of those kinds."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
    except OSError as exc:
        raise ProvenanceError(f"Cannot read '{path.name}': {exc.strerror or exc}.") from None
    if head.startswith(b"\x89PNG"):
        from desktop.outputs.provenance_png import read_png_provenance

        return read_png_provenance(path)
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        from desktop.outputs.provenance_wav import read_wav_provenance

        return read_wav_provenance(path)
    if head.lstrip(b"\xef\xbb\xbf").startswith(b"---"):
        from desktop.outputs.provenance_md import read_markdown_provenance

        return read_markdown_provenance(path)
    return None


def inspect_file(path: Path) -> dict:
    """Findings about ``path``: metadata record, watermark, installed pack matches."""
    if not path.exists():
        raise InputFileError(f"No such file: '{path}'.")
    if not path.is_file():
        raise InputFileError(f"'{path}' is not a regular file (a folder, a device or a pipe); verify needs a file.")
    findings: dict = {"file": str(path), "from_atelier": False, "record": None, "watermark": None, "packs": [], "warnings": []}
    try:
        findings["record"] = read_file_provenance(path)
    except ProvenanceError as exc:
        findings["warnings"].append(f"metadata unreadable: {exc}")
    if _is_image(path):
        findings["watermark"] = _watermark(path, findings["warnings"])
    record, mark = findings["record"], findings["watermark"]
    prefix = ""
    if mark and mark["found"]:
        prefix = mark["pack_prefix"]
    if record and record.get("pack_sha256"):
        if prefix and not record["pack_sha256"].startswith(prefix):
            findings["warnings"].append("the metadata and the watermark name different packs: the metadata was probably edited")
        prefix = prefix or record["pack_sha256"]
    findings["from_atelier"] = bool(record) or bool(mark and mark["found"])
    # Atelier embeds the watermark in every image it saves with a pack hash, when the image
    # is big enough to carry it. A record on such an image without the watermark is only
    # text: it may have been copied from another image or written by hand.
    findings["watermark_missing"] = bool(
        record and record.get("pack_sha256") and mark is not None and not mark["found"] and _big_enough_to_mark(path)
    )
    findings["pack_prefix"] = prefix
    findings["packs"] = find_packs_by_hash(prefix[:10]) if prefix else []
    return findings


def _is_image(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(12)
    if head[:4] == b"RIFF":
        return head[8:12] == b"WEBP"
    return head.startswith(IMAGE_MAGIC)


def _big_enough_to_mark(path: Path) -> bool:
    from PIL import Image

    from desktop.outputs.watermark import MIN_SIDE

    try:
        with Image.open(path) as img:
            return min(img.size) >= MIN_SIDE
    except (OSError, ValueError, Image.DecompressionBombError):
        return False


def _watermark(path: Path, warnings: list[str]) -> dict | None:
    from PIL import Image, UnidentifiedImageError

    from desktop.outputs.watermark import detect_file

    try:
        d = detect_file(path)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        warnings.append(f"image unreadable for the watermark check: {exc}")
        return None
    return {"found": d.found, "pack_prefix": d.pack_prefix, "score": round(d.score, 3), "damaged": d.damaged, "corrected_bits": d.corrected_bits}


def run_verify(args) -> int:
    findings = inspect_file(Path(args.file))
    if args.json:
        out_block(json.dumps(findings, indent=2))
        return 0 if findings["from_atelier"] and not findings["watermark_missing"] else 1
    name = Path(args.file).name
    record, mark = findings["record"], findings["watermark"]
    if record:
        out(f"{name}: made by Atelier {record.get('app_version', '')} - {record.get('note', 'AI-generated')}")
        out(f"  pack: {record.get('pack') or '?'} (SHA-256 {record.get('pack_sha256') or '?'})")
        details = {k: record.get(k) for k in ("kind", "precision", "provider", "seed", "created") if record.get(k) not in (None, "")}
        if details:
            out("  " + ", ".join(f"{k} {v}" for k, v in details.items()))
    if mark and mark["found"]:
        out(f"{name}: Atelier watermark found (score {mark['score']}): pack SHA-256 begins {mark['pack_prefix']}")
    elif mark and mark["damaged"]:
        out(f"{name}: something like an Atelier watermark is present, but too damaged to read the pack")
    if findings["watermark_missing"]:
        out(
            f"{name}: metadata only, NO watermark - Atelier watermarks every image of this size, so this record "
            "may have been copied from another image or forged (or the image was heavily edited). Do not trust it."
        )
    if findings["from_atelier"]:
        packs = findings["packs"]
        out(f"  installed pack: {', '.join(packs)}" if packs else "  that pack is not installed here")
    else:
        how = "no Atelier metadata" + (" and no Atelier watermark" if mark is not None else "")
        out(f"{name}: {how} - not made by Atelier, or altered beyond recognition")
    for warning in findings["warnings"]:
        err(f"warning: {warning}")
    return 0 if findings["from_atelier"] and not findings["watermark_missing"] else 1


@command("audit", "verify or list the local audit log of jobs")
def configure_audit(p):
    sub = p.add_subparsers(dest="audit_action", required=True)
    sub.add_parser("verify", help="check every record's hash chain; exit 1 if anything was edited or removed")
    ls = sub.add_parser("list", help="show the newest records")
    ls.add_argument("--last", type=int, default=20)
    return run_audit


def run_audit(args) -> int:
    from desktop.outputs import audit

    if args.audit_action == "verify":
        report = audit.verify()
        (out if report.ok else err)(report.message())
        return 0 if report.ok else 1
    rows = list(audit.records())[-max(1, args.last) :]
    if not rows:
        out("No jobs recorded yet.")
    for r in rows:
        out(f"#{r.get('seq')}  {r.get('time')}  {str(r.get('kind')):8s} {str(r.get('pack') or '-'):30s} output {str(r.get('output_sha256') or '-')[:16]}")
    return 0
