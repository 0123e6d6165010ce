"""A plain 2D U-Net, the baseline of the SSLLN and SDNet comparisons.

It takes the same ``(N, S, Y, X)`` model-grid stacks as SSLLN but segments every slice on
its own (slices are folded into the batch; all-zero padding slices are skipped and come out
as background), returning ``(N, n_classes, S, Y, X)`` logits.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import unet_features, unet_trunk


class UNet2D(nn.Module):
    """U-Net with ``depth`` poolings; widths ``base * 2**level``; Y and X multiples of ``2**depth``."""

    def __init__(self, n_slices: int, n_classes: int = 4, base: int = 16, depth: int = 4):
        super().__init__()
        self.n_slices, self.n_classes, self.depth = int(n_slices), int(n_classes), int(depth)
        self.down, self.up, self.dec = unet_trunk(1, base=base, depth=depth)
        self.head = nn.Conv2d(base, self.n_classes, 1)
        self.pool = nn.MaxPool2d(2)

    def forward_slices(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 1, Y, X)`` -> ``(B, n_classes, Y, X)`` logits."""
        x = unet_features(x, self.down, self.up, self.dec, self.pool)
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
