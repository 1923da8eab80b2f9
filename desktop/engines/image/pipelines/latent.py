"""Latent generators: one graph maps a latent vector (and a class) straight to pixels.

Serves GAN generators and VAE decoders exported as a single ``generator`` graph with
inputs ``z`` [B, z_dim] and, for class-conditioned packs, ``class_weights`` [B, classes]
(one-hot for a class, a blend for a morph), and one output [B, 1 or 3, H, W] with
values in [0, 1] (or [-1, 1] when ``config.output_range`` says so).

Manifest ``config``: ``z_dim``, ``classes`` (labels, optional), ``image_size`` [w, h],
``output_range`` ("0,1" or "-1,1"). Because the space is continuous, these packs can
``morph``: frames along the great circle between two seeds' latent vectors.
"""

from __future__ import annotations

import time
from typing import Any, Iterator

import numpy as np

from desktop.engines.config_limits import bounded_int
from desktop.engines.errors import EngineError, PackFormatError
from desktop.engines.events import Done, ImageResult, Step
from desktop.engines.image.pipelines import Capabilities, ImagePipeline, image_seeds, make_image_session, register_pipeline


@register_pipeline("latent-generator")
class LatentGeneratorPipeline(ImagePipeline):
    def __init__(self, pack, settings):
        super().__init__(pack, settings)
        cfg = pack.config
        self.session, self.provider = make_image_session(pack.file_with_role("generator"), settings)
        inputs = {i.name: i for i in self.session.get_inputs()}
        if "z" not in inputs:
            raise PackFormatError(f"The generator of '{pack.name}' has no 'z' input.")
        self.z_dim = bounded_int(cfg.get("z_dim") or inputs["z"].shape[1], "z_dim", pack.name)
        self.classes = [str(c) for c in _bounded_classes(cfg, pack.name)]
        self.conditioned = "class_weights" in inputs
        if self.conditioned and not self.classes:
            width = inputs["class_weights"].shape[1]
            self.classes = [f"class {i}" for i in range(bounded_int(width, "classes", pack.name, "the generator's class count"))] if isinstance(width, int) else []
        self.low = -1.0 if str(cfg.get("output_range", "0,1")) == "-1,1" else 0.0
        size = tuple(bounded_int(side, "image_size", pack.name) for side in _pair(cfg.get("image_size") or (28, 28), pack.name))
        self.capabilities = Capabilities(sizes=[size], classes=self.classes, morph=True)

    def _latent(self, seed: int) -> np.ndarray:
        return np.random.default_rng(seed).standard_normal(self.z_dim).astype(np.float32)

    def _class_weights(self, label: str | None, seed: int) -> np.ndarray:
        weights = np.zeros(len(self.classes), np.float32)
        # no class chosen: each seed picks one, so "any" is reproducible too
        index = self.classes.index(label) if label else int(np.random.default_rng([seed, 1]).integers(len(self.classes)))
        weights[index] = 1.0
        return weights

    def _render(self, z: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
        feeds = {"z": z[None].astype(np.float32)}
        if self.conditioned:
            feeds["class_weights"] = weights[None].astype(np.float32)
        try:
            out = self.session.run(None, feeds)[0][0].astype(np.float32)
        except Exception as exc:  # ORT raises plain RuntimeErrors
            raise EngineError(f"The generator failed ({str(exc).splitlines()[0][:200]}).") from None
        if self.low < 0:
            out = (out + 1.0) / 2.0
        if out.shape[0] == 1:
            out = np.repeat(out, 3, axis=0)
        return np.round(np.clip(out[:3].transpose(1, 2, 0), 0, 1) * 255).astype(np.uint8)

    def _label_of(self, weights: np.ndarray | None) -> str | None:
        return self.classes[int(np.argmax(weights))] if weights is not None else None

    def generate(self, request) -> Iterator[Any]:
        t0 = time.perf_counter()
        seeds = image_seeds(request)
        for i, seed in enumerate(seeds):
            weights = self._class_weights(request.class_label, seed) if self.conditioned else None
            image = self._render(self._latent(seed), weights)
            yield Step(i + 1, len(seeds), image)
            yield ImageResult(image, seed, self.metadata(request, seed, index=i, class_label=self._label_of(weights)))
        seconds = time.perf_counter() - t0
        yield Done(stats={"seconds": round(seconds, 4), "seconds_per_image": round(seconds / len(seeds), 4), "provider": self.provider.used})

    def morph(self, request, seed_a: int, seed_b: int, frames: int) -> Iterator[Any]:
        t0 = time.perf_counter()
        za, zb = self._latent(seed_a), self._latent(seed_b)
        weights = self._class_weights(request.class_label, seed_a) if self.conditioned else None
        for k in range(frames):
            t = k / (frames - 1)
            image = self._render(slerp(za, zb, t), weights)
            yield Step(k + 1, frames, image)
            meta = self.metadata(request, seed_a, class_label=self._label_of(weights), morph={"seed_a": seed_a, "seed_b": seed_b, "t": round(t, 4), "frame": k})
            yield ImageResult(image, seed_a, meta)
        yield Done(stats={"seconds": round(time.perf_counter() - t0, 4), "frames": frames, "provider": self.provider.used})

    def close(self) -> None:
        self.session = None


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation: keeps the norm a Gaussian latent expects along the path."""
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    cos = float(np.clip(np.dot(a, b) / max(na * nb, 1e-12), -1.0, 1.0))
    omega = np.arccos(cos)
    if omega < 1e-6:
        return ((1 - t) * a + t * b).astype(np.float32)
    return ((np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)).astype(np.float32)


def _bounded_classes(cfg: dict, pack_name: str) -> list:
    from desktop.engines.config_limits import bounded_len

    classes = cfg.get("classes") or []
    bounded_len(classes, "classes", pack_name)
    return list(classes)


def _pair(value, pack_name: str) -> tuple:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise PackFormatError(f"Pack '{pack_name}' declares image_size {str(value)[:40]}; expected [width, height].")
    return tuple(value)
