"""Loading a diffusers pipeline folder to export, with an optional LoRA merged in.

Only local folders (``save_pretrained`` output with ``model_index.json``) are read, and the
Hugging Face libraries are switched to offline mode first, so an export never reaches
the network.
"""

from __future__ import annotations

import json
from pathlib import Path

from desktop.engines.errors import ExportError
from desktop.engines.packs.pack import sha256_file

from ...pipeline import Source
from ...sources import force_offline, readme_card
from ...sources import short_error as _short
from .lora import describe, merge_lora, read_lora

# diffusers pipeline classes whose components are SD 1.x/2.x-shaped (CLIP + UNet + VAE)
SD_CLASSES = {
    "StableDiffusionPipeline",
    "StableDiffusionImg2ImgPipeline",
    "StableDiffusionInpaintPipeline",  # a 9-channel UNet; the manifest says "inpainting"
    "LatentConsistencyModelPipeline",
    "LatentConsistencyModelImg2ImgPipeline",
}
# ... and SDXL's (two CLIP encoders, added size/pooled conditioning), exported by ``sdxl``
SDXL_CLASSES = {"StableDiffusionXLPipeline", "StableDiffusionXLImg2ImgPipeline", "StableDiffusionXLInpaintPipeline"}
ARCHITECTURES = {**dict.fromkeys(SD_CLASSES, "stable-diffusion"), **dict.fromkeys(SDXL_CLASSES, "stable-diffusion-xl")}
COMPONENTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")


def detect_image_architecture(location: str) -> str:
    path = Path(location).expanduser()
    index = path / "model_index.json"
    if not path.is_dir() or not index.is_file():
        raise ExportError(
            f"'{location}' is not a diffusers pipeline folder (no model_index.json). "
            "Image export reads a folder written by diffusers' save_pretrained."
        )
    try:
        cls = json.loads(index.read_text(encoding="utf-8"))["_class_name"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise ExportError(f"{index} is not a valid diffusers model index.") from None
    return ARCHITECTURES.get(cls, str(cls))


def load_image_source(location: str, architecture: str, lora: str | Path | None = None, components: tuple[str, ...] = COMPONENTS) -> Source:
    import torch
    from diffusers import DiffusionPipeline

    path = Path(location).expanduser()
    if lora is not None:
        read_lora(Path(lora))  # refused before loading gigabytes: a pickle, no LoRA weights
    missing = [c for c in components if not (path / c).is_dir()]
    if missing:
        raise ExportError(f"'{location}' lacks the component folder(s) {', '.join(missing)}; a Stable Diffusion pipeline needs {', '.join(components)}.")
    force_offline()
    hashes = {f.relative_to(path).as_posix(): sha256_file(f) for c in components for f in sorted((path / c).glob("*")) if f.is_file()}
    try:
        pipe = DiffusionPipeline.from_pretrained(str(path), local_files_only=True, torch_dtype=torch.float32, safety_checker=None, requires_safety_checker=False)
    except Exception as exc:
        raise ExportError(f"Could not load '{location}' with diffusers: {_short(exc)}") from None
    extras: dict = {"folder": path}
    if lora is not None:
        hashes["lora:" + Path(lora).name] = merge_lora(pipe, Path(lora))
        extras["lora"] = str(lora)
    for part in (pipe.unet, pipe.vae, pipe.text_encoder):
        part.eval()
    card, licence = _card(path)
    if lora is not None:
        card += f"\n\nLoRA merged before export: {describe(Path(lora))} (sha256 {hashes['lora:' + Path(lora).name][:16]}...)."
    return Source(architecture=architecture, model=pipe, location=str(location), kind="diffusers-folder", sha256=hashes, extras=extras, license=licence, model_card=card)


def _card(path: Path) -> tuple[str, dict]:
    card, licence = readme_card(path)
    if not card:
        card = f"# {path.name}\n\nExported from the diffusers pipeline folder {path.name}."
    return card, ({"id": licence} if licence else {})
