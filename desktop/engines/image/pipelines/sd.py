"""Stable Diffusion family (SD 1.x / 2.x, LCM-distilled, turbo) over ONNX Runtime.

Components, each an ONNX graph named by its manifest role: ``text_encoder``, ``unet``,
``vae_decoder`` and, for img2img, ``vae_encoder``; plus ``tokenizer/`` and
``scheduler/scheduler_config.json``. The same layout comes from our exporter and from
optimum's, so both run here. Input names and dtypes are read from the graphs.

Per image (the shared loop in ``image/denoising.py``): seeded noise -> (img2img: encode +
noise to the strength's level) -> for each step one UNet call with conditional and
unconditional batched together (classifier-free guidance) -> scheduler step -> a cheap
linear preview -> VAE decode at the end.
"""

from __future__ import annotations

import json
import time
from typing import Any, Iterator

import numpy as np

from desktop.engines.image import inpaint, latent_preview
from desktop.engines.image import prompt_weights
from desktop.engines.image.clip_tokenizer import ClipTokenizer
from desktop.engines.config_limits import config_float, config_int
from desktop.engines.errors import EngineError, PackFormatError
from desktop.engines.events import Done, ImageResult, Notice
from desktop.engines.image.denoising import ModelTime, Start, denoise_batch, initial_noise  # noqa: F401 - initial_noise: validation and tests start from it
from desktop.engines.image.schedulers import DIFFUSERS_NAMES, make_scheduler, scheduler_names
from desktop.engines.image.pipelines import Capabilities, ImagePipeline, make_image_session, register_pipeline

REQUIRED = ("text_encoder", "unet", "vae_decoder")
_NP_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(double)": np.float64}


@register_pipeline("stable-diffusion")
class StableDiffusionPipeline(ImagePipeline):
    inpaints = True  # a mask over the starting image repaints only its white part (see inpaint.py)

    def __init__(self, pack, settings):
        super().__init__(pack, settings)
        cfg = pack.config
        roles = {f.role for f in pack.files}
        missing = [r for r in REQUIRED if r not in roles]
        if missing:
            raise PackFormatError(
                f"Stable Diffusion pack '{pack.name}' is missing its {', '.join(missing)} "
                f"component{'s' if len(missing) > 1 else ''}. Re-export or re-import the complete model folder."
            )
        self.tokenizer = ClipTokenizer(pack.path_of("tokenizer"))
        self.scheduler_config = _read_json(pack, "scheduler/scheduler_config.json")
        self.text_encoder, _ = make_image_session(pack.file_with_role("text_encoder"), settings)
        self.unet, self.provider = make_image_session(pack.file_with_role("unet"), settings)
        self.vae_decoder, _ = make_image_session(pack.file_with_role("vae_decoder"), settings)
        self.vae_encoder = make_image_session(pack.file_with_role("vae_encoder"), settings)[0] if "vae_encoder" in roles else None
        self._read_io()
        self.latent_channels = config_int(cfg, "latent_channels", 4, pack.name)
        self.vae_scale = config_int(cfg, "vae_scale_factor", 8, pack.name)
        self.scaling_factor = float(cfg.get("scaling_factor", 0.18215))
        self.shift_factor = float(cfg.get("shift_factor") or 0.0)
        self.preview_fit = cfg.get("latent_rgb")
        self.attention = cfg.get("attention") or {"downsample": 1, "heads": 8}
        # LCM-distilled UNets take the guidance scale as an embedding instead of CFG
        self.distilled = "timestep_cond" in self.unet_inputs
        default = DIFFUSERS_NAMES.get(str(cfg.get("scheduler_class", "")), "lcm" if self.distilled else "dpmpp_2m")
        default = cfg.get("default_scheduler", default)
        side = config_int(cfg, "sample_size", 64, pack.name) * self.vae_scale
        self.capabilities = Capabilities(
            prompt=True,
            negative_prompt=not self.distilled,
            guidance=True,
            steps=True,
            img2img=self.vae_encoder is not None,
            schedulers=[default] + [n for n in scheduler_names() if n != default],
            free_size=True,
            size_multiple=config_int(cfg, "size_multiple", self.vae_scale, pack.name),
            default_size=(side, side),
            default_steps=config_int(cfg, "default_steps", 4 if self.distilled else 25, pack.name),
            default_guidance=config_float(cfg, "default_guidance", 1.5 if self.distilled else 7.5, pack.name),
        )

    def _read_io(self) -> None:
        te = self.text_encoder.get_inputs()[0]
        self.text_input = (te.name, _NP_TYPES.get(te.type, np.int64))
        self.unet_inputs = {i.name: i for i in self.unet.get_inputs()}
        for needed in ("sample", "timestep", "encoder_hidden_states"):
            if needed not in self.unet_inputs:
                raise PackFormatError(f"The UNet of '{self.pack.name}' has no '{needed}' input; it is not a Stable Diffusion UNet.")
        ts = self.unet_inputs["timestep"]
        self.timestep_type = _NP_TYPES.get(ts.type, np.float32)
        self.timestep_rank = len(ts.shape)
        self.sample_type = _NP_TYPES.get(self.unet_inputs["sample"].type, np.float32)
        # Inpainting UNets take 9 channels: latents, the mask and the masked picture's latents.
        channels = self.unet_inputs["sample"].shape[1]
        self.inpainting_unet = channels == 9

    # -- the contract --------------------------------------------------------------
    def estimate_memory(self, request) -> int:
        h, w = request.height // self.vae_scale, request.width // self.vae_scale
        tokens = (h // self.attention["downsample"]) * (w // self.attention["downsample"])
        batch = 2 if self._uses_cfg(request.guidance) else 1
        # unfused attention holds every score (and its softmax); fused kernels work in tiles
        per_query = 256 if self.attention.get("fused") else tokens * 2
        attention = batch * int(self.attention["heads"]) * tokens * per_query * 4
        decoder = request.width * request.height * config_int(self.pack.config, "vae_decoder_channels", 128, self.pack.name) * 4 * 3
        return attention + decoder + self.pack.size_bytes

    def generate(self, request) -> Iterator[Any]:
        t0 = time.perf_counter()
        cfg = self._uses_cfg(request.guidance)
        texts = [request.prompt, request.negative_prompt] if cfg else [request.prompt]
        conditions, cuts = self._conditions(texts, request)  # one text-encoder call for both prompts
        if cuts[0]:
            yield Notice(f"The prompt is longer than the model reads ({self.tokenizer.max_length} tokens); it ignored: \u201c{_short(cuts[0])}\u201d.")
        if cfg and cuts[1]:
            yield Notice(f"The negative prompt is longer than the model reads; it ignored: \u201c{_short(cuts[1])}\u201d.")
        cond = {k: v[:1] for k, v in conditions.items()}
        uncond = {k: v[1:] for k, v in conditions.items()} if cfg else None
        sched = make_scheduler(request.scheduler, self.scheduler_config)
        strength = request.strength if request.init_image is not None else 1.0
        sched.set_timesteps(request.steps, strength)
        steps = len(sched.timesteps)
        unet = ModelTime()
        yield from denoise_batch(
            request,
            sched,
            noise_shape=self.latent_shape(request.width, request.height),
            predict=lambda x, t: self._denoise(x, t, cond, uncond, request.guidance),
            preview=lambda x0: latent_preview.preview(x0, self.preview_fit),
            finish=lambda latents, n, seed: ImageResult(self._finish_pixels(latents, request), seed, self.metadata(request, seed, index=n, steps_run=steps)),
            encode_init=self._encode_image,
            begin=self._inpainting_start(request, sched, strength),
            timer=unet,
        )
        seconds = time.perf_counter() - t0
        yield Done(
            stats={
                "seconds": round(seconds, 3),
                "seconds_per_image": round(seconds / request.batch_count, 3),
                "unet_calls": unet.calls,
                "seconds_per_unet_call": unet.per_call(),
                "provider": self.provider.used,
            }
        )

    def _inpainting_start(self, request, sched, strength: float):
        """The start of one image when a mask is painted (None: the shared loop's own start).
        An inpainting UNet gets the mask and the masked picture as extra channels (diffusers'
        order); an ordinary model repaints inside the mask and keeps the known latents outside."""
        if not self.inpainting_unet and (request.mask is None or request.init_image is None):
            return None

        def begin(noise: np.ndarray, rng: np.random.Generator) -> Start:
            if self.inpainting_unet:
                from_noise = strength >= 1.0
                x = noise * np.float32(sched.init_noise_sigma) if from_noise else sched.add_noise(self._encode_image(request.init_image, rng), noise)
                masked = self._encode_pixels(inpaint.masked_pixels(request.init_image, request.mask), rng)
                return Start(x, extra=np.concatenate([inpaint.latent_mask(request.mask, *masked.shape[2:]), masked], axis=1))
            init_latents = self._encode_image(request.init_image, rng)
            return Start(sched.add_noise(init_latents, noise), keep=inpaint.MaskedLatents(request.mask, init_latents, noise))

        return begin

    def _finish_pixels(self, latents: np.ndarray, request) -> np.ndarray:
        image = self._decode(latents)
        if request.mask is not None:
            image = inpaint.paste_back(image, request.init_image, request.mask)
        return image

    def latent_shape(self, width: int, height: int) -> tuple[int, int, int, int]:
        return (1, self.latent_channels, height // self.vae_scale, width // self.vae_scale)

    def close(self) -> None:
        self.text_encoder = self.unet = self.vae_decoder = self.vae_encoder = None

    # -- pieces ------------------------------------------------------------------------
    def _uses_cfg(self, guidance: float) -> bool:
        return guidance > 1.0 and not self.distilled

    def _conditions(self, texts: list[str], request) -> tuple[dict[str, np.ndarray], list[str]]:
        """The UNet's text conditioning, one row per text, by UNet input name (SDXL adds its
        pooled embedding and size ids); and the words each text lost to the length limit."""
        hidden, cuts = self._encode(texts)
        return {"encoder_hidden_states": hidden}, cuts

    def _encode(self, texts: list[str]) -> tuple[np.ndarray, list[str]]:
        chunks = [prompt_weights.parse(t) for t in texts]
        if any(prompt_weights.is_weighted(c) for c in chunks):
            pairs = [self.tokenizer.encode_weighted(c) for c in chunks]
            encoded, weights = [e for e, _ in pairs], np.asarray([w for _, w in pairs], dtype=np.float32)
        else:
            encoded, weights = [self.tokenizer.encode(prompt_weights.plain_text(t)) for t in texts], None
        ids = np.asarray([e.ids for e in encoded], dtype=self.text_input[1])
        hidden = self.text_encoder.run(None, {self.text_input[0]: ids})[0].astype(np.float32)
        if weights is not None:
            hidden = prompt_weights.apply(hidden, weights)
        return hidden, [e.truncated_words for e in encoded]

    def _denoise(self, x: np.ndarray, t, cond: dict[str, np.ndarray], uncond: dict[str, np.ndarray] | None, guidance: float) -> np.ndarray:
        batch = 2 if uncond is not None else 1
        feeds = {"sample": np.concatenate([x] * batch).astype(self.sample_type), "timestep": self._timestep(t, batch)}
        for name, value in cond.items():
            value = np.concatenate([uncond[name], value]) if uncond is not None else value
            feeds[name] = value.astype(_NP_TYPES.get(self.unet_inputs[name].type, self.sample_type))
        if self.distilled:
            dim = self.unet_inputs["timestep_cond"].shape[1]
            feeds["timestep_cond"] = guidance_embedding(guidance - 1.0, int(dim) if isinstance(dim, int) else 256).astype(self.sample_type)
        try:
            out = self.unet.run(None, feeds)[0].astype(np.float32)
        except Exception as exc:  # ORT raises plain RuntimeErrors; name the step
            raise EngineError(f"The UNet failed at this size or setting ({_first_line(exc)}).") from None
        if uncond is None:
            return out
        out_uncond, out_cond = out[:1], out[1:]
        return out_uncond + np.float32(guidance) * (out_cond - out_uncond)

    def _timestep(self, t, batch: int) -> np.ndarray:
        if self.timestep_rank == 0:
            return np.asarray(t, dtype=self.timestep_type)
        return np.full((batch,), t, dtype=self.timestep_type)

    def _encode_image(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self._encode_pixels((image.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None], rng)

    def _encode_pixels(self, pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Scaled latents of NCHW pixels in [-1, 1]."""
        out = self.vae_encoder.run(None, {self.vae_encoder.get_inputs()[0].name: pixels})[0].astype(np.float32)
        if out.shape[1] == 2 * self.latent_channels:  # mean and log-variance: sample, like diffusers
            mean, logvar = out[:, : self.latent_channels], np.clip(out[:, self.latent_channels :], -30.0, 20.0)
            out = mean + np.exp(0.5 * logvar) * rng.standard_normal(mean.shape, dtype=np.float32)
        return ((out - self.shift_factor) * self.scaling_factor).astype(np.float32)

    def _decode(self, latents: np.ndarray) -> np.ndarray:
        z = latents / np.float32(self.scaling_factor) + np.float32(self.shift_factor)
        image = self.vae_decoder.run(None, {self.vae_decoder.get_inputs()[0].name: z.astype(np.float32)})[0]
        image = np.clip(image[0].astype(np.float32) / 2 + 0.5, 0, 1).transpose(1, 2, 0)
        return np.round(image * 255).astype(np.uint8)


def guidance_embedding(w: float, dim: int) -> np.ndarray:
    """Sinusoidal embedding of the guidance scale for LCM-distilled UNets (as diffusers)."""
    half = dim // 2
    freqs = np.exp(np.arange(half, dtype=np.float32) * -(np.log(10000.0) / (half - 1)))
    emb = np.float32(w * 1000.0) * freqs[None, :]
    out = np.concatenate([np.sin(emb), np.cos(emb)], axis=1)
    if dim % 2:
        out = np.pad(out, ((0, 0), (0, 1)))
    return out.astype(np.float32)


def _read_json(pack, relative: str) -> dict:
    path = pack.path_of(relative)
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise PackFormatError(f"'{relative}' in pack '{pack.name}' is not valid JSON.") from None
    return data if isinstance(data, dict) else {}


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _first_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__
