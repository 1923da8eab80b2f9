"""What an image pack can do, as one typed value that travels engine -> form -> request
-> engine: the pipeline sets it, the Image studio shapes its form by it, and
``ImageRequest.validate`` checks a request against it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Capabilities:
    prompt: bool = False  # text-conditioned: a prompt is required
    negative_prompt: bool = False
    prompt_2: bool = False  # a second text encoder that can read its own prompt (SDXL)
    guidance: bool = False  # the guidance scale matters
    steps: bool = False  # the step count matters
    img2img: bool = False  # can start from an init image
    schedulers: tuple[str, ...] = ()  # names from image/schedulers.py; the first is the default
    free_size: bool = False  # any multiple of size_multiple, else one of sizes
    size_multiple: int = 8
    sizes: tuple[tuple[int, int], ...] = ()  # allowed (w, h) when not free_size; the first is the default
    default_size: tuple[int, int] | None = None  # None: sizes[0], or 512x512
    default_steps: int = 1
    default_guidance: float = 1.0
    classes: tuple[str, ...] = ()  # labels of a class-conditioned pack
    morph: bool = False  # latent walk between two seeds

    def __post_init__(self) -> None:
        # Accept lists from pipelines and manifests; store tuples so the value is hashable
        # and no caller can change what the pack can do by mutating it.
        set_ = object.__setattr__
        set_(self, "schedulers", tuple(self.schedulers))
        set_(self, "classes", tuple(self.classes))
        sizes = tuple((int(w), int(h)) for w, h in self.sizes)
        default = tuple(self.default_size) if self.default_size is not None else (sizes[0] if sizes else (512, 512))
        if not self.free_size and not sizes:
            sizes = (default,)
        set_(self, "sizes", sizes)
        set_(self, "default_size", default)
