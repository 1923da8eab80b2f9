"""Export a single-file ``.safetensors`` checkpoint (the Civitai / A1111 format) to an image pack.

The file's family is told from its header alone (``desktop.engines.image.checkpoint``); diffusers'
``from_single_file`` then builds the pipeline from the configs we vendor under
``resources/image_configs/<family>/`` with the hub switched off, and the existing Stable Diffusion
export runs unchanged (convert -> validate -> quantize -> re-validate -> manifest). The manifest
adds what a user needs to get good images: family, native size, recommended steps, guidance,
scheduler and the licence.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from desktop.engines.errors import ExportError
from desktop.engines.image.checkpoint import Detected, detect, read_header
from desktop.engines.image.schedulers import DIFFUSERS_NAMES
from desktop.engines.packs.pack import sha256_file

from ...pipeline import Source
from ...registry import register
from ...sources import force_offline
from .configs import StableDiffusionExport
from .lora import describe, merge_lora, read_lora
from .prediction import check_choice, decide
from .source import _short

CONFIGS = Path(__file__).resolve().parents[3] / "resources" / "image_configs"
# Families whose graphs the image engine runs today; the inpainting ones run the engine's
# 9-channel path.
EXPORTABLE = ("sd15", "sd15-inpainting", "sd21", "sd21-base", "sd21-turbo", "sd2-inpainting", "sdxl", "sdxl-turbo", "sdxl-inpainting")
# The base models' licences; a fine-tune inherits its base's unless its metadata says otherwise.
LICENCES = {
    "sd15": "creativeml-openrail-m", "sd15-inpainting": "creativeml-openrail-m", "sd21": "openrail++",
    "sd21-base": "openrail++", "sd2-inpainting": "openrail++", "sdxl": "openrail++", "sdxl-inpainting": "openrail++",
    "sd21-turbo": "sai-nc-community", "sdxl-turbo": "sai-nc-community",
}
PIPELINES = {"StableDiffusionPipeline", "StableDiffusionInpaintPipeline", "StableDiffusionXLPipeline", "StableDiffusionXLInpaintPipeline"}


def configs_folder() -> Path:
    """The config bundles: the vendored ones, or a folder named by ATELIER_IMAGE_CONFIGS (tests
    use tiny ones; the export runs in a child process, so a setting must travel in the environment)."""
    return Path(os.environ.get("ATELIER_IMAGE_CONFIGS") or CONFIGS)


def bundle_key(found: Detected) -> str:
    if found.turbo and found.family.key in ("sd21", "sdxl"):
        return found.family.key + "-turbo"
    return found.family.key


def assemble_config(key: str, into: Path, configs: Path = CONFIGS) -> Path:
    """A complete config folder for ``key``: the bundle plus the shared CLIP tokenizer files."""
    src = configs / key
    if not (src / "model_index.json").is_file():
        raise ExportError(f"No vendored configs for '{key}' under {configs}; reinstall Atelier.")
    folder = into / key
    shutil.copytree(src, folder)
    tokenizer = configs / "clip-tokenizer"
    for sub in ("tokenizer", "tokenizer_2"):
        if (folder / sub).is_dir() and not any((folder / sub / f).exists() for f in ("vocab.json", "tokenizer.json")):
            for name in ("vocab.json", "merges.txt"):
                shutil.copyfile(tokenizer / name, folder / sub / name)
    return folder


def load_checkpoint_source(location: str, vae: str | Path | None = None, lora: str | Path | None = None, configs: Path | None = None,
                           convert_pickle: bool = False, prediction_type: str | None = None) -> Source:
    path = Path(location).expanduser()
    if convert_pickle and path.suffix.lower() != ".safetensors":
        from .pickle_checkpoint import convert_pickle as convert

        converted = Path(tempfile.mkdtemp(prefix="atelier-ckpt-"))
        try:
            source = load_checkpoint_source(str(convert(path, converted)), vae, lora, configs, prediction_type=prediction_type)
        finally:
            shutil.rmtree(converted, ignore_errors=True)
        source.location, source.sha256 = str(location), {path.name: sha256_file(path), **{k: v for k, v in source.sha256.items() if k != path.stem + ".safetensors"}}
        return source
    header = read_header(path)  # refuses pickles and lying headers before torch is touched
    found = detect(path, header)
    key = bundle_key(found)
    prediction, decided_by = check_choice(prediction_type), "--prediction-type"
    if key == "sd21":  # the 768 v model or the 512 epsilon base: the weights' layout does not say
        prediction, decided_by = decide(path, header.metadata, prediction)
        key = "sd21" if prediction == "v_prediction" else "sd21-base"
    if key not in EXPORTABLE:
        raise ExportError(f"'{path.name}' is {found.family.label}{' Turbo' if found.turbo else ''}; Atelier exports "
                          "Stable Diffusion 1.x, 2.x and XL (with their inpainting models, and the Turbo models) checkpoints so far.")
    if lora is not None:
        read_lora(Path(lora))  # refused before loading gigabytes: a pickle, no LoRA weights
    if vae is None and not found.has_vae:
        raise ExportError(f"'{path.name}' holds no VAE; give one with --vae FILE.safetensors.")
    force_offline()
    import diffusers
    import torch

    with tempfile.TemporaryDirectory(prefix="atelier-configs-") as tmp:
        folder = assemble_config(key, Path(tmp), configs or configs_folder())
        cls_name = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))["_class_name"]
        if cls_name not in PIPELINES:
            raise ExportError(f"The vendored config for '{key}' names an unknown pipeline {cls_name!r}.")
        try:
            kwargs: dict[str, Any] = {}
            if vae is not None:
                kwargs["vae"] = _load_vae(Path(vae), folder / "vae")
            pipe = getattr(diffusers, cls_name).from_single_file(
                str(path), config=str(folder), local_files_only=True, torch_dtype=torch.float32, **kwargs)
        except ExportError:
            raise
        except Exception as exc:  # noqa: BLE001 - diffusers raises anything on a file it cannot map
            raise ExportError(f"Could not load '{path.name}' as {found.family.label}: {_short(exc)}") from None
        defaults = json.loads((folder / "atelier_defaults.json").read_text(encoding="utf-8"))
    if prediction is not None and pipe.scheduler.config.prediction_type != prediction:
        pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config, prediction_type=prediction)
    hashes = {path.name: sha256_file(path)}
    if vae is not None:
        hashes["vae:" + Path(vae).name] = sha256_file(Path(vae))
    if lora is not None:
        hashes["lora:" + Path(lora).name] = merge_lora(pipe, Path(lora))
    for part in (pipe.unet, pipe.vae, pipe.text_encoder):
        part.eval()
    licence = header.metadata.get("modelspec.license") or LICENCES[key]
    pack_config = {
        "family": key,
        "family_label": found.family.label + (" Turbo" if found.turbo else "") + {"sd21": " 768 (v-prediction)", "sd21-base": " 512 base"}.get(key, ""),
        "native_size": int(pipe.unet.config.sample_size) * 2 ** (len(pipe.vae.config.block_out_channels) - 1),
        "default_steps": int(defaults["default_steps"]),
        "default_guidance": float(defaults["default_guidance"]),
        # ours, from the bundle: the publisher's scheduler may be one the engine lacks (PNDM)
        "prediction_type": str(pipe.scheduler.config.prediction_type),
        "default_scheduler": defaults.get("default_scheduler") or DIFFUSERS_NAMES.get(type(pipe.scheduler).__name__, "euler"),
    }
    card = f"# {path.stem}\n\nExported from the single-file checkpoint {path.name} ({pack_config['family_label']})."
    if prediction is not None:
        pack_config["prediction_type_source"] = decided_by
        pack_config["export_notes"] = [f"prediction type {prediction}, from {decided_by}"]
        card += f"\n\nPrediction type: {prediction}, from {decided_by}."
    if vae is not None:
        card += f"\n\nVAE replaced by {Path(vae).name} before export."
    if lora is not None:
        card += f"\n\nLoRA merged before export: {describe(Path(lora))}."
    return Source(architecture="stable-diffusion-checkpoint", model=pipe, location=str(location), kind="checkpoint",
                  sha256=hashes, extras={"pack_config": pack_config, "checkpoint": str(path)},
                  license={"id": licence}, model_card=card)


def _load_vae(vae: Path, config: Path):
    from diffusers import AutoencoderKL

    header = read_header(vae)  # a pickle or a lying header is refused here too
    if not any(n.startswith(("encoder.", "decoder.", "first_stage_model.")) for n in header.tensors):
        raise ExportError(f"'{vae.name}' is not a VAE (no encoder/decoder weights).")
    try:
        return AutoencoderKL.from_single_file(str(vae), config=str(config), local_files_only=True)
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"Could not load the VAE '{vae.name}': {_short(exc)}") from None


# The export config for each pipeline class a checkpoint can load as, beyond SD 1.x/2.x's
# (``sdxl`` registers SDXL's): one architecture name serves every single-file checkpoint,
# because the family is known only once the file is read.
CHECKPOINT_EXPORTS: dict[str, type] = {}


def checkpoint_export(*pipeline_classes: str):
    def deco(cls):
        CHECKPOINT_EXPORTS.update(dict.fromkeys(pipeline_classes, cls))
        return cls

    return deco


@register("image", "stable-diffusion-checkpoint")
class CheckpointExport(StableDiffusionExport):
    """The Stable Diffusion export, with the checkpoint's family and recommended settings recorded."""

    options = ("lora", "vae", "convert_pickle", "prediction_type")

    def __new__(cls, source: Source):
        return super().__new__(CHECKPOINT_EXPORTS.get(type(source.model).__name__, cls))

    @classmethod
    def load_source(cls, location: str, architecture: str, lora: str | Path | None = None, vae: str | Path | None = None,
                    convert_pickle: bool = False, prediction_type: str | None = None, **options: Any) -> Source:
        return load_checkpoint_source(location, vae=vae, lora=lora, convert_pickle=bool(convert_pickle), prediction_type=prediction_type)

    def draft_manifest(self, pack_dir: Path, precision: str) -> dict[str, Any]:
        fields = super().draft_manifest(pack_dir, precision)
        fields["architecture"] = self.pack_architecture  # the engine runs it as any pack of its family
        fields["config"].update(self.source.extras["pack_config"])
        return fields
