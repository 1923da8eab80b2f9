"""A tiny random Stable-Diffusion-shaped pipeline built from diffusers config classes.

UNet2DConditionModel + AutoencoderKL + CLIPTextModel with tiny configs and a tiny CLIP
BPE tokenizer written to disk (vocab.json + merges.txt), saved as a diffusers pipeline
folder - the same layout a user's model has - so tests run the real exporter on it.
"""

from __future__ import annotations

import json
from pathlib import Path

WORDS = ("a red apple", "smiling cat", "blue heart on a green tree", "photo of the sea at night")


def _bytes_to_unicode() -> dict[int, str]:
    from desktop.engines.text.gguf.tokenizer import bytes_to_unicode  # GPT-2/CLIP's byte table, one copy

    return bytes_to_unicode()


def write_tiny_clip_tokenizer(folder: Path) -> Path:
    """vocab.json + merges.txt of a CLIP-style BPE (words end in ``</w>``)."""
    folder.mkdir(parents=True, exist_ok=True)
    chars = list(_bytes_to_unicode().values())
    vocab = {}
    for c in chars + [c + "</w>" for c in chars]:
        vocab.setdefault(c, len(vocab))
    merges = []
    # merge the letters of a few words, left to right, so common words become one token
    for word in sorted({w for phrase in WORDS for w in phrase.split()}):
        parts = list(word[:-1]) + [word[-1] + "</w>"]
        while len(parts) > 1:
            pair = (parts[0], parts[1])
            merged = parts[0] + parts[1]
            if f"{pair[0]} {pair[1]}" not in merges:
                merges.append(f"{pair[0]} {pair[1]}")
            vocab.setdefault(merged, len(vocab))
            parts = [merged] + parts[2:]
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab[special] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    return folder


def tiny_sd_pipeline(folder: Path, unet_channels=(32, 64), vae_channels=(32, 64), sample_size: int = 16, cross_dim: int = 32, scheduler: str = "EulerDiscreteScheduler", seed: int = 0) -> Path:
    """Write a random tiny SD pipeline folder (model_index.json + components); return it."""
    import diffusers
    import torch
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(seed)
    tok_dir = write_tiny_clip_tokenizer(folder.parent / (folder.name + "-tok"))
    tokenizer = CLIPTokenizer(str(tok_dir / "vocab.json"), str(tok_dir / "merges.txt"), model_max_length=77)
    n = len(unet_channels)
    unet = UNet2DConditionModel(
        sample_size=sample_size,
        in_channels=4,
        out_channels=4,
        block_out_channels=tuple(unet_channels),
        layers_per_block=1 if max(unet_channels) <= 64 else 2,
        down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (n - 1),
        up_block_types=("CrossAttnUpBlock2D",) * (n - 1) + ("UpBlock2D",),
        cross_attention_dim=cross_dim,
        attention_head_dim=8,
        norm_num_groups=min(32, unet_channels[0]),
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=tuple(vae_channels),
        down_block_types=("DownEncoderBlock2D",) * len(vae_channels),
        up_block_types=("UpDecoderBlock2D",) * len(vae_channels),
        latent_channels=4,
        norm_num_groups=min(32, vae_channels[0]),
        sample_size=sample_size * 2 ** (len(vae_channels) - 1),
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=cross_dim,
            intermediate_size=64,
            num_attention_heads=4,
            num_hidden_layers=2,
            max_position_embeddings=77,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    sched = getattr(diffusers, scheduler).from_config(
        {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "steps_offset": 1, "timestep_spacing": "leading", "clip_sample": False, "set_alpha_to_one": False}
    )
    pipe = StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=sched,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    pipe.save_pretrained(str(folder))
    return folder


# -- exported packs, cached across sessions under the test cache ----------------------------

_SD_EXPORT = ("configs", "source", "lora", "graph", "attention", "validate")
_SOURCES = ("tests/tiny_sd.py", "exporters/pipeline.py", *(f"exporters/image/stable_diffusion/{m}.py" for m in _SD_EXPORT), "desktop/engines/image/latent_preview.py")


def _code_key() -> str:
    """Cached packs are rebuilt whenever the code that makes them changes."""
    import hashlib

    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for rel in _SOURCES:
        h.update((root / rel).read_bytes())
    return h.hexdigest()[:12]


def tiny_sd_source(cache: Path) -> Path:
    folder = cache / f"tiny-sd-{_code_key()}" / "pipeline"
    if not (folder / "model_index.json").is_file():
        import shutil

        shutil.rmtree(folder.parent, ignore_errors=True)
        folder.parent.mkdir(parents=True)
        tiny_sd_pipeline(folder)
    return folder


def tiny_lora(cache: Path) -> Path:
    """A random rank-4 LoRA on the tiny UNet's attention projections (.safetensors)."""
    path = cache / f"tiny-sd-{_code_key()}" / "lora" / "pytorch_lora_weights.safetensors"
    if not path.is_file():
        import torch
        from diffusers import StableDiffusionPipeline
        from peft import LoraConfig
        from peft.utils import get_peft_model_state_dict

        torch.manual_seed(1)
        pipe = StableDiffusionPipeline.from_pretrained(str(tiny_sd_source(cache)), local_files_only=True)
        pipe.unet.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"], init_lora_weights=False))
        StableDiffusionPipeline.save_lora_weights(str(path.parent), unet_lora_layers=get_peft_model_state_dict(pipe.unet), safe_serialization=True)
    return path


def tiny_lcm_source(cache: Path) -> Path:
    """The tiny pipeline with an LCM-distilled-shaped UNet (guidance embedding input) and
    the LCM scheduler, saved as diffusers' LatentConsistencyModelPipeline."""
    folder = cache / f"tiny-sd-{_code_key()}" / "lcm-pipeline"
    if not (folder / "model_index.json").is_file():
        import torch
        from diffusers import LatentConsistencyModelPipeline, LCMScheduler, StableDiffusionPipeline, UNet2DConditionModel

        base = StableDiffusionPipeline.from_pretrained(str(tiny_sd_source(cache)), local_files_only=True)
        torch.manual_seed(3)
        unet = UNet2DConditionModel.from_config(dict(base.unet.config, time_cond_proj_dim=32))
        LatentConsistencyModelPipeline(
            vae=base.vae, text_encoder=base.text_encoder, tokenizer=base.tokenizer, unet=unet,
            scheduler=LCMScheduler.from_config(base.scheduler.config), safety_checker=None, feature_extractor=None, requires_safety_checker=False,
        ).save_pretrained(str(folder))
    return folder


def tiny_sd_pack(cache: Path, precision: str = "fp32", lora: bool = False) -> Path:
    """The tiny pipeline exported by our exporter (the real pipeline, in-process)."""
    import shutil

    out = cache / f"tiny-sd-{_code_key()}" / f"pack-{precision}{'-lora' if lora else ''}"
    if (out / "manifest.json").is_file():
        return out
    shutil.rmtree(out, ignore_errors=True)
    import exporters

    name = f"tiny-sd-{precision}{'-lora' if lora else ''}"
    return exporters.export("image", tiny_sd_source(cache), out, precision, name=name, lora=tiny_lora(cache) if lora else None)
