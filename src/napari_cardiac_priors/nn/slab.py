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

from .blocks import unet_features, unet_trunk


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
        self.down, self.up, self.dec = unet_trunk(self.slab, base=base, depth=depth)
        self.pool = nn.MaxPool2d(2)
        self.seg_head = nn.Conv2d(base, self.n_classes, 1)
        self.lmk_head = nn.Conv2d(base, self.n_landmarks, 1) if self.n_landmarks else None

    def forward(self, x: torch.Tensor):
        n, k, h, w = x.shape
        if k != self.slab:
            raise ValueError(f"the slab network expects {self.slab} slices, got {k}")
        if h % 2**self.depth or w % 2**self.depth:
            raise ValueError(f"in-plane size must be a multiple of {2**self.depth}, got {h} x {w}")
        x = unet_features(x, self.down, self.up, self.dec, self.pool)
        seg = self.seg_head(x)
        return (seg, self.lmk_head(x)) if self.lmk_head is not None else seg
