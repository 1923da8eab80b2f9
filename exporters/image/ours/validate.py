"""Validation of our generators' packs against their PyTorch modules.

Each check runs the *engine's* pipeline on the pack (ONNX Runtime) and the PyTorch
module with the same random draws, so it covers the graphs, the quantization and the
engine's own sampling code together:
* components: max |ONNX - PyTorch| of every graph on fixed inputs;
* end to end: mean |pixel difference| (0-255) of finished images; for the PixelCNN, whose
  samples diverge at the first near-tie, also bits per pixel on real test images.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from desktop.engines.image.engine import ImageEngine, ImageRequest
from desktop.engines.providers import RuntimeSettings

SETTINGS = RuntimeSettings(threads=2)


def _images(engine: ImageEngine, request: ImageRequest) -> list[np.ndarray]:
    from desktop.engines.events import ImageResult

    return [ev.image for ev in engine.generate(request) if isinstance(ev, ImageResult)]


def _diff(a, b) -> float:
    return float(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).max())


def _pixel_report(ours: list[np.ndarray], ref: list[np.ndarray]) -> dict[str, Any]:
    d = np.abs(np.stack(ours).astype(np.int16) - np.stack(ref).astype(np.int16))
    return {"pixel_mean_abs": round(float(d.mean()), 4), "pixel_max_abs": int(d.max()), "images": len(ours)}


@torch.no_grad()
def emoji_diffusion(models: dict, pack, ckpt: dict) -> dict[str, Any]:
    from desktop.engines.image.schedulers import make_scheduler

    from training.emoji_diffusion_ref import reference_sample

    engine = ImageEngine(pack, SETTINGS)
    pipe = engine.pipeline
    text, unet = models["text_encoder"], models["unet"]
    ids = np.concatenate([pipe.encode(p)[0] for p in ("red apple", "smiling cat face", "")])
    hidden_onnx = pipe._text(ids)
    hidden_torch = text(torch.from_numpy(ids)).numpy()
    mask = (ids != 0).astype(np.float32)
    x = np.random.default_rng(0).standard_normal((3, 3, 32, 32), dtype=np.float32)
    t = np.array([999.0, 500.0, 20.0], dtype=np.float32)
    v_onnx = pipe.unet.run(None, {"sample": x, "timestep": t, "encoder_hidden_states": hidden_torch, "encoder_attention_mask": mask})[0]
    v_torch = unet(torch.from_numpy(x), torch.from_numpy(t), torch.from_numpy(hidden_torch), torch.from_numpy(mask)).numpy()
    prompts = ["red apple", "green tree", "smiling cat"]
    ours, ref = [], []
    for seed, prompt in enumerate(prompts):
        req = ImageRequest(prompt=prompt, seed=seed, steps=10, width=32, height=32, guidance=3.0, scheduler="ddim")
        ours += _images(engine, req)
        ref.append(reference_sample(text, unet, pipe, prompt, seed, 10, 3.0, make_scheduler("ddim", pipe.scheduler_config)))
    engine.close()
    return {
        "components": {"text_encoder": {"max_abs_diff": _diff(hidden_onnx, hidden_torch)}, "unet": {"max_abs_diff": _diff(v_onnx, v_torch)}},
        "end_to_end": {**_pixel_report(ours, ref), "steps": 10, "scheduler": "ddim", "prompts": prompts},
    }


@torch.no_grad()
def _latent_decoder(models: dict, pack, ckpt: dict) -> dict[str, Any]:
    """The pack runs in the app's latent-generator pipeline; the reference feeds PyTorch
    the same latent and class weights that pipeline derives from each seed."""
    engine = ImageEngine(pack, SETTINGS)
    pipe = engine.pipeline
    g = models["generator"]
    ours, ref = [], []
    for k, label in enumerate(pipe.classes):
        seed = 100 + k
        ours += [im[..., 0] for im in _images(engine, ImageRequest(class_label=label, seed=seed))]
        z, w = pipe._latent(seed), pipe._class_weights(label, seed)
        pixels = g(torch.from_numpy(z[None]), torch.from_numpy(w[None])).numpy()[0, 0]
        ref.append(np.round(np.clip(pixels, 0, 1) * 255).astype(np.uint8))
    z = np.random.default_rng(1).standard_normal((8, pipe.z_dim), dtype=np.float32)
    w = np.eye(len(pipe.classes), dtype=np.float32)[np.arange(8) % len(pipe.classes)]
    raw = _diff(pipe.session.run(None, {"z": z, "class_weights": w})[0], g(torch.from_numpy(z), torch.from_numpy(w)).numpy())
    engine.close()
    return {"components": {"generator": {"max_abs_diff": raw}}, "end_to_end": _pixel_report(ours, ref)}


fashion_gan = fashion_vae = _latent_decoder


@torch.no_grad()
def fashion_pixelcnn(models: dict, pack, ckpt: dict) -> dict[str, Any]:
    from training import fashion_data

    engine = ImageEngine(pack, SETTINGS)
    pipe = engine.pipeline
    net = models["step_model"]
    levels = pipe.levels
    images, labels = fashion_data.load("test")
    idx = fashion_data.balanced_subset(labels, 10)
    target = np.round(images[idx] / 255.0 * (levels - 1)).astype(np.int64)
    x = (target / (levels - 1)).astype(np.float32)[:, None]
    w = np.eye(10, dtype=np.float32)[labels[idx]]
    lo_onnx, lo_torch = pipe.logits(x, w), net(torch.from_numpy(x), torch.from_numpy(w)).numpy()

    def bits(lo):
        lo = lo.astype(np.float64)
        logp = lo - lo.max(1, keepdims=True)
        logp -= np.log(np.exp(logp).sum(1, keepdims=True))
        picked = np.take_along_axis(logp, target[:, None], axis=1)
        return float(-picked.mean() / np.log(2))

    # a sampled image from the engine and from PyTorch with the same uniforms
    rngs_a, rngs_b = [np.random.default_rng(7)], [np.random.default_rng(7)]
    wa = pipe.one_hot(3)[None]
    ours = list(pipe.sample(rngs_a, wa))[-1][1]
    ref = list(pipe.sample(rngs_b, wa, logits_fn=lambda p, ww: net(torch.from_numpy(p), torch.from_numpy(ww)).numpy()))[-1][1]
    engine.close()
    to8 = lambda a: np.round(a * 255).astype(np.uint8)  # noqa: E731
    return {
        "components": {"step_model": {"max_abs_diff": _diff(lo_onnx, lo_torch)}},
        "end_to_end": {
            **_pixel_report([to8(ours[0])], [to8(ref[0])]),
            "bits_per_pixel_onnx": round(bits(lo_onnx), 5),
            "bits_per_pixel_torch": round(bits(lo_torch), 5),
            "test_images": int(len(idx)),
        },
    }
