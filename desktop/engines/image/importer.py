"""Import a Stable-Diffusion-family folder exported by optimum (or laid out like one).

The folder holds ``model_index.json`` and one sub-folder per component: ``text_encoder/``,
``unet/``, ``vae_decoder/``, optional ``vae_encoder/`` (img2img), ``tokenizer/`` and
``scheduler/``; SDXL adds ``text_encoder_2/`` and ``tokenizer_2/`` (its UNet takes
``text_embeds`` and ``time_ids``, which is how it is told apart). We check every component is there, read the facts the engine needs from
the components' ``config.json`` (falling back to the graphs' shapes), fit the cheap
preview map once with the VAE, and write an Atelier manifest over the copied files.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from desktop.engines.errors import ImportFormatError, PackFormatError
from desktop.engines.packs.importers import guess_precision, importer, read_model_card
from desktop.engines.image.onnx_inputs import graph_inputs

GRAPH = "model.onnx"
REQUIRED = ("text_encoder", "unet", "vae_decoder")
OPTIONAL = ("vae_encoder",)
UNSUPPORTED_HINTS = {
    "transformer": "a diffusion transformer (SD3 / Flux / PixArt)",
}
XL_REQUIRED = ("text_encoder_2",)  # SDXL's second encoder, beside REQUIRED


def _is_sd_folder(path: Path) -> bool:
    return (path / "model_index.json").is_file() and any((path / c / GRAPH).is_file() for c in REQUIRED + OPTIONAL + ("transformer",))


@importer("Stable Diffusion folder exported by optimum (model_index.json + text_encoder/ unet/ vae_decoder/ tokenizer/ scheduler/)", _is_sd_folder)
def _import_sd(src: Path, dest: Path, name: str | None) -> dict:
    for folder, what in UNSUPPORTED_HINTS.items():
        if (dest / folder).is_dir():
            raise ImportFormatError(f"'{src.name}' is {what}; Atelier runs Stable Diffusion 1.x/2.x/XL-family pipelines only.")
    xl = (dest / "unet" / GRAPH).is_file() and _takes_added_conditions(dest / "unet" / GRAPH)
    graphs, tokenizers = (REQUIRED + XL_REQUIRED, ("tokenizer", "tokenizer_2")) if xl else (REQUIRED, ("tokenizer",))
    missing = [c for c in graphs if not (dest / c / GRAPH).is_file()]
    for tok in tokenizers:
        if not (dest / tok).is_dir() or not any((dest / tok / f).is_file() for f in ("tokenizer.json", "vocab.json")):
            missing.append(tok)
    if not (dest / "scheduler" / "scheduler_config.json").is_file():
        missing.append("scheduler")
    if missing:
        raise ImportFormatError(
            f"'{src.name}' is missing the Stable Diffusion component(s): {', '.join(f'{m}/' for m in missing)}. "
            "Export or copy the complete folder (text_encoder/, unet/, vae_decoder/, tokenizer/, scheduler/)."
        )
    index = _json(dest / "model_index.json")
    unet_cfg = _json(dest / "unet" / "config.json")
    vae_cfg = _json(dest / "vae_decoder" / "config.json") or _json(dest / "vae_encoder" / "config.json")
    scheduler = _json(dest / "scheduler" / "scheduler_config.json")
    tok_cfg = _json(dest / "tokenizer" / "tokenizer_config.json")
    latent_channels, latent_side, distilled = _unet_facts(dest / "unet" / GRAPH, unet_cfg)
    vae_blocks = vae_cfg.get("block_out_channels") or [128, 256, 512, 512]
    vae_scale = 2 ** (len(vae_blocks) - 1)
    unet_blocks = unet_cfg.get("block_out_channels") or [320, 640, 1280, 1280]
    down = unet_cfg.get("down_block_types") or ["CrossAttnDownBlock2D"]
    first_attention = next((i for i, b in enumerate(down) if "Attn" in b), 0)
    heads = unet_cfg.get("num_attention_heads") or unet_cfg.get("attention_head_dim") or 8
    heads = heads[first_attention] if isinstance(heads, list) else heads
    has_encoder = (dest / "vae_encoder" / GRAPH).is_file()
    max_length = tok_cfg.get("model_max_length", 77)
    config = {
        "pipeline_class": str(index.get("_class_name", "")),
        "scheduler_class": str(scheduler.get("_class_name", "")),
        "latent_channels": latent_channels,
        "vae_scale_factor": vae_scale,
        "scaling_factor": float(vae_cfg.get("scaling_factor", 0.18215)),
        "shift_factor": float(vae_cfg.get("shift_factor") or 0.0),
        "sample_size": int(unet_cfg.get("sample_size") or latent_side or 64),
        # optimum traces the UNet at a size its up-blocks double back exactly, so its graph
        # only takes latents divisible by the UNet's total down-sampling
        "size_multiple": max(8, vae_scale * 2 ** (len(unet_blocks) - 1)),
        "text_max_length": int(max_length) if isinstance(max_length, int) and max_length <= 1024 else 77,
        "attention": {"downsample": 2**first_attention, "heads": int(heads)},
        "vae_decoder_channels": int(vae_blocks[-1]),
        "latent_rgb": _fit_preview(dest, latent_channels, vae_scale, float(vae_cfg.get("scaling_factor", 0.18215)), float(vae_cfg.get("shift_factor") or 0.0), has_encoder),
    }
    if distilled:
        config["default_scheduler"] = "lcm"
    if xl:  # what the SDXL pipeline reads besides (see pipelines/sdxl.py)
        config["force_zeros_for_empty_prompt"] = bool(index.get("force_zeros_for_empty_prompt", True))
        config["vae_force_upcast"] = bool(vae_cfg.get("force_upcast", True))
    roles = {}
    for f in dest.rglob("*"):
        if f.is_file():
            rel = f.relative_to(dest).as_posix()
            top = rel.split("/")[0]
            if top in graphs + OPTIONAL:
                roles[rel] = top if f.name == GRAPH else ("weights" if ".onnx" in f.name else "config")
            elif top in tokenizers or top == "scheduler":
                roles[rel] = top
    return {
        "architecture": "stable-diffusion-xl" if xl else "stable-diffusion",
        "runtime": "onnxruntime",
        "modality": "image",
        "precision": guess_precision(dest),
        "config": config,
        "source": {"location": str(src), "kind": "optimum stable-diffusion folder"},
        "license": {"id": "unknown (imported; see the source's model card)"},
        "model_card": read_model_card(src),
        "_roles": roles,
    }


def _unet_facts(graph: Path, cfg: dict) -> tuple[int, int | None, bool]:
    """(latent channels, latent side if fixed, LCM-distilled?) read from the graph's inputs."""
    try:
        inputs = {name: [d if isinstance(d, int) else None for d in dims] for name, (_, dims) in graph_inputs(graph).items()}
    except PackFormatError as exc:  # a truncated or foreign file
        raise ImportFormatError(f"unet/{GRAPH}: {exc}") from None
    for needed in ("sample", "timestep", "encoder_hidden_states"):
        if needed not in inputs:
            raise ImportFormatError(f"unet/{GRAPH} has no '{needed}' input; it is not a Stable Diffusion UNet.")
    shape = inputs["sample"]
    channels = int(cfg.get("in_channels") or (shape[1] if len(shape) > 1 and shape[1] else 4))
    return channels, shape[2] if len(shape) > 2 else None, "timestep_cond" in inputs


def _takes_added_conditions(graph: Path) -> bool:
    """SDXL's UNet: it takes the pooled text and the size ids besides the text states."""
    try:
        names = graph_inputs(graph)
    except PackFormatError as exc:
        raise ImportFormatError(f"unet/{GRAPH}: {exc}") from None
    return "text_embeds" in names and "time_ids" in names


def _fit_preview(dest: Path, channels: int, factor: int, scale: float, shift: float, has_encoder: bool) -> dict:
    import onnxruntime as ort

    from desktop.engines.image.latent_preview import fit_from_decoder, fit_from_encoder

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if has_encoder:
        enc = ort.InferenceSession(str(dest / "vae_encoder" / GRAPH), opts, providers=["CPUExecutionProvider"])
        name = enc.get_inputs()[0].name
        return fit_from_encoder(lambda x: (enc.run(None, {name: x})[0][:, :channels] - shift) * scale, factor)
    dec = ort.InferenceSession(str(dest / "vae_decoder" / GRAPH), opts, providers=["CPUExecutionProvider"])
    name = dec.get_inputs()[0].name
    return fit_from_decoder(lambda z: dec.run(None, {name: (z / scale + shift).astype(np.float32)})[0], channels, factor)


def _json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ImportFormatError(f"'{path.parent.name}/{path.name}' is not valid JSON.") from None
    return data if isinstance(data, dict) else {}
