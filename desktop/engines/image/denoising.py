"""The denoising loop every diffusion pipeline shares (Stable Diffusion in latent space,
our emoji model in pixel space): per image a seeded start, one model call and one
scheduler step per timestep with a Step event after each, then the pipeline's finish.

A pipeline supplies only what differs: the shape of its noise, how it encodes a starting
image, its model call and its preview. Keeping one loop keeps the contract's promises
(image ``i`` uses ``seed + i``, randomness only from that seed's generator, an event per
step so Stop is prompt) in one place.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np

from desktop.engines.events import Step
from desktop.engines.image.pipelines import image_seeds


@dataclass
class ModelTime:
    """Seconds spent in the denoising model, and how many calls (for Done's stats)."""

    seconds: float = 0.0
    calls: int = 0

    def per_call(self) -> float:
        return round(self.seconds / max(self.calls, 1), 4)


@dataclass
class Start:
    """Where one image's loop starts: ``x``; ``extra`` channels appended to every model input
    (an inpainting UNet's mask and masked picture); ``keep`` re-imposes the known latents
    outside a mask after each step (inpainting with an ordinary model)."""

    x: np.ndarray
    extra: np.ndarray | None = None
    keep: Any = None


def initial_noise(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """The starting noise of one image: the first draw from the image's seeded RNG.
    Validation and tests hand the same array to diffusers to compare like with like."""
    return rng.standard_normal(shape, dtype=np.float32)


def denoise_batch(
    request,
    sched,
    *,
    noise_shape: tuple[int, ...],
    predict: Callable[[np.ndarray, Any], np.ndarray],
    preview: Callable[[np.ndarray], np.ndarray | None],
    finish: Callable[[np.ndarray, int, int], Any],
    encode_init: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
    begin: Callable[[np.ndarray, np.random.Generator], "Start"] | None = None,
    timer: ModelTime | None = None,
) -> Iterator[Any]:
    """Yield a Step per timestep of every image of ``request``'s batch and, per image,
    ``finish(x, index, seed)`` (its ImageResult). ``sched`` has its timesteps set;
    ``predict(model_input, t)`` is the guided model output; ``preview(x0)`` turns the
    clean-sample estimate of one image into a cheap picture (or None). ``begin(noise, rng)``,
    when given, decides the start instead (inpainting: extra model-input channels, latents
    kept outside a mask)."""
    timer = timer if timer is not None else ModelTime()
    steps = len(sched.timesteps)
    total = steps * request.batch_count
    for n, seed in enumerate(image_seeds(request)):
        rng = np.random.default_rng(seed)
        noise = initial_noise(rng, noise_shape)
        if begin is not None:
            start = begin(noise, rng)
        elif request.init_image is not None and encode_init is not None:
            start = Start(sched.add_noise(encode_init(request.init_image, rng), noise))
        else:
            start = Start(noise * np.float32(sched.init_noise_sigma))
        x = start.x
        for i, t in enumerate(sched.timesteps):
            started = time.perf_counter()
            model_input = sched.scale_model_input(x, i)
            if start.extra is not None:
                model_input = np.concatenate([model_input, start.extra], axis=1)
            out = predict(model_input, t)
            timer.seconds += time.perf_counter() - started
            timer.calls += 1
            x, x0 = sched.step(out, i, x, rng)
            if start.keep is not None:
                x = start.keep.blend(x, sched, i)
            yield Step(n * steps + i + 1, total, preview(x0[0]))
        yield finish(x, n, seed)
