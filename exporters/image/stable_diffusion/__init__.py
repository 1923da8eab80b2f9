"""Stable Diffusion family pipelines from diffusers folders: source loading with an
optional LoRA merged (``source``), one graph per component (``graph``, with ONNX
Runtime's fused attention from ``attention``), validation per component and end to end
(``validate``; an inpainting UNet repaints a rectangle instead, ``validate_inpaint``), and
the registered config (``configs``). Single-file checkpoints load through ``checkpoint``;
SDXL (base, Turbo, inpainting) adds its config (``sdxl``) and graphs (``sdxl_graph``)."""
