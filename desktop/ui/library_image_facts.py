"""What the Library shows for an image pack beyond the common facts, and every pack's licence:
read from the manifest only (no model file is opened, so the list stays instant).

A checkpoint export records its family, native size and recommended settings in the manifest's
``config``; older packs and diffusers-folder exports lack some, and then the row says what the
engine will use (the same rules as the Stable Diffusion pipeline). Licence texts are long and
rarely shipped, so the Licence tab names the licence, says what it means in one line for the
common ones and where its full text is, and shows any licence file the pack carries.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from desktop.engines.image.schedulers import LABELS
from desktop.engines.errors import PackError
from desktop.engines.packs.library import PackEntry
from desktop.engines.packs.pack import confined_path

MAX_LICENCE_FILE_CHARS = 200_000
LICENCE_FILES = ("LICENSE", "LICENCE", "NOTICE", "COPYING")
# id (lower case) -> (name, one-line gist, where the full text is)
KNOWN_LICENCES = {
    "creativeml-openrail-m": ("CreativeML Open RAIL-M", "Use, share and sell images and the model, but not for the harmful uses its "
                              "Attachment A lists; anyone you pass the model on to is bound by the same restrictions.",
                              "https://huggingface.co/spaces/CompVis/stable-diffusion-license"),
    "openrail++": ("CreativeML Open RAIL++-M", "Like Open RAIL-M: open use, commercial included, with use-based restrictions "
                   "that travel with the model.", "https://huggingface.co/stabilityai/stable-diffusion-2/blob/main/LICENSE-MODEL"),
    "sai-nc-community": ("Stability AI Non-Commercial Research Community License", "Non-commercial use only; commercial use needs "
                         "a licence from Stability AI.", "https://huggingface.co/stabilityai/sd-turbo/blob/main/LICENSE.md"),
    "apache-2.0": ("Apache License 2.0", "Permissive: any use, keep the notices.", "https://www.apache.org/licenses/LICENSE-2.0"),
    "mit": ("MIT License", "Permissive: any use, keep the copyright notice.", "https://opensource.org/license/mit"),
    "cc0": ("CC0 1.0 (public domain)", "No rights reserved.", "https://creativecommons.org/publicdomain/zero/1.0/"),
}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def native_size(manifest: dict[str, Any]) -> int | None:
    cfg = manifest.get("config") or {}
    if _number(cfg.get("native_size")):
        return int(cfg["native_size"])
    side = _number(cfg.get("sample_size"))
    if side is None:
        return None
    # latent diffusion: the UNet's sample is 1/8 (vae_scale_factor) of the picture's side
    latent = manifest.get("architecture") == "stable-diffusion"
    return int(side * (_number(cfg.get("vae_scale_factor")) or 8)) if latent else int(side)


def image_rows(manifest: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) rows for an image pack; empty for any other modality."""
    if manifest.get("modality") != "image":
        return []
    cfg = manifest.get("config") or {}
    rows = [("Base model", str(cfg.get("family_label") or manifest.get("architecture", "?")))]
    side = native_size(manifest)
    if side:
        rows.append(("Native size", f"{side}×{side} (what it was trained at; other sizes may repeat or blur)"))
    steps, guidance = _number(cfg.get("default_steps")), _number(cfg.get("default_guidance"))
    if steps:
        rows.append(("Recommended steps", str(int(steps))))
    if guidance is not None:
        rows.append(("Recommended guidance", "0 (off: a distilled Turbo model)" if guidance == 0 else f"{guidance:g}"))
    scheduler = cfg.get("default_scheduler")
    if isinstance(scheduler, str) and scheduler:
        rows.append(("Recommended scheduler", LABELS.get(scheduler, scheduler)))
    return rows


def licence_label(manifest: dict[str, Any]) -> str:
    licence_id = str((manifest.get("license") or {}).get("id") or "unknown")
    known = KNOWN_LICENCES.get(licence_id.lower())
    return f"{known[0]} ({licence_id})" if known else licence_id


def licence_markdown(entry: PackEntry) -> str:
    """The Licence tab: the licence's name, its gist and address, and any licence file the pack
    carries (as an indented block, so the file's text cannot turn into markup)."""
    manifest = entry.manifest or {}
    licence = manifest.get("license") or {}
    licence_id = str(licence.get("id") or "unknown")
    lines = [f"### {_escape(licence_label(manifest))}"]
    known = KNOWN_LICENCES.get(licence_id.lower())
    if known:
        lines += ["", _escape(known[1]), "", f"Full text: `{known[2]}`"]
    elif licence_id == "unknown":
        lines += ["", "The pack does not say which licence its weights are under; ask whoever made the model before sharing its pictures."]
    if licence.get("note"):
        lines += ["", _escape(str(licence["note"]))]
    for path, text in _licence_files(entry.root, manifest):
        lines += ["", f"#### {_escape(path)}", ""] + ["    " + line for line in text.splitlines()]
    return "\n".join(lines)


def _licence_files(root: Path, manifest: dict[str, Any]) -> list[tuple[str, str]]:
    found = []
    for f in manifest.get("files") or []:
        rel = str(f.get("path", "")) if isinstance(f, dict) else ""
        if Path(rel).stem.upper() not in LICENCE_FILES:
            continue
        try:
            with open(confined_path(root, rel), encoding="utf-8", errors="replace") as fh:
                found.append((rel, fh.read(MAX_LICENCE_FILE_CHARS)))
        except (OSError, PackError):
            continue  # missing or outside the pack: Verify integrity reports it
    return found


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("*", "\\*").replace("_", "\\_").replace("`", "\\`").replace("<", "&lt;").replace("#", "\\#")
