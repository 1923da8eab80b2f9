"""Read a single-file image checkpoint's header and tell which model family it is.

Users of DiffusionBee, Draw Things, ComfyUI and A1111 hold one ``.safetensors`` file per model, in
the original (not diffusers) key layout. Before anything heavy runs we read only the header (a JSON
table of tensor names, dtypes, shapes and byte ranges), check that it is honest about the file, and
match it against a table of families. Nothing here imports torch: the app can tell a user what a
file is, or why it is refused, without the export tools installed.

Pickle ``.ckpt`` files are refused here: unpickling can run arbitrary code.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from desktop.engines.errors import ImportFormatError

# Largest header we accept: real SDXL checkpoints have ~2,500 tensors and a ~300 KB header.
MAX_HEADER_BYTES = 64 * 1024 * 1024
DTYPE_BYTES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
    "F8_E4M3": 1, "F8_E5M2": 1, "U16": 2, "U32": 4, "U64": 8,
}
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
CHECKPOINT_SUFFIXES = (".safetensors", *PICKLE_SUFFIXES)  # what is read (or refused) as a single-file checkpoint


@dataclass(frozen=True)
class TensorInfo:
    dtype: str
    shape: tuple[int, ...]
    start: int
    end: int


@dataclass(frozen=True)
class Header:
    tensors: Mapping[str, TensorInfo]
    metadata: Mapping[str, str]
    data_start: int


def read_header(path: Path) -> Header:
    """The tensor table of a ``.safetensors`` file, refused unless it describes the file exactly."""
    path = Path(path)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise ImportFormatError(
            f"'{path.name}' is a pickle checkpoint; loading one can run any code its author put in it, "
            "so Atelier does not open it. Use the model's .safetensors file, or, if you trust its source, "
            "`python -m exporters image FILE --convert-pickle` (tensors only, in a separate process)."
        )
    size = path.stat().st_size
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) < 8:
            raise ImportFormatError(f"'{path.name}' is too short to be a safetensors file.")
        length = int.from_bytes(raw, "little")
        if length <= 1 or length > min(MAX_HEADER_BYTES, size - 8):
            raise ImportFormatError(f"'{path.name}' is not a safetensors file (its header length {length:,} does not fit the file).")
        text = f.read(length)
    try:
        table = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ImportFormatError(f"'{path.name}' has a damaged safetensors header (not valid JSON).") from None
    if not isinstance(table, dict):
        raise ImportFormatError(f"'{path.name}' has a damaged safetensors header (not a table of tensors).")
    metadata = table.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ImportFormatError(f"'{path.name}' has damaged metadata in its safetensors header.")
    data_start, data_size = 8 + length, size - 8 - length
    tensors = {name: _tensor(path.name, name, entry, data_size) for name, entry in table.items()}
    _check_no_overlap(path.name, tensors)
    return Header(tensors, metadata, data_start)


def _tensor(file: str, name: str, entry, data_size: int) -> TensorInfo:
    bad = f"'{file}' has a damaged safetensors header: tensor '{name[:80]}'"
    if not isinstance(entry, dict):
        raise ImportFormatError(f"{bad} is not described.")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if dtype not in DTYPE_BYTES:
        raise ImportFormatError(f"{bad} has an unknown type {str(dtype)[:20]!r}.")
    if not isinstance(shape, list) or len(shape) > 8 or not all(isinstance(d, int) and 0 <= d < 2**40 for d in shape):
        raise ImportFormatError(f"{bad} has an impossible shape.")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
        raise ImportFormatError(f"{bad} has no byte range.")
    start, end = offsets
    if not 0 <= start <= end <= data_size:
        raise ImportFormatError(f"{bad} points outside the file (bytes {start:,}-{end:,} of {data_size:,}).")
    if end - start != math.prod(shape) * DTYPE_BYTES[dtype]:
        raise ImportFormatError(f"{bad} says {shape} {dtype} but spans {end - start:,} bytes.")
    return TensorInfo(dtype, tuple(shape), start, end)


def _check_no_overlap(file: str, tensors: Mapping[str, TensorInfo]) -> None:
    spans = sorted((t.start, t.end, n) for n, t in tensors.items() if t.end > t.start)
    for (s0, e0, n0), (s1, _e1, n1) in zip(spans, spans[1:]):
        if s1 < e0:
            raise ImportFormatError(f"'{file}' has a damaged safetensors header: tensors '{n0[:60]}' and '{n1[:60]}' overlap.")


# --- families ---------------------------------------------------------------------------------

UNET = "model.diffusion_model."
CONV_IN = UNET + "input_blocks.0.0.weight"
CROSS_ATTN_K = UNET + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"
SDXL_CROSS_ATTN_K = UNET + "input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight"
LABEL_EMB = UNET + "label_emb.0.0.weight"
VAE = "first_stage_model."


@dataclass(frozen=True)
class Family:
    """One model family we can import, recognised from its tensor names and shapes."""

    key: str            # the vendored config bundle's folder name under resources/image_configs/
    label: str
    matches: Callable[[Mapping[str, TensorInfo]], bool]
    inpainting: bool = False
    native_size: int = 512
    notes: tuple[str, ...] = field(default_factory=tuple)


def _shape(t: Mapping[str, TensorInfo], name: str) -> tuple[int, ...] | None:
    info = t.get(name)
    return info.shape if info else None


def _in_channels(t) -> int | None:
    s = _shape(t, CONV_IN)
    return s[1] if s and len(s) == 4 else None


def _context_dim(t) -> int | None:
    s = _shape(t, CROSS_ATTN_K) or _shape(t, SDXL_CROSS_ATTN_K)
    return s[-1] if s else None


def _is_sdxl(t) -> bool:
    return any(n.startswith("conditioner.embedders.1.model.") for n in t) and LABEL_EMB in t


def _is_sd1(t) -> bool:
    return _context_dim(t) == 768 and any(n.startswith("cond_stage_model.transformer.") for n in t)


def _is_sd2(t) -> bool:
    return _context_dim(t) == 1024 and any(n.startswith("cond_stage_model.model.") for n in t)


FAMILIES: tuple[Family, ...] = (
    Family("sd15", "Stable Diffusion 1.x", lambda t: _is_sd1(t) and _in_channels(t) == 4),
    Family("sd15-inpainting", "Stable Diffusion 1.x inpainting", lambda t: _is_sd1(t) and _in_channels(t) == 9, inpainting=True),
    Family("sd21", "Stable Diffusion 2.x", lambda t: _is_sd2(t) and _in_channels(t) == 4,
           notes=("SD 2.x 768 models predict v, 512 ones predict noise; the weights do not say which.",)),
    Family("sd2-inpainting", "Stable Diffusion 2.x inpainting", lambda t: _is_sd2(t) and _in_channels(t) == 9, inpainting=True),
    Family("sdxl", "Stable Diffusion XL", lambda t: _is_sdxl(t) and _in_channels(t) == 4, native_size=1024),
    Family("sdxl-inpainting", "Stable Diffusion XL inpainting", lambda t: _is_sdxl(t) and _in_channels(t) == 9,
           inpainting=True, native_size=1024),
)

# Files we recognise but do not run, named so the user learns what they hold.
REFUSED: tuple[tuple[str, Callable[[Mapping[str, TensorInfo]], bool]], ...] = (
    ("a LoRA (apply it to a base model with --lora when exporting)",
     lambda t: any(n.startswith(("lora_unet_", "lora_te", "lora_transformer_")) or ".lora_down." in n or ".lora_A." in n for n in t)),
    ("a VAE on its own (give it with --vae beside a full checkpoint)",
     lambda t: bool(t) and all(n.startswith(("encoder.", "decoder.", "quant_conv", "post_quant_conv", VAE)) for n in t)),
    ("Stable Diffusion XL refiner", lambda t: any(n.startswith("conditioner.embedders.0.model.") for n in t) and not _is_sdxl(t)),
    ("Stable Diffusion 3", lambda t: any("joint_blocks.0.context_block" in n for n in t)),
    ("Flux", lambda t: any("double_blocks.0.img_attn" in n for n in t)),
    ("a ControlNet", lambda t: any(n.startswith(("control_model.", "controlnet_cond_embedding.")) for n in t)),
    ("Stable Cascade", lambda t: any(n.startswith(("clip_txt_mapper.", "down_blocks.1.0.channelwise.")) for n in t)),
    ("an instruct-pix2pix model (8-channel UNet)", lambda t: _in_channels(t) == 8),
    ("a model in diffusers' layout (import its folder instead)", lambda t: any(n.startswith(("down_blocks.", "conv_in.")) for n in t)),
)


@dataclass(frozen=True)
class Detected:
    family: Family
    has_vae: bool
    turbo: bool


def supported_list() -> str:
    return ", ".join(f.label for f in FAMILIES)


def detect(path: Path, header: Header | None = None) -> Detected:
    """The family of a single-file checkpoint, or an ImportFormatError naming what it is."""
    path = Path(path)
    header = header or read_header(path)
    t = header.tensors
    family = next((f for f in FAMILIES if f.matches(t)), None)
    if family is None:
        what = next((label for label, test in REFUSED if test(t)), None)
        lead = f"'{path.name}' is {what}" if what else f"'{path.name}' is not a model Atelier recognises"
        raise ImportFormatError(f"{lead}. Single-file checkpoints Atelier imports: {supported_list()}.")
    # Turbo models share their base's layout exactly; the name (or the maker's metadata) is all that tells.
    hints = " ".join([path.stem] + [str(v) for v in header.metadata.values()]).lower()
    return Detected(family, has_vae=any(n.startswith(VAE) for n in t), turbo="turbo" in hints)

