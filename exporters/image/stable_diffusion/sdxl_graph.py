"""torch.onnx export of Stable Diffusion XL's components, and their check against PyTorch.

SDXL adds to the SD layout (``graph``): a second text encoder, and two UNet inputs. Names
follow optimum's where they exist, so the engine reads either export:

* ``text_encoder`` (CLIPTextModel): input_ids -> penultimate_hidden_state [batch, 77, D1]
* ``text_encoder_2`` (CLIPTextModelWithProjection): input_ids -> penultimate_hidden_state
  [batch, 77, D2], text_embeds [batch, P] (the pooled, projected prompt)
* ``unet``: sample, timestep, encoder_hidden_states [batch, 77, D1 + D2], text_embeds
  [batch, P], time_ids [batch, 6] (+ timestep_cond when LCM-distilled) -> out_sample
* ``vae_decoder`` / ``vae_encoder``: as for SD (``graph``)

Only the penultimate layer is exported because that is all SDXL reads (diffusers'
``hidden_states[-2]``); optimum exports every layer, a dozen unused outputs per call.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np

from .graph import _export, export_vae, trace_latent_size

TEXT_ENCODERS = ("text_encoder", "text_encoder_2")
UNET_INPUTS = ("sample", "timestep", "encoder_hidden_states", "text_embeds", "time_ids")


def text_encoder_module(text_encoder, pooled: bool):
    import torch

    class TextEncoder(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids):
            out = self.inner(input_ids=input_ids, output_hidden_states=True, return_dict=True)
            if pooled:
                return out.hidden_states[-2], out.text_embeds
            return out.hidden_states[-2]

    return TextEncoder(text_encoder)


def unet_module(unet):
    import torch

    class UNet(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, sample, timestep, encoder_hidden_states, text_embeds, time_ids, timestep_cond=None):
            added = {"text_embeds": text_embeds, "time_ids": time_ids}
            return self.inner(sample, timestep, encoder_hidden_states, timestep_cond=timestep_cond, added_cond_kwargs=added, return_dict=False)[0]

    return UNet(unet)


def unet_example(pipe, max_length: int, batch: int = 2, side: int | None = None, rng=None) -> dict[str, np.ndarray]:
    """Inputs of the right shapes for tracing and for the component check."""
    unet = pipe.unet
    rng = rng or np.random.default_rng(0)
    side = side or trace_latent_size(unet)
    feeds = {
        "sample": rng.standard_normal((batch, unet.config.in_channels, side, side)).astype(np.float32),
        "timestep": np.full((batch,), 999.0, np.float32),
        "encoder_hidden_states": rng.standard_normal((batch, max_length, unet.config.cross_attention_dim)).astype(np.float32),
        "text_embeds": rng.standard_normal((batch, pipe.text_encoder_2.config.projection_dim)).astype(np.float32),
        # original size, crop top-left, target size (pixels), as the engine sends them
        "time_ids": np.tile(np.asarray([[side * 8, side * 8, 0, 0, side * 8, side * 8]], np.float32), (batch, 1)),
    }
    if unet.config.time_cond_proj_dim is not None:
        feeds["timestep_cond"] = rng.standard_normal((batch, unet.config.time_cond_proj_dim)).astype(np.float32)
    return feeds


def export_sdxl_components(pipe, out: Path, max_length: int) -> None:
    import torch

    from .attention import fused_attention, supports_fusion

    ids = torch.zeros((1, max_length), dtype=torch.int64)
    for role, pooled in (("text_encoder", False), ("text_encoder_2", True)):
        outputs = ["penultimate_hidden_state"] + (["text_embeds"] if pooled else [])
        _export(text_encoder_module(getattr(pipe, role), pooled), (ids,), out / role / "model.onnx", ["input_ids"], outputs,
                {"input_ids": {0: "batch"}, **{name: {0: "batch"} for name in outputs}})

    unet = pipe.unet
    feeds = unet_example(pipe, max_length)
    names = list(feeds)
    dynamic = {name: {0: "batch"} for name in names}
    dynamic["sample"] = dynamic["out_sample"] = {0: "batch", 2: "height", 3: "width"}
    with fused_attention(unet) if supports_fusion(unet) else contextlib.nullcontext():
        _export(unet_module(unet), tuple(torch.from_numpy(v) for v in feeds.values()), out / "unet" / "model.onnx", names, ["out_sample"], dynamic)
    export_vae(pipe.vae, out)


def validate_sdxl_components(pipe, pack_dir: Path, max_length: int) -> dict[str, Any]:
    """Each graph against its PyTorch module on the same inputs."""
    import onnxruntime as ort
    import torch

    from desktop.engines.image.clip_tokenizer import ClipTokenizer

    from .validate import PROMPT, _diff, validate_vae

    def session(role):
        return ort.InferenceSession(str(pack_dir / role / "model.onnx"), providers=["CPUExecutionProvider"])

    report: dict[str, Any] = {}
    hidden = []
    for role, tok_role, pooled in (("text_encoder", "tokenizer", False), ("text_encoder_2", "tokenizer_2", True)):
        tok = ClipTokenizer(pack_dir / tok_role)
        ids = np.asarray([tok.encode(PROMPT).ids, tok.encode("").ids], dtype=np.int64)
        with torch.inference_mode():
            ref = text_encoder_module(getattr(pipe, role), pooled)(torch.from_numpy(ids))
        ref = [r.numpy() for r in (ref if pooled else (ref,))]
        ours = session(role).run(None, {"input_ids": ids})
        report[role] = _diff(ours[0], ref[0])
        if pooled:
            report[role + ".text_embeds"] = _diff(ours[1], ref[1])
        hidden.append(ref[0])

    rng = np.random.default_rng(0)
    side = int(pipe.unet.config.sample_size)
    feeds = unet_example(pipe, max_length, side=side, rng=rng)
    feeds["encoder_hidden_states"] = np.concatenate(hidden, axis=-1).astype(np.float32)
    with torch.inference_mode():
        ref_unet = unet_module(pipe.unet)(*[torch.from_numpy(v) for v in feeds.values()]).numpy()
    report["unet"] = _diff(session("unet").run(None, feeds)[0], ref_unet)
    report.update(validate_vae(pipe.vae, session, side, rng))
    return report
