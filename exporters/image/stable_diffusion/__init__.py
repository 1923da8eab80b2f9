"""Stable Diffusion family pipelines from diffusers folders: source loading with an
optional LoRA merged (``source``), one graph per component (``graph``, with ONNX
Runtime's fused attention from ``attention``), validation per component and end to end
(``validate``), and the registered config (``configs``). Single-file checkpoints load
through ``checkpoint``; SDXL (base, Turbo, inpainting) adds its config (``sdxl``), graphs
(``sdxl_graph``) and inpainting check (``sdxl_inpaint``)."""
