"""A class-conditional gated PixelCNN (van den Oord et al. 2016) on 16 grey levels.

Causality comes from shifted convolutions rather than masked kernels, so the exported
graph is plain Conv/Pad/Slice ops:
* the vertical stack at row i sees only input rows above i (its first output is shifted
  down one row);
* the horizontal stack at (i, j) sees row i left of j (its first output is shifted right
  one column) plus the vertical stack at (i, j).

The output at row r therefore depends on rows r - ``receptive_rows()`` .. r only, which
the engine uses to run the graph on a 10-row crop instead of the whole image at each of
the 784 sampling steps (exact, not an approximation; tests/engines check it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

NUM_CLASSES = 10


def down_shift(x):
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1, :]


def right_shift(x):
    return F.pad(x, (1, 0, 0, 0))[:, :, :, :-1]


class DownConv(nn.Module):
    """Output (i, j) sees rows i-kh+1..i, columns j-(kw-1)/2..j+(kw-1)/2."""

    def __init__(self, cin: int, cout: int, kh: int, kw: int):
        super().__init__()
        self.kh, self.kw = kh, kw
        self.conv = nn.Conv2d(cin, cout, (kh, kw))

    def forward(self, x):
        return self.conv(F.pad(x, ((self.kw - 1) // 2, (self.kw - 1) // 2, self.kh - 1, 0)))


class DownRightConv(nn.Module):
    """Output (i, j) sees rows i-kh+1..i, columns j-kw+1..j."""

    def __init__(self, cin: int, cout: int, kh: int, kw: int):
        super().__init__()
        self.kh, self.kw = kh, kw
        self.conv = nn.Conv2d(cin, cout, (kh, kw))

    def forward(self, x):
        return self.conv(F.pad(x, (self.kw - 1, 0, self.kh - 1, 0)))


def gate(x, bias):
    a, b = (x + bias).chunk(2, 1)
    return torch.tanh(a) * torch.sigmoid(b)


class GatedLayer(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.v_conv = DownConv(ch, 2 * ch, 2, 3)
        self.h_conv = DownRightConv(ch, 2 * ch, 1, 2)
        self.v_to_h = nn.Conv2d(2 * ch, 2 * ch, 1)
        self.h_out = nn.Conv2d(ch, ch, 1)
        self.v_class = nn.Linear(NUM_CLASSES, 2 * ch, bias=False)
        self.h_class = nn.Linear(NUM_CLASSES, 2 * ch, bias=False)

    def forward(self, v, h, class_weights):
        v_pre = self.v_conv(v)
        v_new = gate(v_pre, self.v_class(class_weights)[:, :, None, None])
        h_new = gate(self.h_conv(h) + self.v_to_h(v_pre), self.h_class(class_weights)[:, :, None, None])
        return v_new, h + self.h_out(h_new)


class PixelCNN(nn.Module):
    def __init__(self, levels: int = 16, ch: int = 32, layers: int = 7, first_rows: int = 3):
        super().__init__()
        self.levels, self.ch, self.layers_n, self.first_rows = levels, ch, layers, first_rows
        self.v_in = DownConv(1, ch, first_rows, 5)
        self.h_in = DownRightConv(1, ch, 1, 3)
        self.layers = nn.ModuleList(GatedLayer(ch) for _ in range(layers))
        self.out = nn.Sequential(nn.ReLU(), nn.Conv2d(ch, 4 * ch, 1), nn.ReLU(), nn.Conv2d(4 * ch, levels, 1))

    def receptive_rows(self) -> int:
        """How many rows above r can influence the logits of row r: the shifted first
        vertical convolution reaches ``first_rows`` up and each gated layer's vertical
        convolution one more - the last layer's included, since its pre-gate output feeds
        the horizontal stack (v_to_h) even though its gated output feeds nothing."""
        return self.first_rows + self.layers_n

    def forward(self, pixels, class_weights):
        """pixels [B, 1, H, 28] as level / (levels - 1) in [0, 1] -> logits [B, levels, H, 28]."""
        x = pixels * 2 - 1
        v = down_shift(self.v_in(x))
        h = right_shift(self.h_in(x)) + v
        for layer in self.layers:
            v, h = layer(v, h, class_weights)
        return self.out(h)
