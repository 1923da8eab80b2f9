"""Tiny random SD 1.x pipelines written as single-file checkpoints in the ORIGINAL key layout.

Users hold checkpoints in the CompVis/A1111 layout (``model.diffusion_model.input_blocks...``,
``first_stage_model.encoder.down...``, ``cond_stage_model.transformer...``), not diffusers'. No such
file can be downloaded here, so this maps a tiny diffusers pipeline's names back to the original
ones (the inverse of what diffusers' ``from_single_file`` does), for any block count and depth.
The tiny UNet starts with a cross-attention block and uses 768-wide text, as SD 1.x does, so the
family detector sees the same shapes it sees in a real file.
"""

from __future__ import annotations

from pathlib import Path

from tests.tiny_sd import write_tiny_clip_tokenizer

RESNET = (("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("time_emb_proj", "emb_layers.1"),
          ("norm2", "out_layers.0"), ("conv2", "out_layers.3"), ("conv_shortcut", "skip_connection"))
VAE_RESNET = (("conv_shortcut", "nin_shortcut"),)
VAE_ATTN = (("group_norm.", "norm."), ("to_q.", "q."), ("to_k.", "k."), ("to_v.", "v."), ("to_out.0.", "proj_out."))


def _sub(rest: str, pairs) -> str:
    for new, old in pairs:
        if rest.startswith(new):
            return old + rest[len(new):]
    return rest


def unet_prefixes(config) -> dict[str, str]:
    """diffusers UNet module prefix -> original prefix (ResNets flagged by a trailing '|r')."""
    n, blocks = config.layers_per_block, len(config.block_out_channels)
    m = {"time_embedding.linear_1.": "time_embed.0.", "time_embedding.linear_2.": "time_embed.2.",
         "conv_in.": "input_blocks.0.0.", "conv_norm_out.": "out.0.", "conv_out.": "out.2.",
         "mid_block.resnets.0.": "middle_block.0.|r", "mid_block.attentions.0.": "middle_block.1.",
         "mid_block.resnets.1.": "middle_block.2.|r"}
    k = 1
    for i in range(blocks):
        for j in range(n):
            m[f"down_blocks.{i}.resnets.{j}."] = f"input_blocks.{k}.0.|r"
            m[f"down_blocks.{i}.attentions.{j}."] = f"input_blocks.{k}.1."
            k += 1
        if i < blocks - 1:
            m[f"down_blocks.{i}.downsamplers.0.conv."] = f"input_blocks.{k}.0.op."
            k += 1
    k = 0
    for i in range(blocks):
        has_attention = "CrossAttn" in config.up_block_types[i]
        for j in range(n + 1):
            m[f"up_blocks.{i}.resnets.{j}."] = f"output_blocks.{k}.0.|r"
            m[f"up_blocks.{i}.attentions.{j}."] = f"output_blocks.{k}.1."
            k += 1
        if i < blocks - 1:
            m[f"up_blocks.{i}.upsamplers.0.conv."] = f"output_blocks.{k - 1}.{2 if has_attention else 1}.conv."
    return m


def vae_prefixes(config) -> dict[str, str]:
    n, blocks = config.layers_per_block, len(config.block_out_channels)
    m = {"encoder.conv_norm_out.": "encoder.norm_out.", "decoder.conv_norm_out.": "decoder.norm_out."}
    for part in ("encoder", "decoder"):
        m[f"{part}.mid_block.resnets.0."] = f"{part}.mid.block_1.|v"
        m[f"{part}.mid_block.resnets.1."] = f"{part}.mid.block_2.|v"
        m[f"{part}.mid_block.attentions.0."] = f"{part}.mid.attn_1.|a"
    for i in range(blocks):
        for j in range(n):
            m[f"encoder.down_blocks.{i}.resnets.{j}."] = f"encoder.down.{i}.block.{j}.|v"
        for j in range(n + 1):
            m[f"decoder.up_blocks.{i}.resnets.{j}."] = f"decoder.up.{blocks - 1 - i}.block.{j}.|v"
        if i < blocks - 1:
            m[f"encoder.down_blocks.{i}.downsamplers.0."] = f"encoder.down.{i}.downsample."
            m[f"decoder.up_blocks.{i}.upsamplers.0."] = f"decoder.up.{blocks - 1 - i}.upsample."
    return m


def _rename(state: dict, prefixes: dict[str, str], top: str) -> dict:
    out = {}
    for name, tensor in state.items():
        match = max((p for p in prefixes if name.startswith(p)), key=len, default=None)
        if match is None:
            out[top + name] = tensor
            continue
        target, _, kind = prefixes[match].partition("|")
        rest = name[len(match):]
        if kind == "r":
            rest = _sub(rest, RESNET)
        elif kind == "v":
            rest = _sub(rest, VAE_RESNET)
        elif kind == "a":
            rest = _sub(rest, VAE_ATTN)
            if tensor.ndim == 2:  # the original VAE attention projections are 1x1 convolutions
                tensor = tensor[:, :, None, None]
        out[top + target + rest] = tensor
    return out


def original_state_dict(pipe) -> dict:
    """The pipeline's weights under the original SD 1.x checkpoint names."""
    state = _rename(pipe.unet.state_dict(), unet_prefixes(pipe.unet.config), "model.diffusion_model.")
    state.update(_rename(pipe.vae.state_dict(), vae_prefixes(pipe.vae.config), "first_stage_model."))
    # transformers >= 5.6 names CLIPTextModel's weights without the "text_model." level real files have
    state.update({"cond_stage_model.transformer." + ("" if k.startswith("text_model.") else "text_model.") + k: v
                  for k, v in pipe.text_encoder.state_dict().items()})
    return {k: v.contiguous() for k, v in state.items()}


def tiny_sd1_folder(folder: Path, seed: int = 0, in_channels: int = 4) -> Path:
    """A tiny SD 1.x-shaped diffusers pipeline folder (768-wide text, attention in the first block)."""
    import diffusers
    import torch
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(seed)
    tok_dir = write_tiny_clip_tokenizer(folder.parent / (folder.name + "-tok"))
    tokenizer = CLIPTokenizer(str(tok_dir / "vocab.json"), str(tok_dir / "merges.txt"), model_max_length=77)
    unet = UNet2DConditionModel(
        sample_size=16, in_channels=in_channels, out_channels=4, block_out_channels=(32, 64), layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=768, attention_head_dim=8, norm_num_groups=32,
    )
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, block_out_channels=(32, 64), down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=32, sample_size=32,
    )
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=768, intermediate_size=64, num_attention_heads=4, num_hidden_layers=2,
        max_position_embeddings=77, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    ))
    sched = diffusers.EulerDiscreteScheduler.from_config(
        {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "steps_offset": 1, "timestep_spacing": "leading"}
    )
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=sched,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(str(folder))
    return folder


def write_single_file(folder: Path, out: Path, metadata: dict | None = None) -> Path:
    """The diffusers pipeline at ``folder`` as one .safetensors file in the original layout."""
    from diffusers import StableDiffusionPipeline
    from safetensors.torch import save_file

    pipe = StableDiffusionPipeline.from_pretrained(str(folder), local_files_only=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(original_state_dict(pipe), str(out), metadata=metadata)
    return out


def tiny_sd1_checkpoint(cache: Path, name: str = "tiny-sd15.safetensors") -> tuple[Path, Path]:
    """(checkpoint file, the diffusers folder it was written from), cached under the test cache."""
    root = cache / "tiny-checkpoint-v1"
    folder, ckpt = root / "pipeline", root / name
    if not (folder / "model_index.json").is_file():
        tiny_sd1_folder(folder)
    if not ckpt.is_file():
        write_single_file(folder, ckpt)
    return ckpt, folder


def tiny_inpainting_folder(folder: Path, seed: int = 0) -> Path:
    """A tiny 9-channel UNet pipeline saved as diffusers' StableDiffusionInpaintPipeline."""
    from diffusers import StableDiffusionInpaintPipeline, StableDiffusionPipeline

    if not (folder / "model_index.json").is_file():
        base = folder.parent / (folder.name + "-base")
        tiny_sd1_folder(base, seed=seed, in_channels=9)
        pipe = StableDiffusionPipeline.from_pretrained(str(base), local_files_only=True)
        components = {k: v for k, v in pipe.components.items() if k != "image_encoder"}
        StableDiffusionInpaintPipeline(**components).save_pretrained(str(folder))
    return folder


def tiny_inpainting_pack(root: Path) -> tuple[Path, Path]:
    """(pack, diffusers folder) of a tiny 9-channel inpainting pipeline, exported through the
    one export pipeline (its end-to-end check repaints a rectangle, as the model is used)."""
    import exporters

    folder = tiny_inpainting_folder(root / "pipeline")
    pack = exporters.export("image", folder, root / "pack", "fp32", name="tiny-inpainting")
    return pack, folder


def open_clip_state_dict(text_encoder, prefix: str = "cond_stage_model.model.") -> dict:
    """A CLIPTextModel's weights in OpenCLIP's layout, as SD 2.x checkpoints hold them (the
    inverse of diffusers' convert_open_clip_checkpoint: q, k and v fused into in_proj)."""
    import torch

    s = {k.removeprefix("text_model."): v for k, v in text_encoder.state_dict().items()}
    out = {prefix + "token_embedding.weight": s["embeddings.token_embedding.weight"],
           prefix + "positional_embedding": s["embeddings.position_embedding.weight"],
           prefix + "ln_final.weight": s["final_layer_norm.weight"], prefix + "ln_final.bias": s["final_layer_norm.bias"]}
    for i in range(text_encoder.config.num_hidden_layers):
        src, dst = f"encoder.layers.{i}.", f"{prefix}transformer.resblocks.{i}."
        for part in ("weight", "bias"):
            out[dst + f"attn.in_proj_{part}"] = torch.cat([s[src + f"self_attn.{p}_proj.{part}"] for p in "qkv"])
            for new, old in (("attn.out_proj", "self_attn.out_proj"), ("ln_1", "layer_norm1"), ("ln_2", "layer_norm2"),
                             ("mlp.c_fc", "mlp.fc1"), ("mlp.c_proj", "mlp.fc2")):
                out[dst + f"{new}.{part}"] = s[src + f"{old}.{part}"]
    return out


def tiny_sd2_folder(folder: Path, prediction_type: str, seed: int = 0) -> Path:
    """A tiny SD 2.x-shaped pipeline: 1024-wide OpenCLIP-style text, linear attention projections."""
    import diffusers
    import torch
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    base_folder = folder.parent / (folder.name + "-sd1")
    tiny_sd1_folder(base_folder, seed=seed)
    base = StableDiffusionPipeline.from_pretrained(str(base_folder), local_files_only=True)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel.from_config(dict(base.unet.config, cross_attention_dim=1024, use_linear_projection=True))
    te = base.text_encoder.config
    text_encoder = CLIPTextModel(CLIPTextConfig(vocab_size=te.vocab_size, hidden_size=1024, intermediate_size=64, num_attention_heads=8,
                                                num_hidden_layers=2, max_position_embeddings=77, hidden_act="gelu",
                                                bos_token_id=te.bos_token_id, eos_token_id=te.eos_token_id, pad_token_id=te.pad_token_id))
    sched = diffusers.EulerDiscreteScheduler.from_config(base.scheduler.config, prediction_type=prediction_type)
    StableDiffusionPipeline(vae=base.vae, text_encoder=text_encoder, tokenizer=base.tokenizer, unet=unet, scheduler=sched,
                            safety_checker=None, feature_extractor=None, requires_safety_checker=False).save_pretrained(str(folder))
    return folder


def write_sd2_single_file(folder: Path, out: Path, metadata: dict | None = None) -> Path:
    from diffusers import StableDiffusionPipeline
    from safetensors.torch import save_file

    pipe = StableDiffusionPipeline.from_pretrained(str(folder), local_files_only=True)
    state = _rename(pipe.unet.state_dict(), unet_prefixes(pipe.unet.config), "model.diffusion_model.")
    state.update(_rename(pipe.vae.state_dict(), vae_prefixes(pipe.vae.config), "first_stage_model."))
    state.update(open_clip_state_dict(pipe.text_encoder))
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(out), metadata=metadata)
    return out
