"""torch.onnx export of a Hugging Face ``VitsModel`` with Piper's graph interface.

The graph takes ``input`` [1, T], ``input_lengths`` [1], ``scales`` [3] (noise, length,
noise_w), ``sid`` [1] for multi-speaker models, and two noise banks: ``noise_0``
[1, 2, B_dp] for the stochastic duration predictor and ``noise_1`` [1, C, B_z] for the
prior latents. Banks are tiled to the lengths the sentence needs, so the caller's seed
decides all randomness (see desktop/engines/speech/graph.py for the same trick applied
to Piper's graphs). Outputs: ``output`` [1, 1, S] and ``durations`` [1, T] (frames per
input id), so tests can check the audio length the durations imply.
"""

from __future__ import annotations

from pathlib import Path

from desktop.engines.speech.graph import DURATION_BANK, LATENT_BANK


def _tile(bank, channels, frames):
    """bank [1, C0, B] repeated along both axes and cut to [1, channels, frames]."""
    reps_c = channels // bank.size(1) + 1
    reps_t = frames // bank.size(2) + 1
    return bank.repeat(1, reps_c, reps_t)[:, :channels, :frames]


def make_wrapper(model):
    import torch
    from torch import nn

    cfg = model.config
    hop = 1
    for r in cfg.upsample_rates:
        hop *= r

    class PiperInterface(nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model

        def forward(self, input, input_lengths, scales, sid, noise_0, noise_1):
            m = self.m
            noise_scale, length_scale, noise_w = scales[0], scales[1], scales[2]
            positions = torch.arange(input.size(1), device=input.device).unsqueeze(0)
            mask = (positions < input_lengths.unsqueeze(1)).to(torch.float32)  # [1, T]
            padding = mask.unsqueeze(-1)
            g = m.embed_speaker(sid).unsqueeze(-1) if cfg.num_speakers > 1 else None
            enc = m.text_encoder(input_ids=input, padding_mask=padding, attention_mask=mask.long(), return_dict=True)
            hidden = enc.last_hidden_state.transpose(1, 2)
            padding = padding.transpose(1, 2)  # [1, 1, T]
            if cfg.use_stochastic_duration_prediction:
                log_duration = self._sdp(hidden, padding, g, noise_0, noise_w)
            else:
                log_duration = m.duration_predictor(hidden, padding, g)
            duration = torch.ceil(torch.exp(log_duration) * padding * length_scale)  # [1, 1, T]
            total = torch.clamp_min(torch.sum(duration, [1, 2]), 1).long()
            frames = torch.arange(total.max(), device=input.device)
            out_mask = (frames.unsqueeze(0) < total.unsqueeze(1)).unsqueeze(1).to(torch.float32)  # [1, 1, F]
            # alignment: frame f belongs to id t when cum[t-1] <= f < cum[t]
            cum = torch.cumsum(duration, -1).view(-1, 1)  # [T, 1]
            valid = (frames.unsqueeze(0).to(cum.dtype) < cum).to(torch.float32).view(1, -1, frames.size(0))
            attn = valid - nn.functional.pad(valid, [0, 0, 1, 0, 0, 0])[:, :-1]  # [1, T, F]
            means = torch.matmul(attn.transpose(1, 2), enc.prior_means)  # [1, F, C]
            log_var = torch.matmul(attn.transpose(1, 2), enc.prior_log_variances)
            means, log_var = means.transpose(1, 2), log_var.transpose(1, 2)
            eps = _tile(noise_1, means.size(1), means.size(2))
            latents = means + eps * torch.exp(log_var) * noise_scale
            latents = m.flow(latents, out_mask, g, reverse=True)
            wave = m.decoder(latents * out_mask, g)  # [1, 1, S]
            return wave, duration.squeeze(1)

        def _sdp(self, hidden, padding, g, bank, noise_w):
            sdp = self.m.duration_predictor
            x = sdp.conv_pre(hidden)
            if g is not None:
                x = x + sdp.cond(g)
            x = sdp.conv_dds(x, padding)
            x = sdp.conv_proj(x) * padding
            flows = list(reversed(sdp.flows))
            flows = flows[:-2] + [flows[-1]]  # VITS drops a useless flow at inference
            latents = _tile(bank, 2, x.size(2)) * noise_w
            for flow in flows:
                latents = torch.flip(latents, [1])
                latents, _ = flow(latents, padding, global_conditioning=x, reverse=True)
            return latents[:, :1]

    return PiperInterface().eval(), hop


def example_inputs(model, length: int = 12):
    import torch

    cfg = model.config
    ids = torch.randint(1, cfg.vocab_size, (1, length))
    return (
        ids,
        torch.tensor([length]),
        torch.tensor([0.667, 1.0, 0.8]),
        torch.tensor([0]),
        torch.randn(1, 2, DURATION_BANK),
        torch.randn(1, cfg.flow_size, LATENT_BANK),
    )


def export_vits(model, path: Path, opset: int = 17) -> None:
    import torch

    wrapper, _ = make_wrapper(model)
    args = example_inputs(model)
    names = ["input", "input_lengths", "scales", "sid", "noise_0", "noise_1"]
    if model.config.num_speakers <= 1:
        # keep Piper's interface: no sid input for single-speaker voices
        sid = args[3]

        class NoSid(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.w = wrapper

            def forward(self, input, input_lengths, scales, noise_0, noise_1):
                return self.w(input, input_lengths, scales, sid, noise_0, noise_1)

        module, args, names = NoSid().eval(), args[:3] + args[4:], names[:3] + names[4:]
    else:
        module = wrapper
    with torch.inference_mode():
        torch.onnx.export(
            module,
            args,
            str(path),
            input_names=names,
            output_names=["output", "durations"],
            dynamic_axes={"input": {1: "phonemes"}, "output": {2: "samples"}, "durations": {1: "phonemes"}},
            opset_version=opset,
            dynamo=False,
        )
