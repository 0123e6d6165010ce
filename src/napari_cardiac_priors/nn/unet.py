"""A plain 2D U-Net, the baseline of the SSLLN and SDNet comparisons.

It takes the same ``(N, S, Y, X)`` model-grid stacks as SSLLN but segments every slice on
its own (slices are folded into the batch; all-zero padding slices are skipped and come out
as background), returning ``(N, n_classes, S, Y, X)`` logits.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import conv_bn_relu


class UNet2D(nn.Module):
    """U-Net with ``depth`` poolings; widths ``base * 2**level``; Y and X multiples of ``2**depth``."""

    def __init__(self, n_slices: int, n_classes: int = 4, base: int = 16, depth: int = 4):
        super().__init__()
        self.n_slices, self.n_classes, self.depth = int(n_slices), int(n_classes), int(depth)
        widths = [base * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList()
        c_in = 1
        for w in widths:
            self.down.append(nn.Sequential(conv_bn_relu(c_in, w), conv_bn_relu(w, w)))
            c_in = w
        self.up, self.dec = nn.ModuleList(), nn.ModuleList()
        for w_hi, w_lo in zip(widths[::-1][:-1], widths[::-1][1:]):
            self.up.append(nn.ConvTranspose2d(w_hi, w_lo, 2, stride=2))
            self.dec.append(nn.Sequential(conv_bn_relu(2 * w_lo, w_lo), conv_bn_relu(w_lo, w_lo)))
        self.head = nn.Conv2d(widths[0], self.n_classes, 1)
        self.pool = nn.MaxPool2d(2)

    def forward_slices(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 1, Y, X)`` -> ``(B, n_classes, Y, X)`` logits."""
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        for up, dec, skip in zip(self.up, self.dec, skips[::-1][1:]):
            x = dec(torch.cat([up(x), skip], dim=1))
        return self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, s, h, w = x.shape
        if h % 2**self.depth or w % 2**self.depth:
            raise ValueError(f"in-plane size must be a multiple of {2**self.depth}, got {h} x {w}")
        flat = x.reshape(n * s, 1, h, w)
        used = flat.flatten(1).abs().amax(1) > 0
        out = flat.new_zeros(n * s, self.n_classes, h, w)
        out[:, 0] = 10.0  # padding slices: background
        if used.any():
            out[used] = self.forward_slices(flat[used]).to(out.dtype)
        return out.view(n, s, self.n_classes, h, w).transpose(1, 2)
