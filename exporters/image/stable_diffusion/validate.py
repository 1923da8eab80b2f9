"""Numerical validation of a Stable Diffusion pack against its PyTorch source.

Two levels, both written into the manifest's validation report:
* per component: the ONNX graph and the PyTorch module on the same inputs (max and mean
  |Δ|, and the reference's scale so the numbers can be read);
* end to end: the pack's own engine and diffusers' pipeline generate the same prompt
  from the same starting latents with the same scheduler; pixel differences (0-255) and
  both timings.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import numpy as np

PROMPT = "a red apple on a wooden table, soft light"
NEGATIVE = "blurry, low quality"
E2E_STEPS = 4
E2E_MAX_SIDE = 512


def _diff(ours: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    d = np.abs(ours.astype(np.float64) - ref.astype(np.float64))
    return {"max_abs": float(d.max()), "mean_abs": float(d.mean()), "ref_abs_mean": float(np.abs(ref).mean())}


def validate_components(pipe, pack_dir: Path, max_length: int) -> dict[str, Any]:
    import onnxruntime as ort
    import torch

    from desktop.engines.image.clip_tokenizer import ClipTokenizer

    from .graph import text_encoder_module, unet_module

    def session(role):
        return ort.InferenceSession(str(pack_dir / role / "model.onnx"), providers=["CPUExecutionProvider"])

    rng = np.random.default_rng(0)
    report: dict[str, Any] = {}
    tok = ClipTokenizer(pack_dir / "tokenizer")
    ids = np.asarray([tok.encode(PROMPT).ids, tok.encode("").ids], dtype=np.int64)
    with torch.inference_mode():
        ref = text_encoder_module(pipe.text_encoder)(torch.from_numpy(ids))[0].numpy()
    s = session("text_encoder")
    ours = s.run(None, {"input_ids": ids.astype(_np_type(s.get_inputs()[0].type))})[0]
    report["text_encoder"] = _diff(ours, ref)

    unet = pipe.unet
    side = int(unet.config.sample_size)
    feeds = {
        "sample": rng.standard_normal((2, unet.config.in_channels, side, side)).astype(np.float32),
        "timestep": np.array([999.0, 999.0], dtype=np.float32),
        "encoder_hidden_states": ref.astype(np.float32),
    }
    if unet.config.time_cond_proj_dim is not None:
        feeds["timestep_cond"] = rng.standard_normal((2, unet.config.time_cond_proj_dim)).astype(np.float32)
    module, _ = unet_module(unet)
    with torch.inference_mode():
        ref_unet = module(*[torch.from_numpy(v) for v in feeds.values()]).numpy()
    report["unet"] = _diff(session("unet").run(None, feeds)[0], ref_unet)
    report.update(validate_vae(pipe.vae, session, side, rng))
    return report


def validate_vae(vae, session, side: int, rng: np.random.Generator) -> dict[str, Any]:
    """``vae_decoder`` and ``vae_encoder`` against PyTorch (shared with SDXL): a latent of
    ``side``, then a picture of the matching pixel size, both drawn from ``rng`` after the
    caller's draws so the inputs stay what they were."""
    import torch

    from desktop.engines.image.latent_preview import synthetic_images

    from .graph import vae_decoder_module, vae_encoder_module

    report: dict[str, Any] = {}
    z = rng.standard_normal((1, vae.config.latent_channels, side, side)).astype(np.float32)
    with torch.inference_mode():
        ref_dec = vae_decoder_module(vae)(torch.from_numpy(z)).numpy()
    report["vae_decoder"] = _diff(session("vae_decoder").run(None, {"latent_sample": z})[0], ref_dec)

    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    images = synthetic_images(1, side * factor, rng)
    with torch.inference_mode():
        ref_enc = vae_encoder_module(vae)(torch.from_numpy(images)).numpy()
    report["vae_encoder"] = _diff(session("vae_encoder").run(None, {"sample": images})[0], ref_enc)
    return report


def validate_end_to_end(pipe, pack_dir: Path, scheduler: str = "euler") -> dict[str, Any]:
    """Same prompt, latents and scheduler through our engine and through diffusers."""
    import torch

    from desktop.engines.image.engine import ImageRequest

    with e2e_engine(pack_dir) as engine:
        caps = engine.capabilities
        w, h = (min(s, E2E_MAX_SIDE) for s in caps.default_size)
        distilled = engine.pipeline.distilled
        scheduler = "lcm" if distilled else scheduler
        guidance = 1.5 if distilled else 7.5
        request = ImageRequest(prompt=PROMPT, negative_prompt="" if distilled else NEGATIVE, width=w, height=h, steps=E2E_STEPS, guidance=guidance, scheduler=scheduler, seed=0)
        ours, ours_s, rng, noise = generate_ours(engine, request)
        # stochastic schedulers draw fresh noise each step: hand diffusers the same draws
        step_noise = [torch.from_numpy(rng.standard_normal(noise.shape, dtype=np.float32)) for _ in range(E2E_STEPS)]
    kwargs = {} if distilled else {"negative_prompt": NEGATIVE}
    with diffusers_scheduler(pipe, scheduler):
        t0 = time.perf_counter()
        with torch.inference_mode(), _scheduler_noise(pipe.scheduler, step_noise):
            ref = pipe(PROMPT, height=h, width=w, num_inference_steps=E2E_STEPS, guidance_scale=guidance, latents=torch.from_numpy(noise), output_type="np", **kwargs).images[0]
        ref_s = time.perf_counter() - t0
    d = pixel_diff(ours, ref)
    return {
        "prompt": PROMPT,
        "size": f"{w}x{h}",
        "steps": E2E_STEPS,
        "scheduler": scheduler,
        "pixel_max_abs": float(d.max()),
        "pixel_mean_abs": float(d.mean()),
        "seconds_onnx": round(ours_s, 3),
        "seconds_pytorch": round(ref_s, 3),
    }


# -- shared with the inpainting check (validate_inpaint) ----------------------------------
@contextlib.contextmanager
def e2e_engine(pack_dir: Path):
    """The pack's own engine on the CPU, closed however the check ends."""
    from desktop.engines.image.engine import ImageEngine
    from desktop.engines.packs.pack import load_pack
    from desktop.engines.providers import RuntimeSettings

    engine = ImageEngine(load_pack(pack_dir, verify_hashes=False), RuntimeSettings(provider="cpu"))
    try:
        yield engine
    finally:
        engine.close()


def generate_ours(engine, request) -> tuple[np.ndarray, float, np.random.Generator, np.ndarray]:
    """Our image and its seconds, plus the engine's starting noise for diffusers. The engine draws
    from its seed's generator in a fixed order, so the generator comes back too: the caller
    continues it for the draws that follow the noise (per-step noise, the VAE posterior)."""
    from desktop.engines.events import ImageResult
    from desktop.engines.image.pipelines.sd import initial_noise

    t0 = time.perf_counter()
    ours = next(ev.image for ev in engine.generate(request) if isinstance(ev, ImageResult))
    seconds = time.perf_counter() - t0
    rng = np.random.default_rng(request.seed)
    noise = initial_noise(rng, engine.pipeline.latent_shape(request.width, request.height))
    return ours, seconds, rng, noise


@contextlib.contextmanager
def diffusers_scheduler(pipe, scheduler: str):
    """Run ``pipe`` with the diffusers counterpart of our ``scheduler``, then give it back its own
    (the pipeline is the exporter's source and is used again after the check)."""
    import diffusers

    from desktop.engines.image.schedulers import DIFFUSERS_NAMES

    reverse = {v: k for k, v in DIFFUSERS_NAMES.items()}
    original = pipe.scheduler
    pipe.scheduler = getattr(diffusers, reverse[scheduler]).from_config(original.config)
    try:
        yield
    finally:
        pipe.scheduler = original


def pixel_diff(ours: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """|ours - diffusers| per pixel on the 0-255 scale (diffusers returns floats in 0-1)."""
    return np.abs(ours.astype(np.float64) - np.round(ref * 255).astype(np.float64))


@contextlib.contextmanager
def _scheduler_noise(scheduler, draws: list):
    """Make a diffusers scheduler's per-step noise come from ``draws`` (in order)."""
    import importlib

    module = importlib.import_module(type(scheduler).__module__)
    original = getattr(module, "randn_tensor", None)
    if original is None:
        yield
        return
    queue = list(draws)
    module.randn_tensor = lambda *a, **k: queue.pop(0)
    try:
        yield
    finally:
        module.randn_tensor = original


def _np_type(ort_type: str):
    return {"tensor(int32)": np.int32, "tensor(int64)": np.int64}.get(ort_type, np.int64)
