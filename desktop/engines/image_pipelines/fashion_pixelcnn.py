"""Our Fashion-MNIST PixelCNN pack: an autoregressive model drawn pixel by pixel.

The pack's graph maps (pixels so far, class) to logits over 16 grey levels for every
pixel. Sampling visits the 784 pixels in raster order; at each one the graph runs on the
``receptive_rows`` rows that can influence it (exact, because the network only looks up
and left), and the pixel's level is drawn from its softmax. All images of a batch are
drawn together, each from its own seeded RNG, and a Step with the canvas so far is
yielded after every row (28 cancel points per batch).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterator

import numpy as np

from ..events import Done, ImageResult, Step
from . import capabilities, image_seeds, register_pipeline
from .fashion_latent import ClassConditioned, grey_to_rgb, native_sizes


@register_pipeline("fashion-pixelcnn")
class PixelCNNPipeline(ClassConditioned):
    def __init__(self, pack, settings):
        super().__init__(pack, settings)
        self._setup(pack, "step_model")
        cfg = pack.config
        self.levels = int(cfg.get("levels", 16))
        self.receptive_rows = int(cfg.get("receptive_rows", self.native))
        self.capabilities = capabilities(classes=list(self.classes), sizes=native_sizes(self.native))

    def logits(self, pixels: np.ndarray, weights: np.ndarray) -> np.ndarray:
        return self._run({"pixels": pixels.astype(np.float32), "class_weights": weights.astype(np.float32)})

    def sample(self, rngs: list[np.random.Generator], weights: np.ndarray, logits_fn: Callable | None = None, temperature: float = 1.0) -> Iterator[tuple[int, np.ndarray]]:
        """Draw len(rngs) images; yields (row, canvas [B, 28, 28] in [0, 1]) after each row.
        ``logits_fn`` defaults to the pack's graph (validation passes PyTorch's)."""
        logits_fn = logits_fn or self.logits
        n, size = len(rngs), self.native
        canvas = np.zeros((n, 1, size, size), dtype=np.float32)
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
        labels = [self.class_for(request, rng) for rng in rngs]
        weights = np.stack([self.one_hot(k) for k in labels])
        temperature = float(request.extra.get("temperature", 1.0)) if isinstance(request.extra.get("temperature", 1.0), (int, float)) else 1.0
        temperature = min(max(temperature, 0.05), 5.0)
        canvas = None
        for row, canvas in self.sample(rngs, weights, temperature=temperature):
            yield Step(row + 1, self.native, grey_to_rgb(canvas[0], request.width, request.height))
        for n, seed in enumerate(seeds):
            image = grey_to_rgb(canvas[n], request.width, request.height)
            yield ImageResult(image, seed, self.metadata(request, seed, index=n, drawn_class=self.classes[labels[n]], temperature=temperature))
        seconds = time.perf_counter() - t0
        yield Done(stats={"seconds": round(seconds, 3), "seconds_per_image": round(seconds / len(seeds), 3), "graph_calls": self.native**2, "provider": self.provider.used})
