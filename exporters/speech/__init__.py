"""Voices: source loading (``source``: Hugging Face VitsModel folders, Piper checkpoints),
graph building (``graph``, ``configs``) and validation (``validate``). Importing the
package registers its configs."""

from . import configs  # noqa: F401 - registers the speech configs
from .source import detect_architecture

__all__ = ["detect_architecture"]
