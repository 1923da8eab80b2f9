"""The emoji diffusion model: a small text encoder and a text-conditioned UNet (PyTorch).

Kept deliberately plain so it exports to ONNX with stock operators:
* ``TextEncoder``: word embeddings + a 2-layer transformer without positions (a caption
  is a bag of words: "red apple" and "apple red" mean the same). Token 1 (<bos>) starts
  every caption; its output is the pooled caption vector; an empty prompt is <bos> alone,
  which is also the unconditional input for classifier-free guidance.
* ``UNet``: v-prediction on 32x32 RGB; the pooled caption joins the timestep embedding
  (FiLM in every residual block: global colour and category), and cross attention at the
  lower resolutions lets individual words steer shape.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

PAD, BOS = 0, 1


def attention(q, k, v, heads: int, bias=None):
    b, n, d = q.shape
    m = k.shape[1]
    q = q.reshape(b, n, heads, d // heads).transpose(1, 2)
    k = k.reshape(b, m, heads, d // heads).transpose(1, 2)
    v = v.reshape(b, m, heads, d // heads).transpose(1, 2)
    w = (q @ k.transpose(-1, -2)) * (d // heads) ** -0.5
    if bias is not None:
        w = w + bias[:, None, None, :]
    out = w.softmax(-1) @ v
    return out.transpose(1, 2).reshape(b, n, d)


class TextBlock(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x, bias):
        q, k, v = self.qkv(self.norm1(x)).chunk(3, -1)
        x = x + self.proj(attention(q, k, v, self.heads, bias))
        return x + self.mlp(self.norm2(x))


class TextEncoder(nn.Module):
    def __init__(self, vocab_size: int, dim: int = 128, layers: int = 2, heads: int = 4):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim)
        self.blocks = nn.ModuleList(TextBlock(dim, heads) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)

    def forward(self, input_ids):
        """ids [B, L] int64 -> hidden [B, L, D] (pooled caption = hidden[:, 0])."""
        bias = (input_ids == PAD).float() * -1e4
        x = self.embed(input_ids)
        for blk in self.blocks:
            x = blk(x, bias)
        return self.norm(x)


def timestep_embedding(t, dim: int):
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], -1)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, emb: int, groups: int = 8):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.film = nn.Linear(emb, 2 * cout)
        self.norm2 = nn.GroupNorm(groups, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, emb):
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.film(F.silu(emb))[:, :, None, None].chunk(2, 1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(F.silu(h))
        return h + self.skip(x)


class AttnBlock(nn.Module):
    """Self attention over pixels, then cross attention to the caption's words."""

    def __init__(self, ch: int, ctx_dim: int, heads: int = 4, groups: int = 8):
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(groups, ch)
        self.qkv = nn.Linear(ch, 3 * ch)
        self.proj = nn.Linear(ch, ch)
        self.norm_x = nn.LayerNorm(ch)
        self.q = nn.Linear(ch, ch)
        self.kv = nn.Linear(ctx_dim, 2 * ch)
        self.proj_x = nn.Linear(ch, ch)

    def forward(self, x, ctx, ctx_bias):
        b, c, h, w = x.shape
        t = self.norm(x).reshape(b, c, h * w).transpose(1, 2)
        q, k, v = self.qkv(t).chunk(3, -1)
        t = t + self.proj(attention(q, k, v, self.heads))
        k, v = self.kv(ctx).chunk(2, -1)
        t = t + self.proj_x(attention(self.q(self.norm_x(t)), k, v, self.heads, ctx_bias))
        return x + t.transpose(1, 2).reshape(b, c, h, w)


class UNet(nn.Module):
    def __init__(self, channels=(64, 128, 192), blocks=(1, 2, 2), attn=(False, True, True), ctx_dim: int = 128, emb: int = 256):
        super().__init__()
        self.emb_dim = emb
        self.time = nn.Sequential(nn.Linear(emb, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.caption = nn.Linear(ctx_dim, emb)
        self.stem = nn.Conv2d(3, channels[0], 3, padding=1)
        self.down = nn.ModuleList()
        skips = [channels[0]]
        ch = channels[0]
        for i, (c, n) in enumerate(zip(channels, blocks)):
            for _ in range(n):
                self.down.append(nn.ModuleList([ResBlock(ch, c, emb), AttnBlock(c, ctx_dim) if attn[i] else nn.Identity()]))
                ch = c
                skips.append(ch)
            if i < len(channels) - 1:
                self.down.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))
                skips.append(ch)
        self.mid1 = ResBlock(ch, ch, emb)
        self.mid_attn = AttnBlock(ch, ctx_dim)
        self.mid2 = ResBlock(ch, ch, emb)
        self.up = nn.ModuleList()
        for i in reversed(range(len(channels))):
            c = channels[i]
            for _ in range(blocks[i] + 1):
                self.up.append(nn.ModuleList([ResBlock(ch + skips.pop(), c, emb), AttnBlock(c, ctx_dim) if attn[i] else nn.Identity()]))
                ch = c
            if i > 0:
                self.up.append(nn.Sequential(nn.Upsample(scale_factor=2.0, mode="nearest"), nn.Conv2d(ch, ch, 3, padding=1)))
        self.out = nn.Sequential(nn.GroupNorm(8, ch), nn.SiLU(), nn.Conv2d(ch, 3, 3, padding=1))

    def forward(self, sample, timestep, encoder_hidden_states, encoder_attention_mask):
        """sample [B,3,32,32], timestep [B] (0..999), hidden [B,L,D], mask [B,L] (1 = word) -> v."""
        emb = self.time(timestep_embedding(timestep, self.emb_dim)) + self.caption(encoder_hidden_states[:, 0])
        bias = (1.0 - encoder_attention_mask) * -1e4
        h = self.stem(sample)
        hs = [h]
        for layer in self.down:
            if isinstance(layer, nn.ModuleList):
                h = layer[0](h, emb)
                h = layer[1](h, encoder_hidden_states, bias) if isinstance(layer[1], AttnBlock) else h
            else:
                h = layer(h)
            hs.append(h)
        h = self.mid2(self.mid_attn(self.mid1(h, emb), encoder_hidden_states, bias), emb)
        for layer in self.up:
            if isinstance(layer, nn.ModuleList):
                h = layer[0](torch.cat([h, hs.pop()], 1), emb)
                h = layer[1](h, encoder_hidden_states, bias) if isinstance(layer[1], AttnBlock) else h
            else:
                h = layer(h)
        return self.out(h)
