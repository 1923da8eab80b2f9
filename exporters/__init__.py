"""Atelier exporters: PyTorch / GGUF / Hugging Face models -> validated ONNX packs.

Mirrors optimum's design: a registry of small declarative per-architecture configs
(one package per modality: ``text/``, ``speech/``, ``image/``), and one fixed pipeline
(convert -> validate -> quantize -> re-validate -> manifest) that every modality runs.
Call it as a library::

    import exporters
    pack = exporters.export("text", "model.gguf", "out/pack", "int4", name="my-model")

Needs the ``export`` extra (torch, transformers...); the desktop app never imports this
package except in its ``export`` command.
"""

from .api import export, export_events, open_config
from .registry import MODALITIES, supported

__all__ = ["MODALITIES", "export", "export_events", "open_config", "supported"]
