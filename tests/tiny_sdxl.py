"""A tiny random Stable Diffusion XL pipeline from diffusers config classes, as a diffusers
folder and as a single-file checkpoint in the original (Stability's sgm) key layout.

Shaped like the real thing where our code looks: two CLIP text encoders of different widths
(the second with a projection, its tokenizer padding with "!"), a UNet with SDXL's added
"text_time" conditioning (pooled text + six size ids), a VAE with SDXL's scaling factor and
``force_upcast``. The single file uses the names real SDXL files have
(``model.diffusion_model.*`` with ``label_emb``, ``conditioner.embedders.0.transformer.*`` for
CLIP-L, ``conditioner.embedders.1.model.*`` in OpenCLIP's layout for the second encoder,
``first_stage_model.*``), the inverse of what diffusers' ``from_single_file`` maps.
"""

from __future__ import annotations

from pathlib import Path

from tests.tiny_checkpoint import _rename, unet_prefixes, vae_prefixes
from tests.tiny_sd import write_tiny_clip_tokenizer

WIDTHS = (32, 64)  # the two encoders' hidden sizes; different, as in SDXL (768 and 1280)
PROJECTION = 32
TIME_EMBED = 8
SDXL_SCHEDULER = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "steps_offset": 1, "timestep_spacing": "leading"}


def tiny_sdxl_folder(folder: Path, seed: int = 0, turbo: bool = False, inpainting: bool = False) -> Path:
    """Saved as StableDiffusionXLPipeline, or, with ``inpainting``, as StableDiffusionXLInpaintPipeline
    over a 9-channel UNet (latents, mask, masked picture)."""
    import diffusers
    import torch
    from diffusers import AutoencoderKL, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    torch.manual_seed(seed)
    tok_dir = write_tiny_clip_tokenizer(folder.parent / (folder.name + "-tok"))
    tokenizer = CLIPTokenizer(str(tok_dir / "vocab.json"), str(tok_dir / "merges.txt"), model_max_length=77)
    tokenizer_2 = CLIPTokenizer(str(tok_dir / "vocab.json"), str(tok_dir / "merges.txt"), model_max_length=77, pad_token="!")

    def clip(cls, width: int, **extra):
        return cls(CLIPTextConfig(
            vocab_size=len(tokenizer), hidden_size=width, intermediate_size=64, num_attention_heads=4, num_hidden_layers=3,
            max_position_embeddings=77, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id, hidden_act="gelu", **extra,
        ))

    text_encoder = clip(CLIPTextModel, WIDTHS[0])
    text_encoder_2 = clip(CLIPTextModelWithProjection, WIDTHS[1], projection_dim=PROJECTION)
    unet = UNet2DConditionModel(
        sample_size=16, in_channels=9 if inpainting else 4, out_channels=4, block_out_channels=(32, 64), layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        transformer_layers_per_block=(1, 2), attention_head_dim=(2, 4), use_linear_projection=True,
        cross_attention_dim=sum(WIDTHS), addition_embed_type="text_time", addition_time_embed_dim=TIME_EMBED,
        projection_class_embeddings_input_dim=PROJECTION + 6 * TIME_EMBED, norm_num_groups=32,
    )
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, block_out_channels=(32, 64), down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=32, sample_size=32,
        scaling_factor=0.13025, force_upcast=True,
    )
    if turbo:  # SDXL-Turbo's scheduler: ancestral Euler over trailing timesteps
        scheduler = diffusers.EulerAncestralDiscreteScheduler.from_config({**SDXL_SCHEDULER, "timestep_spacing": "trailing"})
    else:
        scheduler = diffusers.EulerDiscreteScheduler.from_config(SDXL_SCHEDULER)
    cls = diffusers.StableDiffusionXLInpaintPipeline if inpainting else StableDiffusionXLPipeline
    pipe = cls(vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2, tokenizer=tokenizer,
                                     tokenizer_2=tokenizer_2, unet=unet, scheduler=scheduler)
    pipe.save_pretrained(str(folder))
    return folder


def _open_clip_state(encoder) -> dict:
    """CLIPTextModelWithProjection's weights under OpenCLIP's names (SDXL's second encoder)."""
    import torch

    state = {k.removeprefix("text_model."): v for k, v in encoder.state_dict().items()}
    out = {"positional_embedding": state["embeddings.position_embedding.weight"],
           "token_embedding.weight": state["embeddings.token_embedding.weight"],
           "ln_final.weight": state["final_layer_norm.weight"], "ln_final.bias": state["final_layer_norm.bias"],
           "text_projection": state["text_projection.weight"].T}
    for i in range(encoder.config.num_hidden_layers):
        src, dst = f"encoder.layers.{i}.", f"transformer.resblocks.{i}."
        for kind in ("weight", "bias"):
            out[dst + f"attn.in_proj_{kind}"] = torch.cat([state[src + f"self_attn.{p}_proj.{kind}"] for p in "qkv"])
            out[dst + f"attn.out_proj.{kind}"] = state[src + f"self_attn.out_proj.{kind}"]
            out[dst + f"ln_1.{kind}"] = state[src + f"layer_norm1.{kind}"]
            out[dst + f"ln_2.{kind}"] = state[src + f"layer_norm2.{kind}"]
            out[dst + f"mlp.c_fc.{kind}"] = state[src + f"mlp.fc1.{kind}"]
            out[dst + f"mlp.c_proj.{kind}"] = state[src + f"mlp.fc2.{kind}"]
    return out


def original_sdxl_state_dict(pipe) -> dict:
    prefixes = unet_prefixes(pipe.unet.config)
    prefixes.update({"add_embedding.linear_1.": "label_emb.0.0.", "add_embedding.linear_2.": "label_emb.0.2."})
    state = _rename(pipe.unet.state_dict(), prefixes, "model.diffusion_model.")
    state.update(_rename(pipe.vae.state_dict(), vae_prefixes(pipe.vae.config), "first_stage_model."))
    state.update({"conditioner.embedders.0.transformer." + ("" if k.startswith("text_model.") else "text_model.") + k: v
                  for k, v in pipe.text_encoder.state_dict().items()})
    state.update({"conditioner.embedders.1.model." + k: v for k, v in _open_clip_state(pipe.text_encoder_2).items()})
    return {k: v.contiguous() for k, v in state.items()}


def write_sdxl_single_file(folder: Path, out: Path) -> Path:
    from diffusers import StableDiffusionXLPipeline
    from safetensors.torch import save_file

    pipe = StableDiffusionXLPipeline.from_pretrained(str(folder), local_files_only=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(original_sdxl_state_dict(pipe), str(out))
    return out


def _code_key() -> str:
    """Cached models are rebuilt whenever the code that makes or exports them changes."""
    import hashlib

    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for rel in ("tests/tiny_sdxl.py", "tests/tiny_checkpoint.py", "exporters/pipeline.py", *(f"exporters/image/stable_diffusion/{m}.py" for m in (
            "configs", "source", "graph", "attention", "validate", "sdxl", "sdxl_graph", "validate_inpaint", "checkpoint"))):
        h.update((root / rel).read_bytes())
    return h.hexdigest()[:12]


def tiny_sdxl_source(cache: Path, turbo: bool = False, inpainting: bool = False) -> Path:
    kind = "turbo-" if turbo else "inpainting-" if inpainting else ""
    folder = cache / f"tiny-sdxl-{_code_key()}" / f"{kind}pipeline"
    if not (folder / "model_index.json").is_file():
        tiny_sdxl_folder(folder, turbo=turbo, inpainting=inpainting)
    return folder


def tiny_sdxl_pack(cache: Path, precision: str = "fp32", inpainting: bool = False) -> Path:
    """The tiny SDXL folder exported by our exporter (the real pipeline, in-process)."""
    import shutil

    import exporters

    kind = "inpainting-" if inpainting else ""
    out = cache / f"tiny-sdxl-{_code_key()}" / f"pack-{kind}{precision}"
    if (out / "manifest.json").is_file():
        return out
    shutil.rmtree(out, ignore_errors=True)
    return exporters.export("image", tiny_sdxl_source(cache, inpainting=inpainting), out, precision, name=f"tiny-sdxl-{kind}{precision}")


def tiny_sdxl_checkpoint(cache: Path, name: str = "tiny-sdxl.safetensors") -> tuple[Path, Path]:
    """(checkpoint file, the diffusers folder it was written from)."""
    folder = tiny_sdxl_source(cache, turbo="turbo" in name)
    ckpt = folder.parent / name
    if not ckpt.is_file():
        write_sdxl_single_file(folder, ckpt)
    return ckpt, folder
