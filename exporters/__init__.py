"""Atelier exporters: PyTorch / GGUF / Hugging Face models -> validated ONNX packs.

Mirrors optimum's design: a registry of small declarative per-architecture configs, and
one fixed pipeline (convert -> validate -> quantize -> re-validate -> manifest) that
every modality runs. Needs the ``export`` extra (torch, transformers...); the desktop
app never imports this package except to delegate ``python main.py export``.
"""
