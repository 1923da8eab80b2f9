"""Our emoji diffusion packs: a word-bag text encoder and a pixel-space UNet (32x32).

Trained by training/train_emoji.py on the Noto Color Emoji glyphs with their
Unicode names and keywords. The UNet predicts v on 32x32 RGB directly (no VAE), so the
clean-image estimate of every step *is* the preview, and img2img noises the downscaled
starting picture. Bigger sizes are the 32x32 result upscaled, said so in the metadata.
"""

from __future__ import annotations

import time
from typing import Any, Iterator

import numpy as np

from desktop.engines.config_limits import config_float, config_int
from desktop.engines.errors import EngineError, PackFormatError
from desktop.engines.events import Done, ImageResult, Notice
from desktop.engines.image.denoising import ModelTime, denoise_batch
from desktop.engines.image.schedulers import make_scheduler, scheduler_names
from desktop.engines.image.pipelines import Capabilities, ImagePipeline, make_image_session, register_pipeline
from desktop.engines.image.pipelines.emoji_vocab import EmojiVocabulary

REQUIRED = ("text_encoder", "unet", "vocabulary")


@register_pipeline("emoji-diffusion")
class EmojiDiffusionPipeline(ImagePipeline):
    def __init__(self, pack, settings):
        super().__init__(pack, settings)
        roles = {f.role for f in pack.files}
        missing = [r for r in REQUIRED if r not in roles]
        if missing:
            raise PackFormatError(f"Emoji pack '{pack.name}' is missing its {', '.join(missing)}. Re-export it from its recipe.")
        cfg = pack.config
        self.native = config_int(cfg, "sample_size", 32, pack.name)
        self.vocab = EmojiVocabulary.load(pack.file_with_role("vocabulary"))
        self.scheduler_config = cfg.get("scheduler") or {}
        self.text_encoder, _ = make_image_session(pack.file_with_role("text_encoder"), settings)
        self.unet, self.provider = make_image_session(pack.file_with_role("unet"), settings)
        default = cfg.get("default_scheduler", "ddim")
        # LCM needs a distilled model; this one is not
        names = [default] + [n for n in scheduler_names() if n not in (default, "lcm")]
        n = self.native
        self.capabilities = Capabilities(
            prompt=True,
            negative_prompt=True,
            guidance=True,
            steps=True,
            img2img=True,
            schedulers=names,
            sizes=[(4 * n, 4 * n), (n, n), (2 * n, 2 * n), (8 * n, 8 * n)],
            default_steps=config_int(cfg, "default_steps", 25, pack.name),
            default_guidance=config_float(cfg, "default_guidance", 3.0, pack.name),
        )

    def estimate_memory(self, request) -> int:
        return self.pack.size_bytes * 3 + request.width * request.height * 3 * 8

    # -- the contract ------------------------------------------------------------------
    def generate(self, request) -> Iterator[Any]:
        t0 = time.perf_counter()
        cond, unknown, dropped = self.encode(request.prompt)
        if unknown:
            known = "; the picture follows the other words" if (cond[0, 1:] != self.vocab.pad_id).any() else "; with no word it knows, it draws a random emoji"
            yield Notice(f"This model does not know the word{'s' if len(unknown) > 1 else ''} {', '.join(repr(w) for w in unknown[:8])}{known}.")
        if dropped:
            yield Notice(f"Only the first {self.vocab.max_length - 1} words are read; ignored: {', '.join(dropped[:8])}.")
        uncond = self.encode(request.negative_prompt)[0] if request.guidance != 1.0 else None
        hidden = self._text(np.concatenate([uncond, cond]) if uncond is not None else cond)
        ids = np.concatenate([uncond, cond]) if uncond is not None else cond
        mask = (ids != self.vocab.pad_id).astype(np.float32)
        sched = make_scheduler(request.scheduler, self.scheduler_config)
        strength = request.strength if request.init_image is not None else 1.0
        sched.set_timesteps(request.steps, strength)
        steps = len(sched.timesteps)
        unet = ModelTime()
        native = f"{self.native}x{self.native}"
        yield from denoise_batch(
            request,
            sched,
            noise_shape=(1, 3, self.native, self.native),
            predict=lambda x, t: self._denoise(x, t, hidden, mask, request.guidance, uncond is not None),
            preview=to_uint8,  # pixel space: the clean estimate is the picture
            finish=lambda x, n, seed: ImageResult(
                self._pixels_out(x[0], request.width, request.height), seed, self.metadata(request, seed, index=n, steps_run=steps, native_size=native)
            ),
            encode_init=lambda image, rng: self._pixels_in(image),
            timer=unet,
        )
        seconds = time.perf_counter() - t0
        yield Done(stats={"seconds": round(seconds, 3), "seconds_per_image": round(seconds / request.batch_count, 3), "unet_calls": unet.calls, "seconds_per_unet_call": unet.per_call(), "provider": self.provider.used})

    def close(self) -> None:
        self.text_encoder = self.unet = None

    # -- pieces --------------------------------------------------------------------------
    def encode(self, text: str) -> tuple[np.ndarray, list[str], list[str]]:
        return self.vocab.encode(text)

    def _text(self, ids: np.ndarray) -> np.ndarray:
        return self.text_encoder.run(None, {"input_ids": ids})[0].astype(np.float32)

    def _denoise(self, x, t, hidden, mask, guidance: float, cfg: bool) -> np.ndarray:
        batch = 2 if cfg else 1
        feeds = {
            "sample": np.concatenate([x] * batch).astype(np.float32),
            "timestep": np.full((batch,), t, dtype=np.float32),
            "encoder_hidden_states": hidden,
            "encoder_attention_mask": mask,
        }
        try:
            out = self.unet.run(None, feeds)[0].astype(np.float32)
        except Exception as exc:  # ORT raises plain RuntimeErrors; say which step failed
            raise EngineError(f"The emoji model failed while denoising ({str(exc).strip().splitlines()[0][:200]}).") from None
        if not cfg:
            return out
        return out[:1] + np.float32(guidance) * (out[1:] - out[:1])

    def _pixels_in(self, image: np.ndarray) -> np.ndarray:
        from PIL import Image

        small = Image.fromarray(image).resize((self.native, self.native), Image.Resampling.BOX)
        return (np.asarray(small, dtype=np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]

    def _pixels_out(self, x: np.ndarray, width: int, height: int) -> np.ndarray:
        image = to_uint8(x)
        if (width, height) == (self.native, self.native):
            return image
        from PIL import Image

        return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.LANCZOS), dtype=np.uint8)


def to_uint8(x: np.ndarray) -> np.ndarray:
    """[3, H, W] in [-1, 1] -> H x W x 3 uint8."""
    return np.round(np.clip(x.transpose(1, 2, 0) / 2 + 0.5, 0, 1) * 255).astype(np.uint8)

