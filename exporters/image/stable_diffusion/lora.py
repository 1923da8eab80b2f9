"""Merging a LoRA into a Stable Diffusion pipeline before export, in either common key layout.

Two layouts are in use: diffusers / PEFT (``unet.down_blocks.0....to_q.lora_A.weight``, what
diffusers' training scripts save) and kohya / A1111
(``lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight`` with a
``.alpha`` per layer, what kohya's sd-scripts write and most shared LoRAs use). diffusers' own
loader reads both (its kohya converter applies alpha / rank), so names are never mapped by hand
here. What this module adds: the file's header is read first, so a pickle, a file holding no
LoRA or a LoRA made for another base is refused in words before anything loads; and after
loading, every layer the file adapts must have found its module, because a LoRA that half
matches loads without error and silently changes only part of the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from desktop.engines.errors import AtelierError, ExportError
from desktop.engines.image.checkpoint import read_header
from desktop.engines.packs.pack import sha256_file

from ...sources import short_error

KOHYA_PREFIXES = ("lora_unet_", "lora_te_", "lora_te1_", "lora_te2_")
# suffix of a layer's down (A) matrix, per layout
DOWN_SUFFIXES = (".lora_down.weight", ".lora_A.weight", ".lora.down.weight", ".lora_linear_layer.down.weight")
# the cross-attention width a UNet layer expects tells the base model
BASES = {768: "Stable Diffusion 1.x", 1024: "Stable Diffusion 2.x", 2048: "Stable Diffusion XL"}


@dataclass(frozen=True)
class LoraFile:
    path: Path
    layout: str  # "kohya" or "diffusers"
    layers: int  # how many modules it adapts
    context_dim: int | None  # the text width its cross-attention layers were trained on
    second_text_encoder: bool  # SDXL LoRAs may adapt the second (OpenCLIP bigG) encoder


def read_lora(path: Path) -> LoraFile:
    """What a LoRA file holds, from its header alone."""
    path = Path(path)
    if path.suffix.lower() != ".safetensors":
        raise ExportError("LoRA weights must be a .safetensors file (pickled .bin/.pt files can run code and are refused).")
    if not path.is_file():
        raise ExportError(f"LoRA file '{path}' does not exist.")
    try:
        names = read_header(path).tensors
    except AtelierError as exc:
        raise ExportError(f"The LoRA {exc}") from None
    downs = {n: info for n, info in names.items() if n.endswith(DOWN_SUFFIXES)}
    if not downs:
        raise ExportError(f"'{path.name}' holds no LoRA weights (no lora_down / lora_A matrices); is it a full model or a VAE?")
    context = next((info.shape[-1] for n, info in downs.items() if "attn2" in n and "to_k" in n and len(info.shape) == 2), None)
    return LoraFile(
        path=path,
        layout="kohya" if any(n.startswith(KOHYA_PREFIXES) for n in names) else "diffusers",
        layers=len(downs),
        context_dim=context,
        second_text_encoder=any(n.startswith(("lora_te2_", "text_encoder_2.")) for n in names),
    )


def check_lora_fits(lora: LoraFile, pipe) -> None:
    """Refuse a LoRA made for another base model, naming both."""
    have = int(pipe.unet.config.cross_attention_dim)
    theirs = lora.context_dim
    if lora.second_text_encoder and getattr(pipe, "text_encoder_2", None) is None:
        theirs = theirs or 2048
    if theirs is not None and theirs != have:
        raise ExportError(f"'{lora.path.name}' is a LoRA for {BASES.get(theirs, f'a model with {theirs}-wide text')}, but this model is "
                          f"{BASES.get(have, f'one with {have}-wide text')}; use a LoRA made for this model's base.")


def merge_lora(pipe, path: Path, scale: float = 1.0) -> str:
    """Load the LoRA with diffusers, check every layer found its module, fuse it into the base
    weights and drop the LoRA layers (the exported graph is the plain model); return the file's hash."""
    from safetensors.torch import load_file

    lora = read_lora(path)
    check_lora_fits(lora, pipe)
    try:
        pipe.load_lora_weights(load_file(str(path)), adapter_name="merged")
    except Exception as exc:  # noqa: BLE001 - diffusers and peft raise anything on a file they cannot map
        raise ExportError(f"Could not merge the LoRA '{path.name}': {short_error(exc)}") from None
    found = _adapted_modules(pipe)
    if found < lora.layers:
        pipe.unload_lora_weights()
        raise ExportError(f"Only {found} of the {lora.layers} layers in the LoRA '{path.name}' match this model; "
                          "it was made for another model (or another version of this one).")
    try:
        pipe.fuse_lora(lora_scale=scale)
        pipe.unload_lora_weights()
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"Could not merge the LoRA '{path.name}': {short_error(exc)}") from None
    return sha256_file(path)


def describe(path: Path) -> str:
    lora = read_lora(path)
    return f"{path.name} ({lora.layout} layout, {lora.layers} layers)"


def _adapted_modules(pipe) -> int:
    from peft.tuners.tuners_utils import BaseTunerLayer

    parts = [getattr(pipe, name, None) for name in ("unet", "text_encoder", "text_encoder_2")]
    return sum(isinstance(m, BaseTunerLayer) for part in parts if part is not None for m in part.modules())
