"""torch.onnx export of Stable Diffusion components, one graph per folder.

Mirrors optimum's component configs (same folder names, input and output names, dynamic
axes) so a pack from us and a folder from optimum look alike to the engine:

* ``text_encoder``: input_ids [batch, 77] -> last_hidden_state, pooler_output
* ``unet``: sample [batch, C, h, w], timestep [batch] (float), encoder_hidden_states
  [batch, 77, D] (+ timestep_cond for LCM-distilled UNets) -> out_sample
* ``vae_decoder``: latent_sample -> sample;  ``vae_encoder``: sample -> latent_parameters
  (mean and log-variance, so the engine samples with its own seeded RNG)

Two differences on purpose: the UNet is traced at a latent size its up-blocks cannot
reach by doubling, which makes diffusers pass explicit upsample sizes; the graph then
accepts any latent size, so images can be any multiple of 8 instead of 64. And its
attention is exported as ONNX Runtime's fused MultiHeadAttention (``attention``).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

OPSET = 17


def _export(module, args: tuple, path: Path, inputs: list[str], outputs: list[str], dynamic: dict) -> None:
    import torch

    from .attention import DOMAIN

    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.inference_mode():
        torch.onnx.export(
            module.eval(), args, str(path), input_names=inputs, output_names=outputs,
            dynamic_axes=dynamic, opset_version=OPSET, do_constant_folding=True, dynamo=False,
            custom_opsets={DOMAIN: 1},
        )
    _consolidate(path)


def _consolidate(path: Path) -> None:
    """Big graphs (> 2 GB protobuf cap) keep weights in one ``model.onnx.data`` beside them;
    small ones stay a single file. TorchScript export may scatter one file per tensor."""
    import onnx

    stray = [p for p in path.parent.iterdir() if p != path]
    if not stray:
        return  # torch wrote one file: the graph is under the cap
    # over the cap (SD 1.5's UNet is 3.4 GB): the whole model can never be one protobuf, so
    # it is not measured or re-serialised as one, only gathered into a single weights file
    model = onnx.load(str(path))
    for p in stray:
        p.unlink()
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location=path.name + ".data", size_threshold=1024)


def text_encoder_module(text_encoder):
    import torch

    class TextEncoder(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids):
            out = self.inner(input_ids=input_ids, return_dict=True)
            return out.last_hidden_state, out.pooler_output

    return TextEncoder(text_encoder)


def unet_module(unet):
    import torch

    distilled = unet.config.time_cond_proj_dim is not None

    class UNet(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, sample, timestep, encoder_hidden_states, timestep_cond=None):
            return self.inner(sample, timestep, encoder_hidden_states, timestep_cond=timestep_cond, return_dict=False)[0]

    return UNet(unet), distilled


def vae_decoder_module(vae):
    import torch

    class Decoder(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, latent_sample):
            return self.inner.decode(latent_sample, return_dict=False)[0]

    return Decoder(vae)


def vae_encoder_module(vae):
    import torch

    class Encoder(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, sample):
            return self.inner.encode(sample, return_dict=True).latent_dist.parameters

    return Encoder(vae)


def trace_latent_size(unet) -> int:
    """A small latent side that the UNet's up-sampling factor does not divide."""
    factor = 2 ** (len(unet.config.block_out_channels) - 1)
    return factor * 2 + 1 if factor > 1 else 9


def export_components(pipe, out: Path, max_length: int) -> dict[str, str]:
    """Write every component under ``out``; return {role: relative graph path}."""
    import torch

    text_encoder, unet, vae = pipe.text_encoder, pipe.unet, pipe.vae
    ids = torch.zeros((1, max_length), dtype=torch.int64)
    _export(text_encoder_module(text_encoder), (ids,), out / "text_encoder" / "model.onnx", ["input_ids"], ["last_hidden_state", "pooler_output"],
            {"input_ids": {0: "batch"}, "last_hidden_state": {0: "batch"}, "pooler_output": {0: "batch"}})

    module, distilled = unet_module(unet)
    side = trace_latent_size(unet)
    sample = torch.randn(2, unet.config.in_channels, side, side)
    timestep = torch.tensor([999.0, 999.0])
    hidden = torch.randn(2, max_length, unet.config.cross_attention_dim)
    args, names = (sample, timestep, hidden), ["sample", "timestep", "encoder_hidden_states"]
    dynamic = {"sample": {0: "batch", 2: "height", 3: "width"}, "timestep": {0: "batch"}, "encoder_hidden_states": {0: "batch"}, "out_sample": {0: "batch", 2: "height", 3: "width"}}
    if distilled:
        args += (torch.randn(2, unet.config.time_cond_proj_dim),)
        names.append("timestep_cond")
        dynamic["timestep_cond"] = {0: "batch"}
    from .attention import fused_attention, supports_fusion

    # one fused MultiHeadAttention node per attention block (see attention.py)
    with fused_attention(unet) if supports_fusion(unet) else contextlib.nullcontext():
        _export(module, args, out / "unet" / "model.onnx", names, ["out_sample"], dynamic)

    export_vae(vae, out)
    return {role: f"{role}/model.onnx" for role in ("text_encoder", "unet", "vae_decoder", "vae_encoder")}


def export_vae(vae, out: Path) -> None:
    """``vae_decoder`` and ``vae_encoder``: the same graphs for SD and SDXL."""
    import torch

    from .attention import fused_attention, supports_fusion

    latent_c = vae.config.latent_channels
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    # the VAE's mid-block attention too: fused, it never holds the full score matrix,
    # which at 1024x1024 pixels would be 16384^2 floats (1 GB)
    with fused_attention(vae) if supports_fusion(vae) else contextlib.nullcontext():
        _export(vae_decoder_module(vae), (torch.randn(1, latent_c, 8, 8),), out / "vae_decoder" / "model.onnx", ["latent_sample"], ["sample"],
                {"latent_sample": {0: "batch", 2: "height", 3: "width"}, "sample": {0: "batch", 2: "height", 3: "width"}})
        _export(vae_encoder_module(vae), (torch.randn(1, 3, 8 * factor, 8 * factor),), out / "vae_encoder" / "model.onnx", ["sample"], ["latent_parameters"],
                {"sample": {0: "batch", 2: "height", 3: "width"}, "latent_parameters": {0: "batch", 2: "height", 3: "width"}})
