"""The slab network: a 2D U-Net trunk that reads a slab of neighbouring slices and segments
the centre one, with an optional landmark head (SSLLN's two heads on a slab contract).

Input ``(N, K, Y, X)``: K neighbouring short-axis slices (K odd; the centre is slice K // 2;
slices beyond the end of the stack are zero). Output: segmentation logits
``(N, n_classes, Y, X)`` of the centre slice and, with ``n_landmarks``, landmark logits
``(N, n_landmarks, Y, X)`` of the same slice. Y and X are multiples of ``2**depth``.

Sliding the slab over a stack segments any number of slices (see
:func:`napari_cardiac_priors.inference.segment`), which the whole-stack 2.5D SSLLN
(:mod:`.sslln`, all slices as channels) cannot.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import conv_bn_relu


class SlabNet(nn.Module):
    """U-Net trunk with ``depth`` poolings (widths ``base * 2**level``) and one or two 1x1 heads.

    Parameters
    ----------
    slab : int
        K, the number of input slices (1 = a plain 2D U-Net).
    n_classes : int
        Segmentation classes including background.
    n_landmarks : int
        Landmark-head classes including background (0: no landmark head).
    """

    def __init__(self, slab: int = 3, n_classes: int = 4, n_landmarks: int = 0, base: int = 16, depth: int = 4):
        super().__init__()
        if slab < 1 or slab % 2 == 0:
            raise ValueError(f"slab must be a positive odd number of slices, got {slab}")
        self.slab, self.n_classes, self.n_landmarks, self.depth = int(slab), int(n_classes), int(n_landmarks), int(depth)
        widths = [base * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList()
        c_in = self.slab
        for w in widths:
            self.down.append(nn.Sequential(conv_bn_relu(c_in, w), conv_bn_relu(w, w)))
            c_in = w
        self.up, self.dec = nn.ModuleList(), nn.ModuleList()
        for w_hi, w_lo in zip(widths[::-1][:-1], widths[::-1][1:]):
            self.up.append(nn.ConvTranspose2d(w_hi, w_lo, 2, stride=2))
            self.dec.append(nn.Sequential(conv_bn_relu(2 * w_lo, w_lo), conv_bn_relu(w_lo, w_lo)))
        self.pool = nn.MaxPool2d(2)
        self.seg_head = nn.Conv2d(widths[0], self.n_classes, 1)
        self.lmk_head = nn.Conv2d(widths[0], self.n_landmarks, 1) if self.n_landmarks else None

    def forward(self, x: torch.Tensor):
        n, k, h, w = x.shape
        if k != self.slab:
            raise ValueError(f"the slab network expects {self.slab} slices, got {k}")
        if h % 2**self.depth or w % 2**self.depth:
            raise ValueError(f"in-plane size must be a multiple of {2**self.depth}, got {h} x {w}")
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        for up, dec, skip in zip(self.up, self.dec, skips[::-1][1:]):
            x = dec(torch.cat([up(x), skip], dim=1))
        seg = self.seg_head(x)
        return (seg, self.lmk_head(x)) if self.lmk_head is not None else seg
