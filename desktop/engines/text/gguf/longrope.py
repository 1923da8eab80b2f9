"""LongRoPE (Phi-3/3.5 long-context files): two rotary tables, chosen by the sequence length.

The file carries per-frequency divisors ``rope_factors_short`` (used while the whole sequence
fits the original context) and ``rope_factors_long`` (once it is longer), and
llama.cpp's ``rope.scaling.attn_factor`` that scales cos and sin in both cases. Like
transformers (``longrope`` rotary: the factors follow the current total length) and the
genai builder, the graph builds both cos/sin caches and an ``If`` on the total length picks
one per call; keys already cached keep the rotation they were written with.
"""

from __future__ import annotations

import math

import numpy as np

from desktop.engines.text.gguf.quant import decode
from desktop.engines.text.gguf.reader import GGUFFile, GGUFFormatError

LONG, SHORT = "rope_factors_long.weight", "rope_factors_short.weight"


def has_longrope(gf: GGUFFile) -> bool:
    return LONG in gf.tensors or SHORT in gf.tensors


def longrope_settings(gf: GGUFFile, context: int, rope_dim: int) -> dict:
    """The original context, both factor vectors and the cos/sin scale, checked."""
    arch, name = gf.architecture, gf.path.name
    original = gf.get(f"{arch}.rope.scaling.original_context_length")
    if not (LONG in gf.tensors and SHORT in gf.tensors) or not isinstance(original, int) or not 0 < original <= context:
        raise GGUFFormatError(f"'{name}' has LongRoPE rope factors but not both of them and its original context length; it cannot be converted.")
    factors = {}
    for key in (LONG, SHORT):
        t = gf.tensors[key]
        if t.rows * t.cols != rope_dim // 2:
            raise GGUFFormatError(f"'{name}': '{key}' has {t.rows * t.cols} values, expected {rope_dim // 2}.")
        factors[key] = decode(t.kind, t.read(), 1, t.cols).reshape(-1).astype(np.float64)
        if not np.all(np.isfinite(factors[key])) or np.any(factors[key] <= 0):
            raise GGUFFormatError(f"'{name}': '{key}' holds non-positive or non-finite factors.")
    scale = gf.get(f"{arch}.rope.scaling.attn_factor")
    if not isinstance(scale, (int, float)) or isinstance(scale, bool):
        ratio = context / original  # transformers' default when the file does not say
        scale = math.sqrt(1 + math.log(ratio) / math.log(original)) if ratio > 1 else 1.0
    return {"original": original, "long": factors[LONG], "short": factors[SHORT], "scale": float(scale)}


def longrope_caches(w, total_len: str, rope_base: float, rope_dim: int, context: int, settings: dict) -> tuple[str, str]:
    """cos and sin cache names for GroupQueryAttention: the long tables when ``total_len``
    (int32 scalar) exceeds the original context, else the short ones (sized to it)."""
    from onnx import TensorProto, helper

    base = rope_base ** (np.arange(0, rope_dim, 2, dtype=np.float64) / rope_dim)
    names = {}
    for kind, rows in (("long", context), ("short", settings["original"])):
        angles = np.outer(np.arange(rows, dtype=np.float64), 1.0 / (settings[kind] * base))
        names[kind] = (
            w.constant(f"{kind}_cos_cache", (np.cos(angles) * settings["scale"]).astype(np.float32)),
            w.constant(f"{kind}_sin_cache", (np.sin(angles) * settings["scale"]).astype(np.float32)),
        )
    original = w.constant("/model/rotary/original_length", np.array(settings["original"], np.int32))
    longer = w.node("Greater", [total_len, original], name="/model/rotary/Longer")[0]

    def branch(kind: str):
        outs = [f"/model/rotary/{kind}/cos", f"/model/rotary/{kind}/sin"]
        nodes = [helper.make_node("Identity", [src], [dst], name=f"/model/rotary/{kind}/{i}") for i, (src, dst) in enumerate(zip(names[kind], outs))]
        return helper.make_graph(nodes, f"rotary_{kind}", [], [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs])

    return tuple(w.node("If", [longer], ["cos_cache", "sin_cache"], name="/model/rotary/If", then_branch=branch("long"), else_branch=branch("short")))
