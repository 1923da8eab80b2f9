"""Image pipelines: the runtime half of an image pack, one class per pack architecture.

The image engine (``desktop/engines/image/engine.py``) looks up ``pack.architecture`` here and
hands the pack to the registered class. Every ``*.py`` module in this package is imported
on first lookup, so adding an architecture means adding one module; nothing else changes.

CONTRACT - what a pipeline implements
=====================================
::

    @register_pipeline("my-arch", "my-arch-v2")      # pack.architecture values served
    class MyPipeline(ImagePipeline):
        def __init__(self, pack, settings):          # Pack, providers.RuntimeSettings
            self.pack = pack
            self.session, self.provider = make_image_session(pack.file_with_role("generator"), settings)  # no spinning threads
            self.capabilities = Capabilities(classes=("T-shirt", ...), sizes=((28, 28),), morph=True)

        def generate(self, request):                  # an ImageRequest, already prepared
            for i, seed in enumerate(image_seeds(request)):
                ...                                  # yield Step(index, total, preview) as work progresses
                yield ImageResult(pixels, seed, self.metadata(request, seed, index=i))
            yield Done(stats={"seconds": ..., "seconds_per_image": ...})

        def morph(self, request, seed_a, seed_b, frames):   # only when capabilities.morph
            ...                                      # yield one ImageResult per frame, then Done

        def close(self): ...                         # release sessions

What the engine guarantees before ``generate`` / ``morph`` is called
    * ``request`` passed ``validate()`` against this pipeline's capabilities: the size is
      allowed, a prompt is present when ``capabilities.prompt``, ``class_label`` is one
      of ``capabilities.classes`` (or None), img2img only when supported.
    * ``request.seed`` is an int (a random one was drawn if the user left it empty),
      ``request.width/height/steps/guidance/scheduler`` hold concrete values (pack defaults
      filled in), and ``request.init_image``, if any, is already HxWx3 uint8 at
      ``height`` x ``width``.
    * Memory was checked with ``estimate_memory(request)`` if the pipeline defines it.

What a pipeline must do
    * Image ``i`` of a batch uses seed ``request.seed + i`` (``image_seeds``), so any image
      is reproducible on its own with batch_count=1 and its seed.
    * Randomness only from ``numpy.random.default_rng(seed)`` (never global state): the
      same pack, settings and seed give the same pixels.
    * Yield often (at least once per denoising step or per generated row): the worker
      cancels between two events, so the gap between yields is the cancel latency.
      ``Step.preview`` is optional and must be cheap (no full decode per step).
    * Exactly one ``ImageResult`` per image, ``image`` HxWx3 uint8, ``metadata`` from
      ``self.metadata(...)`` (every setting + seed; the engine's PNG writer stores it).
    * Finish with ``Done(stats)``; raise typed errors from ``desktop.engines.errors``.

Capabilities (``image/capabilities.py``, a frozen dataclass; its fields say the
defaults): ``prompt``, ``negative_prompt``, ``guidance``, ``steps`` (does the step count
matter), ``img2img``, ``schedulers`` (names from ``desktop.engines.image.schedulers``,
first is the default), ``free_size`` (any multiple of ``size_multiple``) or ``sizes`` (the
allowed (w, h), the first is the default), ``default_size``, ``default_steps``,
``default_guidance``, ``classes`` (labels for class-conditioned packs), ``morph``
(latent walk between two seeds).
"""

from __future__ import annotations

from typing import Any, Iterator

from desktop.engines.errors import PackFormatError
from desktop.engines.image.capabilities import Capabilities
from desktop.engines.registry import ArchitectureRegistry

_REGISTRY = ArchitectureRegistry(__name__, __path__)
register_pipeline = _REGISTRY.register  # class decorator: serve packs of these architectures


def known_architectures() -> list[str]:
    return _REGISTRY.known()


def pipeline_class(architecture: str) -> type:
    cls = _REGISTRY.get(architecture)
    if cls is None:
        raise PackFormatError(
            f"This app cannot run image packs of architecture '{architecture}' "
            f"(it runs: {', '.join(known_architectures()) or 'none'}). Update Atelier or re-export the pack."
        )
    return cls


def make_image_session(path, settings):
    """An onnxruntime session for an image graph, with provider fallback. Its worker
    threads sleep between operators instead of spinning: on a desktop shared with other
    work, spinning threads steal the cores the next operator needs (measured: a UNet step
    took 1.5x as long with spinning while other programs were busy)."""
    import onnxruntime as ort

    from desktop.engines.providers import PROVIDERS, create_with_fallback, session_options

    opts = session_options(settings)
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")

    def factory(name: str):
        return ort.InferenceSession(str(path), sess_options=opts, providers=[PROVIDERS[name]])

    return create_with_fallback(factory, settings)


def image_seeds(request) -> list[int]:
    """The seed of each image of a batch: consecutive from the request's seed."""
    return [request.seed + i for i in range(request.batch_count)]


class ImagePipeline:
    """Optional base class with the shared helpers; the contract above is what counts."""

    architectures: tuple[str, ...] = ()
    capabilities: Capabilities = Capabilities()
    provider = None  # a providers.ProviderReport, set by __init__

    def __init__(self, pack, settings):
        self.pack = pack
        self.settings = settings

    def generate(self, request) -> Iterator[Any]:
        raise NotImplementedError

    def metadata(self, request, seed: int, **extra: Any) -> dict[str, Any]:
        """Every setting of this image (JSON-safe) plus what identifies the pack."""
        meta = request.settings_dict()
        meta.update(
            seed=seed,
            batch_count=1,  # this image alone is reproduced by batch_count=1 and its seed
            pack=self.pack.name,
            architecture=self.pack.architecture,
            precision=self.pack.precision,
            provider=getattr(self.provider, "used", ""),
        )
        meta.update(extra)
        return meta

    def close(self) -> None:
        pass
