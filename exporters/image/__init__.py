"""Images: Stable Diffusion family pipelines from diffusers folders (``stable_diffusion/``)
and our own trained generators from recipe checkpoints (``ours/``). Importing the package
registers both families' configs."""

from __future__ import annotations

from pathlib import Path

from desktop.engines.image.checkpoint import CHECKPOINT_SUFFIXES

from ..errors import NotOurCheckpointError

from .ours import configs as _ours  # noqa: F401 - registers our generators' configs
from .stable_diffusion import checkpoint as _checkpoint  # noqa: F401 - registers the single-file config
from .stable_diffusion import configs as _sd  # noqa: F401 - registers the SD config
from .stable_diffusion import sdxl as _sdxl  # noqa: F401 - registers the SDXL configs (folder and checkpoint)
from .stable_diffusion.source import detect_image_architecture


def detect_architecture(location: str) -> str:
    """A diffusers pipeline folder (it has a model_index.json) names its class; a
    .safetensors (or, refused unless converted, pickle) file is a single-file checkpoint;
    anything else is read as a checkpoint written by one of our recipes."""
    path = Path(location).expanduser()
    if (path / "model_index.json").is_file():
        return detect_image_architecture(location)
    if path.is_file() and path.suffix.lower() == ".safetensors":
        return "stable-diffusion-checkpoint"  # the family is read from the file's header when it loads
    if path.is_file() and path.suffix.lower() in CHECKPOINT_SUFFIXES:
        try:
            return _ours.detect_architecture(location)  # our recipes' checkpoints load tensors-only
        except NotOurCheckpointError:
            return "stable-diffusion-checkpoint"  # refused there as a pickle unless --convert-pickle
    return _ours.detect_architecture(location)


__all__ = ["detect_architecture"]
