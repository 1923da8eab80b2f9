"""The vendored config bundles hold the values the published repositories hold.

They were first written without a network; each value here was compared with a copy of the
published file (resources/image_configs/SOURCES.md names the repositories). These are the
values that change what a model draws: a wrong one loads without error and gives grey,
noisy or mis-sized pictures, so they are pinned one by one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

CONFIGS = Path(__file__).resolve().parents[2] / "resources" / "image_configs"

SD1 = {"cross_attention_dim": 768, "attention_head_dim": 8, "use_linear_projection": False, "upcast_attention": False}
SD2 = {"cross_attention_dim": 1024, "attention_head_dim": [5, 10, 20, 20], "use_linear_projection": True}
XL = {"cross_attention_dim": 2048, "attention_head_dim": [5, 10, 20], "use_linear_projection": True, "upcast_attention": False,
      "addition_embed_type": "text_time", "projection_class_embeddings_input_dim": 2816, "addition_time_embed_dim": 256,
      "transformer_layers_per_block": [1, 2, 10]}
NOT_XL = {"addition_embed_type": None, "projection_class_embeddings_input_dim": None}

# bundle: (unet values, scheduler values, vae scaling_factor, pipeline class)
TABLE = {
    "sd15": ({**SD1, **NOT_XL, "sample_size": 64, "in_channels": 4},
             {"_class_name": "PNDMScheduler", "prediction_type": "epsilon", "timestep_spacing": "leading", "steps_offset": 1},
             0.18215, "StableDiffusionPipeline"),
    "sd15-inpainting": ({**SD1, **NOT_XL, "sample_size": 64, "in_channels": 9},
                        {"_class_name": "DDIMScheduler", "prediction_type": "epsilon", "timestep_spacing": "leading", "steps_offset": 1},
                        0.18215, "StableDiffusionInpaintPipeline"),
    "sd21": ({**SD2, **NOT_XL, "sample_size": 96, "in_channels": 4, "upcast_attention": True},
             {"_class_name": "DDIMScheduler", "prediction_type": "v_prediction", "timestep_spacing": "leading", "steps_offset": 1},
             0.18215, "StableDiffusionPipeline"),
    "sd21-base": ({**SD2, **NOT_XL, "sample_size": 64, "in_channels": 4, "upcast_attention": False},
                  {"_class_name": "PNDMScheduler", "prediction_type": "epsilon", "timestep_spacing": "leading", "steps_offset": 1},
                  0.18215, "StableDiffusionPipeline"),
    "sd2-inpainting": ({**SD2, **NOT_XL, "sample_size": 64, "in_channels": 9, "upcast_attention": False},
                       {"_class_name": "PNDMScheduler", "prediction_type": "epsilon", "timestep_spacing": "leading", "steps_offset": 1},
                       0.18215, "StableDiffusionInpaintPipeline"),
    "sd21-turbo": ({**SD2, **NOT_XL, "sample_size": 64, "in_channels": 4},
                   {"_class_name": "EulerDiscreteScheduler", "prediction_type": "epsilon", "timestep_spacing": "trailing", "steps_offset": 1},
                   0.18215, "StableDiffusionPipeline"),
    "sdxl": ({**XL, "sample_size": 128, "in_channels": 4},
             {"_class_name": "EulerDiscreteScheduler", "prediction_type": "epsilon", "timestep_spacing": "leading", "steps_offset": 1},
             0.13025, "StableDiffusionXLPipeline"),
    "sdxl-turbo": ({**XL, "sample_size": 64, "in_channels": 4},
                   {"_class_name": "EulerAncestralDiscreteScheduler", "prediction_type": "epsilon", "timestep_spacing": "trailing", "steps_offset": 1},
                   0.13025, "StableDiffusionXLPipeline"),
    "sdxl-inpainting": ({**XL, "sample_size": 128, "in_channels": 9},
                        {"_class_name": "EulerDiscreteScheduler", "prediction_type": "epsilon", "timestep_spacing": "leading", "steps_offset": 1},
                        0.13025, "StableDiffusionXLInpaintPipeline"),
}
# text encoders: (hidden_size, layers, heads, activation, projection_dim, tokenizer pad token)
CLIP_L = (768, 12, 12, "quick_gelu", 768, "<|endoftext|>")
OPEN_CLIP_H = (1024, 23, 16, "gelu", 512, "!")
OPEN_CLIP_BIG_G = (1280, 32, 20, "gelu", 1280, "!")
ENCODERS = {key: ([CLIP_L, OPEN_CLIP_BIG_G] if key.startswith("sdxl") else [CLIP_L] if key.startswith("sd15") else [OPEN_CLIP_H])
            for key in TABLE}


def _json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_the_table_covers_every_bundle():
    assert sorted(TABLE) == sorted(p.name for p in CONFIGS.iterdir() if (p / "model_index.json").is_file())


@pytest.mark.parametrize("key", sorted(TABLE))
def test_bundle_values_that_change_pictures(key):
    unet_expected, sched_expected, scaling, pipeline = TABLE[key]
    folder = CONFIGS / key
    unet, sched, vae, index = (_json(folder / p) for p in ("unet/config.json", "scheduler/scheduler_config.json", "vae/config.json", "model_index.json"))
    # a key left out means diffusers' default: None for the SDXL extras, False for the flags
    got = {k: unet.get(k, False if k in ("upcast_attention", "use_linear_projection") else None) for k in unet_expected}
    assert got == unet_expected
    assert {k: sched.get(k) for k in sched_expected} == sched_expected
    assert (sched["beta_start"], sched["beta_end"], sched["beta_schedule"], sched["num_train_timesteps"]) == (0.00085, 0.012, "scaled_linear", 1000)
    assert vae["scaling_factor"] == scaling and vae["latent_channels"] == 4 and vae["block_out_channels"] == [128, 256, 512, 512]
    assert vae.get("force_upcast", False) is key.startswith("sdxl")  # the SDXL VAE overflows fp16
    assert index["_class_name"] == pipeline and index["scheduler"] == ["diffusers", sched["_class_name"]]
    if key.startswith("sdxl"):
        assert index["force_zeros_for_empty_prompt"] is True


@pytest.mark.parametrize("key", sorted(TABLE))
def test_text_encoders_and_tokenizers(key):
    folder = CONFIGS / key
    for i, (hidden, layers, heads, act, projection, pad) in enumerate(ENCODERS[key]):
        suffix = "" if i == 0 else "_2"
        te, tok = _json(folder / f"text_encoder{suffix}" / "config.json"), _json(folder / f"tokenizer{suffix}" / "tokenizer_config.json")
        got = (te["hidden_size"], te["num_hidden_layers"], te["num_attention_heads"], te["hidden_act"], te["projection_dim"], tok["pad_token"])
        assert got == (hidden, layers, heads, act, projection, pad)
        assert te["intermediate_size"] == 4 * hidden and te["max_position_embeddings"] == 77 and te["vocab_size"] == 49408
        assert te["architectures"] == ["CLIPTextModelWithProjection" if suffix else "CLIPTextModel"]
        assert tok["model_max_length"] == 77 and tok["do_lower_case"] is True
    assert not (folder / "text_encoder_2").exists() or len(ENCODERS[key]) == 2


def test_recommended_settings_name_schedulers_the_engine_has():
    from desktop.engines.image.schedulers import LABELS

    for key in TABLE:
        defaults = _json(CONFIGS / key / "atelier_defaults.json")
        assert defaults["default_scheduler"] in LABELS
        turbo = key.endswith("turbo")
        assert (defaults["default_steps"], defaults["default_guidance"]) == ((1, 0.0) if turbo else (25, 5.0 if key.startswith("sdxl") else 7.5))


# parameter counts of the published models (UNet, VAE, text encoders): a config that builds the
# wrong architecture gets a different count, whatever value it got wrong
SD1_UNET, SD2_UNET, XL_UNET, INPAINT_EXTRA, VAE = 859_520_964, 865_910_724, 2_567_463_684, 14_400, 83_653_863
CLIP_L_PARAMS, OPEN_CLIP_H_PARAMS, BIG_G_PARAMS = 123_060_480, 340_387_840, 694_659_840
PARAMETERS = {
    "sd15": (SD1_UNET, [CLIP_L_PARAMS]), "sd15-inpainting": (SD1_UNET + INPAINT_EXTRA, [CLIP_L_PARAMS]),
    "sd21": (SD2_UNET, [OPEN_CLIP_H_PARAMS]), "sd21-base": (SD2_UNET, [OPEN_CLIP_H_PARAMS]), "sd21-turbo": (SD2_UNET, [OPEN_CLIP_H_PARAMS]),
    "sd2-inpainting": (SD2_UNET + INPAINT_EXTRA, [OPEN_CLIP_H_PARAMS]),
    "sdxl": (XL_UNET, [CLIP_L_PARAMS, BIG_G_PARAMS]), "sdxl-turbo": (XL_UNET, [CLIP_L_PARAMS, BIG_G_PARAMS]),
    "sdxl-inpainting": (XL_UNET + INPAINT_EXTRA, [CLIP_L_PARAMS, BIG_G_PARAMS]),
}


@pytest.mark.parametrize("key", sorted(PARAMETERS))
def test_bundles_build_the_published_architectures(key):
    """Built on the meta device (no memory, no weights), each bundle has the published size."""
    accelerate = pytest.importorskip("accelerate")
    diffusers = pytest.importorskip("diffusers")
    import transformers

    folder = CONFIGS / key
    count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
    with accelerate.init_empty_weights():
        unet = diffusers.UNet2DConditionModel.from_config(diffusers.UNet2DConditionModel.load_config(str(folder / "unet")))
        vae = diffusers.AutoencoderKL.from_config(diffusers.AutoencoderKL.load_config(str(folder / "vae")))
        encoders = [cls(transformers.CLIPTextConfig.from_pretrained(str(folder / sub)))
                    for sub, cls in (("text_encoder", transformers.CLIPTextModel), ("text_encoder_2", transformers.CLIPTextModelWithProjection))
                    if (folder / sub).is_dir()]
    assert (count(unet), count(vae), [count(e) for e in encoders]) == (PARAMETERS[key][0], VAE, PARAMETERS[key][1])
