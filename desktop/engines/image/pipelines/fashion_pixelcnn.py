"""Our Fashion-MNIST PixelCNN pack: an autoregressive model drawn pixel by pixel.

The pack's graph maps (pixels so far, class weights) to logits over 16 grey levels for
every pixel. Sampling visits the 784 pixels in raster order; at each one the graph runs on
the ``receptive_rows`` rows above it plus its own row - all that can influence it, since
the network only looks up and left, so the crop is exact - and the pixel's level is drawn
from its softmax. The images of a batch are drawn together, each from its own seeded RNG,
and a Step with the canvas so far is yielded after every row (28 cancel points).

(Our GAN and VAE packs are served by the generic ``latent-generator`` pipeline.)
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Iterator

import numpy as np

from desktop.engines.config_limits import bounded_len, config_int
from desktop.engines.errors import EngineError, PackFormatError
from desktop.engines.events import Done, ImageResult, Step
from desktop.engines.image.pipelines import Capabilities, ImagePipeline, image_seeds, make_image_session, register_pipeline


@register_pipeline("fashion-pixelcnn")
class PixelCNNPipeline(ImagePipeline):
    def __init__(self, pack, settings):
        super().__init__(pack, settings)
        cfg = pack.config
        classes = cfg.get("classes") or []
        bounded_len(classes, "classes", pack.name)
        self.classes = [str(c) for c in classes]
        if not self.classes:
            raise PackFormatError(f"Pack '{pack.name}' lists no classes in its config.")
        self.native = config_int(cfg, "sample_size", 28, pack.name)
        self.levels = config_int(cfg, "levels", 16, pack.name)
        self.receptive_rows = config_int(cfg, "receptive_rows", self.native, pack.name)
        self.session, self.provider = make_image_session(pack.file_with_role("step_model"), settings)
        self.capabilities = Capabilities(classes=list(self.classes), sizes=[(self.native, self.native)])

    def one_hot(self, index: int) -> np.ndarray:
        w = np.zeros(len(self.classes), dtype=np.float32)
        w[index] = 1.0
        return w

    def class_for(self, label: str | None, rng: np.random.Generator) -> int:
        """The chosen class, or one drawn from the image's RNG (drawn first, always, so a
        seed's pixels do not depend on whether a class was chosen)."""
        drawn = int(rng.integers(len(self.classes)))
        return self.classes.index(label) if label else drawn

    def logits(self, pixels: np.ndarray, weights: np.ndarray) -> np.ndarray:
        try:
            return self.session.run(None, {"pixels": pixels.astype(np.float32), "class_weights": weights.astype(np.float32)})[0]
        except Exception as exc:  # ORT raises plain RuntimeErrors
            raise EngineError(f"The PixelCNN failed while drawing ({str(exc).strip().splitlines()[0][:200]}).") from None

    def sample(self, rngs: list[np.random.Generator], weights: np.ndarray, logits_fn: Callable | None = None, temperature: float = 1.0) -> Iterator[tuple[int, np.ndarray]]:
        """Draw len(rngs) images; yields (row, canvas [B, 28, 28] in [0, 1]) after each row.
        ``logits_fn`` defaults to the pack's graph (validation passes PyTorch's)."""
        logits_fn = logits_fn or self.logits
        size = self.native
        canvas = np.zeros((len(rngs), 1, size, size), dtype=np.float32)
        for r in range(size):
            top = max(0, r - self.receptive_rows)
            for c in range(size):
                out = logits_fn(canvas[:, :, top : r + 1], weights)[:, :, -1, c].astype(np.float64) / temperature
                p = np.exp(out - out.max(1, keepdims=True))
                cdf = np.cumsum(p / p.sum(1, keepdims=True), axis=1)
                u = np.array([rng.random() for rng in rngs])
                level = np.minimum((cdf < u[:, None]).sum(1), self.levels - 1)
                canvas[:, 0, r, c] = level / (self.levels - 1)
            yield r, canvas[:, 0]

    def generate(self, request) -> Iterator[Any]:
        t0 = time.perf_counter()
        seeds = image_seeds(request)
        rngs = [np.random.default_rng(s) for s in seeds]
        labels = [self.class_for(request.class_label, rng) for rng in rngs]
        weights = np.stack([self.one_hot(k) for k in labels])
        temperature = _temperature(request.extra)
        canvas = np.zeros((len(seeds), self.native, self.native), dtype=np.float32)
        for row, canvas in self.sample(rngs, weights, temperature=temperature):
            yield Step(row + 1, self.native, to_rgb(canvas[0]))
        for n, seed in enumerate(seeds):
            meta = self.metadata(request, seed, index=n, class_label=self.classes[labels[n]], temperature=temperature)
            yield ImageResult(to_rgb(canvas[n]), seed, meta)
        seconds = time.perf_counter() - t0
        yield Done(stats={"seconds": round(seconds, 3), "seconds_per_image": round(seconds / len(seeds), 3), "graph_calls": self.native**2, "provider": self.provider.used})

    def close(self) -> None:
        self.session = None


def _temperature(extra: dict) -> float:
    """Optional ``extra["temperature"]``: below 1 draws safer, smoother garments."""
    value = extra.get("temperature", 1.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return 1.0
    return float(min(max(value, 0.05), 5.0))


def to_rgb(pixels: np.ndarray) -> np.ndarray:
    grey = np.round(np.clip(pixels, 0, 1) * 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)
