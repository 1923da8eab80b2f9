"""Our Fashion-MNIST GAN and VAE packs: one decoder graph ``(z, class_weights) -> pixels``.

Trained by exporters/recipes/train_fashion.py. Both draw a latent code from the image's
seed and decode it in one call, so they can also *morph*: walk from seed A's latent to
seed B's along a great circle (slerp keeps the walk at the radius Gaussian codes live
at; a straight line would pass through the low-norm centre and fade the picture), while
the class blends from A's class to B's (or stays the chosen class).
"""

from __future__ import annotations

import time
from typing import Any, Iterator

import numpy as np

from ..errors import EngineError, PackFormatError
from ..events import Done, ImageResult, Step
from ..providers import make_session
from . import ImagePipeline, capabilities, image_seeds, register_pipeline

FRAMES_PER_CALL = 16


def native_sizes(n: int) -> list[tuple[int, int]]:
    """The model's own size is tiny; larger choices are the same picture upscaled."""
    return [(4 * n, 4 * n), (n, n), (2 * n, 2 * n), (8 * n, 8 * n)]


def grey_to_rgb(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """[H, W] in [0, 1] -> height x width x 3 uint8 (Lanczos upscaling when larger)."""
    grey = np.round(np.clip(pixels, 0, 1) * 255).astype(np.uint8)
    if grey.shape != (height, width):
        from PIL import Image

        grey = np.asarray(Image.fromarray(grey).resize((width, height), Image.Resampling.LANCZOS), dtype=np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    cos = float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if omega < 1e-4:
        return (1 - t) * a + t * b
    return (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)


class ClassConditioned(ImagePipeline):
    """What our Fashion-MNIST pipelines share: classes, the seed -> (class, z) protocol."""

    def _setup(self, pack, role: str):
        cfg = pack.config
        classes = cfg.get("classes")
        if not isinstance(classes, list) or not classes:
            raise PackFormatError(f"Pack '{pack.name}' lists no classes in its config.")
        self.classes = [str(c) for c in classes]
        self.native = int(cfg.get("sample_size", 28))
        if role not in {f.role for f in pack.files}:
            raise PackFormatError(f"Pack '{pack.name}' has no '{role}' graph. Re-export it from its recipe.")
        self.session, self.provider = make_session(pack.file_with_role(role), self.settings)

    def class_for(self, request, rng: np.random.Generator) -> int:
        """The chosen class, or one drawn from the image's seed (drawn first, always, so
        the latent code of a seed does not depend on whether a class was chosen)."""
        drawn = int(rng.integers(len(self.classes)))
        return self.classes.index(request.class_label) if request.class_label else drawn

    def one_hot(self, index: int) -> np.ndarray:
        w = np.zeros(len(self.classes), dtype=np.float32)
        w[index] = 1.0
        return w

    def _run(self, feeds: dict) -> np.ndarray:
        try:
            return self.session.run(None, feeds)[0]
        except Exception as exc:  # ORT raises plain RuntimeErrors
            raise EngineError(f"The model failed while drawing ({str(exc).strip().splitlines()[0][:200]}).") from None

    def close(self) -> None:
        self.session = None


@register_pipeline("fashion-gan", "fashion-vae")
class LatentDecoderPipeline(ClassConditioned):
    def __init__(self, pack, settings):
        super().__init__(pack, settings)
        self._setup(pack, "generator")
        self.z_dim = int(pack.config.get("z_dim") or self.session.get_inputs()[0].shape[1])
        self.capabilities = capabilities(classes=list(self.classes), sizes=native_sizes(self.native), morph=True)

    def latent(self, request, seed: int) -> tuple[np.ndarray, int]:
        """(z, class index) of one seed: the whole random protocol of these packs."""
        rng = np.random.default_rng(seed)
        label = self.class_for(request, rng)
        return rng.standard_normal(self.z_dim, dtype=np.float32), label

    def decode(self, z: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """[B, z] and [B, classes] -> [B, 28, 28] in [0, 1]."""
        return self._run({"z": z.astype(np.float32), "class_weights": weights.astype(np.float32)})[:, 0]

    def generate(self, request) -> Iterator[Any]:
        t0 = time.perf_counter()
        seeds = image_seeds(request)
        for n, seed in enumerate(seeds):
            z, label = self.latent(request, seed)
            pixels = self.decode(z[None], self.one_hot(label)[None])[0]
            image = grey_to_rgb(pixels, request.width, request.height)
            yield Step(n + 1, len(seeds), image)
            yield ImageResult(image, seed, self.metadata(request, seed, index=n, drawn_class=self.classes[label]))
        seconds = time.perf_counter() - t0
        yield Done(stats={"seconds": round(seconds, 4), "seconds_per_image": round(seconds / len(seeds), 4), "provider": self.provider.used})

    def morph(self, request, seed_a: int, seed_b: int, frames: int) -> Iterator[Any]:
        t0 = time.perf_counter()
        (za, la), (zb, lb) = self.latent(request, seed_a), self.latent(request, seed_b)
        ts = np.linspace(0.0, 1.0, frames)
        for start in range(0, frames, FRAMES_PER_CALL):
            chunk = ts[start : start + FRAMES_PER_CALL]
            z = np.stack([slerp(za, zb, float(t)) for t in chunk])
            w = np.stack([(1 - t) * self.one_hot(la) + t * self.one_hot(lb) for t in chunk])
            for k, pixels in enumerate(self.decode(z, w)):
                i = start + k
                image = grey_to_rgb(pixels, request.width, request.height)
                yield Step(i + 1, frames, image)
                meta = self.metadata(request, seed_a, morph={"seed_a": seed_a, "seed_b": seed_b, "frame": i, "frames": frames, "t": round(float(ts[i]), 6)})
                yield ImageResult(image, seed_a, meta)
        yield Done(stats={"seconds": round(time.perf_counter() - t0, 4), "frames": frames, "provider": self.provider.used})
