"""Image engine: one request type, one engine, a pipeline per pack architecture.

The engine owns everything that is the same for every image pack - checking a request
against what the pack can do, filling the pack's defaults, drawing a seed, resizing an
init image, refusing sizes that will not fit in memory - and hands the prepared request
to the pipeline registered for ``pack.architecture`` (see ``image_pipelines``).
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
from dataclasses import dataclass, field, replace
from typing import Any, Iterator

import numpy as np

from desktop.engines.base import register_engine
from desktop.engines.errors import PackFormatError, RequestError
from desktop.engines.image.capabilities import Capabilities
from desktop.engines.image.pipelines import pipeline_class
from desktop.engines.memory import available_memory_bytes
from desktop.engines.packs.pack import Pack
from desktop.engines.providers import RuntimeSettings
from desktop.engines.validate_once import ValidatedOnce

MAX_PROMPT_CHARS = 2000  # CLIP-style encoders read ~77 tokens; far beyond that is a paste accident
MAX_SIDE = 16384
MAX_STEPS = 1000
MAX_BATCH = 64
MAX_SEED = 2**63 - 1
# Generic working-set model when a pipeline gives no estimate: a VAE-style decoder holds
# about three 128-channel float32 maps at full resolution.
_GENERIC_BYTES_PER_PIXEL = 128 * 4 * 3


@dataclass
class ImageRequest(ValidatedOnce):
    prompt: str = ""
    negative_prompt: str = ""
    # SDXL's second text encoder reads these; empty: it reads prompt / negative_prompt (as diffusers)
    prompt_2: str = ""
    negative_prompt_2: str = ""
    width: int | None = None  # None: the pack's default size
    height: int | None = None
    steps: int | None = None  # None: the pack's default
    guidance: float | None = None  # None: the pack's default
    scheduler: str = ""  # "" : the pack's default scheduler
    seed: int | None = None  # None: random (the result carries the seed used)
    batch_count: int = 1
    init_image: np.ndarray | None = field(default=None, repr=False)  # HxWx3 uint8 for img2img
    strength: float = 0.75  # img2img: 1 repaints everything, small keeps the init image
    mask: np.ndarray | None = field(default=None, repr=False)  # inpainting: HxW over init_image, 1 = repaint
    class_label: str | None = None  # class-conditioned packs
    extra: dict[str, Any] = field(default_factory=dict)  # pipeline-specific, JSON-safe
    # What the pack can do; set by the engine (or the UI from engine.capabilities) so that
    # validate() can check pack-specific rules. None: generic rules only.
    capabilities: Capabilities | None = field(default=None, repr=False, compare=False)

    def check(self) -> None:
        """The request's own rules, and the pack's when ``capabilities`` is set. Memory is
        checked here only roughly and only without a pack (before a command loads one);
        the engine checks it once with the pipeline's estimate."""
        caps = self.capabilities
        texts = (("prompt", self.prompt), ("negative prompt", self.negative_prompt), ("second prompt", self.prompt_2), ("second negative prompt", self.negative_prompt_2))
        if not all(isinstance(text, str) for _, text in texts):
            raise RequestError("The prompt must be text.")
        for label, text in texts:
            if len(text) > MAX_PROMPT_CHARS:
                raise RequestError(
                    f"The {label} is {len(text):,} characters; the limit is {MAX_PROMPT_CHARS:,} "
                    "(the model reads only about the first 75 words). Shorten it."
                )
        if caps is None:
            self._validate_size(None)  # with the pack's capabilities, check_against checks the size
        if self.steps is not None:
            if isinstance(self.steps, bool) or not isinstance(self.steps, int) or not 1 <= self.steps <= MAX_STEPS:
                raise RequestError(f"Steps must be a whole number from 1 to {MAX_STEPS}.")
        if self.guidance is not None:
            if not isinstance(self.guidance, (int, float)) or not math.isfinite(self.guidance):
                raise RequestError("Guidance must be a finite number (for example 7.5).")
            if not 0 <= self.guidance <= 100:
                raise RequestError("Guidance must be between 0 and 100.")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed <= MAX_SEED):
            raise RequestError("Seed must be a whole number of zero or more (leave it empty for a random one).")
        if isinstance(self.batch_count, bool) or not isinstance(self.batch_count, int) or not 1 <= self.batch_count <= MAX_BATCH:
            raise RequestError(f"Batch count must be from 1 to {MAX_BATCH}.")
        if not isinstance(self.strength, (int, float)) or not math.isfinite(self.strength) or not 0 < self.strength <= 1:
            raise RequestError("Strength must be greater than 0 and at most 1.")
        if self.init_image is not None:
            img = self.init_image
            if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3 or min(img.shape[:2]) < 1:
                raise RequestError("The starting image must be an RGB picture.")
        if self.mask is not None:
            from desktop.engines.image.inpaint import validate_mask

            validate_mask(self.mask, self.init_image)
        self._validate_extra()
        if caps:
            self.check_against(caps)
        else:  # no pack known yet (a command before loading one): refuse the hopeless early
            check_memory(self.generic_memory_bytes(), self.width, self.height)

    def _validate_size(self, caps: Capabilities | None) -> None:
        for label, side in (("Width", self.width), ("Height", self.height)):
            if side is None:
                continue
            if isinstance(side, bool) or not isinstance(side, int) or not 1 <= side <= MAX_SIDE:
                raise RequestError(f"{label} must be a whole number of pixels from 8 to {MAX_SIDE}.")
        if self.width is None or self.height is None:
            return
        if caps is None or caps.free_size:
            multiple = caps.size_multiple if caps else 8
            if self.width % multiple or self.height % multiple or self.width < multiple or self.height < multiple:
                raise RequestError(
                    f"Width and height must be multiples of {multiple} (got {self.width}×{self.height}); "
                    f"try {_round_to(self.width, multiple)}×{_round_to(self.height, multiple)}."
                )
        elif (self.width, self.height) not in caps.sizes:
            allowed = ", ".join(f"{w}×{h}" for w, h in caps.sizes)
            raise RequestError(f"This model makes images of {allowed} only (asked for {self.width}×{self.height}).")

    def _validate_extra(self) -> None:
        if not isinstance(self.extra, dict):
            raise RequestError("Extra settings must be a set of named values.")
        try:
            json.dumps(self.extra)
        except (TypeError, ValueError):
            raise RequestError("Extra settings must be plain numbers, text or lists.") from None

    def check_against(self, caps: Capabilities) -> None:
        """The pack's rules: a prompt where one is needed, an allowed size, scheduler and class."""
        if caps.prompt and not self.prompt.strip():
            raise RequestError("Type a prompt first: it describes the picture to make.")
        self._validate_size(caps)
        if (self.prompt_2.strip() or self.negative_prompt_2.strip()) and not caps.prompt_2:
            raise RequestError("This model has no second text encoder: a second prompt is for SDXL models (leave it empty).")
        if self.init_image is not None and not caps.img2img:
            raise RequestError("This model cannot start from an image (no img2img); remove the starting image.")
        if self.scheduler and caps.schedulers and self.scheduler not in caps.schedulers:
            raise RequestError(f"Unknown scheduler '{self.scheduler}'. This model offers: {', '.join(caps.schedulers)}.")
        if self.class_label is not None and self.class_label != "":
            if not caps.classes:
                raise RequestError("This model has no classes to choose from; leave the class empty.")
            if self.class_label not in caps.classes:
                raise RequestError(f"Unknown class '{self.class_label}'. Choose one of: {', '.join(caps.classes)}.")

    def generic_memory_bytes(self) -> int:
        if self.width is None or self.height is None:
            return 0
        return self.width * self.height * _GENERIC_BYTES_PER_PIXEL

    def settings_dict(self) -> dict[str, Any]:
        """Every setting as JSON-safe data (for metadata); the init image by its hash."""
        out = {
            "prompt": self.prompt,
            "negative_prompt": self.negative_prompt,
            "width": self.width,
            "height": self.height,
            "steps": self.steps,
            "guidance": self.guidance,
            "scheduler": self.scheduler,
            "seed": self.seed,
            "batch_count": self.batch_count,
            "class_label": self.class_label,
            "extra": dict(self.extra),
        }
        # recorded only when given, so a file says what the person wrote (and SD 1.x records stay as they were)
        for key in ("prompt_2", "negative_prompt_2"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        if self.init_image is not None:
            out["strength"] = self.strength
            out["init_image_sha256"] = hashlib.sha256(np.ascontiguousarray(self.init_image).tobytes()).hexdigest()
        if self.mask is not None:
            out["mask_sha256"] = hashlib.sha256(np.ascontiguousarray(self.mask).tobytes()).hexdigest()
        return out


def _round_to(value: int, multiple: int) -> int:
    return max(multiple, int(round(value / multiple)) * multiple)


def check_memory(need: int, width: int | None, height: int | None) -> None:
    have = available_memory_bytes()
    if need and have and need > have:
        # A RequestError (not ResourceError) so every caller refuses it before starting,
        # like any other request it cannot run.
        raise RequestError(
            f"{width}×{height} would need about {_gib(need)} of memory, and {_gib(have)} is available. "
            "Choose a smaller size (the model's default size is a safe start)."
        )


def _gib(n: int) -> str:
    return f"{n / 2**30:,.1f} GB"


class ImageEngine:
    def __init__(self, pack: Pack, settings: RuntimeSettings | None = None):
        if pack.modality != "image":
            raise PackFormatError(f"'{pack.name}' is a {pack.modality} pack, not an image model.")
        self.pack = pack
        self.pipeline = pipeline_class(pack.architecture)(pack, settings or RuntimeSettings.from_env())
        self.provider = self.pipeline.provider
        self.capabilities = self.pipeline.capabilities

    def prepare(self, request: ImageRequest) -> ImageRequest:
        """A copy of ``request`` with the pack's defaults, a seed and a fitted init image,
        validated against the pack; raises RequestError/ResourceError before any work.

        Each check runs once: a request the caller already checked is not checked again
        (only against the pack's rules when it was checked without them), the pack's
        defaults need no checking, and memory is estimated here with the pipeline's
        estimate."""
        caps = self.capabilities
        w, h = caps.default_size
        req = replace(
            request,
            width=request.width if request.width is not None else w,
            height=request.height if request.height is not None else h,
            steps=request.steps if request.steps is not None else caps.default_steps,
            guidance=float(request.guidance) if request.guidance is not None else float(caps.default_guidance),
            scheduler=request.scheduler or (caps.schedulers[0] if caps.schedulers else ""),
            class_label=request.class_label or None,
            extra=dict(request.extra),
            capabilities=caps,
        )
        if not request.validated:
            req.validate()  # nobody checked it: all of its rules, the pack's included
        elif request.capabilities != caps:
            req.check_against(caps)  # checked without the pack (a command, the server): the pack's rules now
        if req.seed is None:
            req.seed = secrets.randbits(32)
        if getattr(self.pipeline, "inpainting_unet", False) and req.mask is None:
            raise RequestError(f"'{self.pack.name}' is an inpainting model: give it a starting image and a mask (white = repaint).")
        if req.mask is not None:
            from desktop.engines.image.inpaint import fit_mask, resize_mask

            if not getattr(self.pipeline, "inpaints", False):
                raise RequestError(f"'{self.pack.name}' cannot repaint part of a picture; choose a Stable Diffusion model for a mask.")

            if req.mask.shape != req.init_image.shape[:2]:  # callers say so; here it only has to line up
                req.mask = resize_mask(req.mask, req.init_image.shape[1], req.init_image.shape[0])
            req.mask = fit_mask(req.mask, req.width, req.height)
        if req.init_image is not None and req.init_image.shape[:2] != (req.height, req.width):
            req.init_image = fit_image(req.init_image, req.width, req.height)
        estimate = getattr(self.pipeline, "estimate_memory", None)
        check_memory(int(estimate(req)) if callable(estimate) else req.generic_memory_bytes(), req.width, req.height)
        req.mark_validated()
        return req

    def generate(self, request: ImageRequest) -> Iterator[Any]:
        yield from self.pipeline.generate(self.prepare(request))

    def morph(self, request: ImageRequest, seed_a: int, seed_b: int, frames: int) -> Iterator[Any]:
        """Frames walking the latent space from seed_a to seed_b (packs with ``morph``)."""
        if not self.capabilities.morph:
            raise RequestError("This model cannot morph between seeds; pick a GAN or VAE model.")
        if isinstance(frames, bool) or not isinstance(frames, int) or not 2 <= frames <= 240:
            raise RequestError("A morph needs from 2 to 240 frames.")
        for s in (seed_a, seed_b):
            if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= MAX_SEED:
                raise RequestError("Morph seeds must be whole numbers of zero or more.")
        yield from self.pipeline.morph(self.prepare(replace(request, seed=seed_a, batch_count=1)), seed_a, seed_b, frames)

    def close(self) -> None:
        self.pipeline.close()


def fit_image(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale and centre-crop an RGB array to exactly width x height."""
    from PIL import Image

    src = Image.fromarray(image)
    scale = max(width / src.width, height / src.height)
    size = (max(width, round(src.width * scale)), max(height, round(src.height * scale)))
    src = src.resize(size, Image.Resampling.LANCZOS)
    left, top = (size[0] - width) // 2, (size[1] - height) // 2
    return np.asarray(src.crop((left, top, left + width, top + height)).convert("RGB"), dtype=np.uint8)


@register_engine("image")
def _open(pack: Pack, settings: RuntimeSettings) -> ImageEngine:
    return ImageEngine(pack, settings)
