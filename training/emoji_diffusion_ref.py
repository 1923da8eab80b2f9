"""The emoji pack's sampling loop with the PyTorch modules (validation's reference).

Uses the engine's own numpy scheduler and tokenizer, so the only difference from the
engine's run is ONNX Runtime versus PyTorch for the two networks.
"""

from __future__ import annotations

import numpy as np
import torch


@torch.no_grad()
def reference_sample(text, unet, pipe, prompt: str, seed: int, steps: int, guidance: float, sched) -> np.ndarray:
    from desktop.engines.image.pipelines.emoji_diffusion import to_uint8

    cond, uncond = pipe.encode(prompt)[0], pipe.encode("")[0]
    ids = torch.from_numpy(np.concatenate([uncond, cond]))
    hidden, mask = text(ids), (ids != 0).float()
    sched.set_timesteps(steps)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, 3, 32, 32), dtype=np.float32) * np.float32(sched.init_noise_sigma)
    for i, t in enumerate(sched.timesteps):
        xin = torch.from_numpy(np.concatenate([sched.scale_model_input(x, i)] * 2))
        out = unet(xin, torch.full((2,), float(t)), hidden, mask).numpy()
        v = out[:1] + np.float32(guidance) * (out[1:] - out[:1])
        x, _ = sched.step(v, i, x, rng)
    return to_uint8(x[0])
