"""Export diffusers attention as ONNX Runtime's fused ``MultiHeadAttention`` operator.

Traced scaled-dot-product attention becomes MatMul -> Softmax -> MatMul with transposes
around them; in an SD-shaped UNet those nodes take about 60% of a step on CPU (the
softmax over 1024x1024 scores per head is pure memory traffic). ONNX Runtime's
``com.microsoft.MultiHeadAttention`` does the same maths in one tiled kernel on CPU,
CUDA and DirectML. Its fusion pass does not recognise graphs traced with dynamic latent
sizes, so instead of pattern-matching afterwards we emit the operator directly: an
attention processor whose core is a torch.autograd.Function with an ONNX ``symbolic``.
In PyTorch it computes exactly what diffusers computes (so validation compares like with
like); in the exported graph it is one node.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

DOMAIN = "com.microsoft"


class _FusedAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, query, key, value, heads: int, scale: float):
        b, s, d = query.shape
        hd = d // heads

        def split(x):
            return x.view(b, -1, heads, hd).transpose(1, 2)

        out = F.scaled_dot_product_attention(split(query), split(key), split(value), scale=scale)
        return out.transpose(1, 2).reshape(b, s, d)

    @staticmethod
    def symbolic(g, query, key, value, heads, scale):
        out = g.op(f"{DOMAIN}::MultiHeadAttention", query, key, value, num_heads_i=int(heads), scale_f=float(scale))
        out.setType(query.type())
        return out


class FusedAttentionProcessor:
    """diffusers' attention for SD-family UNets (self and cross attention, no masks),
    written around one fused attention call."""

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, *args, **kwargs):
        if attention_mask is not None or attn.spatial_norm is not None or attn.norm_q is not None or attn.norm_k is not None:
            raise NotImplementedError("fused attention export covers SD-family attention only")
        residual = hidden_states
        spatial = hidden_states.ndim == 4
        if spatial:
            b, c, h, w = hidden_states.shape
            hidden_states = hidden_states.view(b, c, h * w).transpose(1, 2)
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        if encoder_hidden_states is not None and attn.norm_cross:
            context = attn.norm_encoder_hidden_states(context)
        query, key, value = attn.to_q(hidden_states), attn.to_k(context), attn.to_v(context)
        out = _FusedAttention.apply(query, key, value, attn.heads, attn.scale)
        out = attn.to_out[1](attn.to_out[0](out))
        if spatial:
            out = out.transpose(-1, -2).reshape(b, c, h, w)
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor


def supports_fusion(module) -> bool:
    """True when every attention block of ``module`` is the plain SD kind."""
    from diffusers.models.attention_processor import Attention

    blocks = [m for m in module.modules() if isinstance(m, Attention)]
    return bool(blocks) and all(m.spatial_norm is None and m.norm_q is None and m.norm_k is None for m in blocks)


@contextlib.contextmanager
def fused_attention(module):
    """Swap ``module``'s attention processors for the fused one while exporting."""
    original = module.attn_processors
    module.set_attn_processor(FusedAttentionProcessor())
    try:
        yield
    finally:
        module.set_attn_processor(original)
