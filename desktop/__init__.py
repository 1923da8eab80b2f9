"""Atelier desktop app: a private generative studio that runs ONNX packs offline."""

__version__ = "0.1.0"
