"""SSLLN (Duan et al., TMI 2019, Fig. 4): 2.5D simultaneous segmentation and landmark localisation.

The S slices of a short-axis stack are the input channels; every convolution is 2D. Five
blocks of 3x3 conv-BN-ReLU (16, 32, 64, 128, 256 filters; 2, 2, 3, 3, 3 convs; the first
conv of blocks 2-5 has stride 2). Each block's output goes through a 3x3 conv to 32 channels
and a learned transposed convolution back to full resolution; the five maps are
concatenated (160 channels), fused by two 3x3 convs (64), and two 1x1 heads give S x classes
segmentation logits and S x 7 landmark logits (background + six landmarks).
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import conv_bn_relu

FILTERS = (16, 32, 64, 128, 256)
DEPTHS = (2, 2, 3, 3, 3)
N_LANDMARK_CLASSES = 7


class SSLLN(nn.Module):
    """The SSLLN network.

    Parameters
    ----------
    n_slices : int
        S, the number of slices of the input contract (input channels).
    n_classes : int
        Segmentation classes including background (5 with the RV wall, 4 without).
    n_landmarks : int
        Landmark classes including background (7).
    width : int
        Channels of each multi-scale branch (32 in the paper).

    Input ``(N, S, Y, X)`` with Y and X multiples of 16; output ``(seg, lmk)`` logits of shapes
    ``(N, n_classes, S, Y, X)`` and ``(N, n_landmarks, S, Y, X)``.
    """

    def __init__(self, n_slices: int, n_classes: int = 5, n_landmarks: int = N_LANDMARK_CLASSES, width: int = 32):
        super().__init__()
        self.n_slices, self.n_classes, self.n_landmarks = int(n_slices), int(n_classes), int(n_landmarks)
        blocks, c_in = [], self.n_slices
        for i, (c, d) in enumerate(zip(FILTERS, DEPTHS)):
            layers = [conv_bn_relu(c_in, c, stride=1 if i == 0 else 2)]
            layers += [conv_bn_relu(c, c) for _ in range(d - 1)]
            blocks.append(nn.Sequential(*layers))
            c_in = c
        self.blocks = nn.ModuleList(blocks)
        self.branches = nn.ModuleList()
        for i, c in enumerate(FILTERS):
            f = 2**i
            up = nn.Identity() if f == 1 else nn.ConvTranspose2d(width, width, 2 * f, stride=f, padding=f // 2, bias=False)
            self.branches.append(nn.Sequential(conv_bn_relu(c, width), up))
        self.fuse = nn.Sequential(conv_bn_relu(width * len(FILTERS), 64), conv_bn_relu(64, 64))
        self.seg_head = nn.Conv2d(64, self.n_slices * self.n_classes, 1)
        self.lmk_head = nn.Conv2d(64, self.n_slices * self.n_landmarks, 1)

    def forward(self, x: torch.Tensor):
        n, s, h, w = x.shape
        if s != self.n_slices:
            raise ValueError(f"SSLLN expects {self.n_slices} slices, got {s}")
        if h % 16 or w % 16:
            raise ValueError(f"in-plane size must be a multiple of 16, got {h} x {w}")
        feats = []
        for block, branch in zip(self.blocks, self.branches):
            x = block(x)
            feats.append(branch(x))
        y = self.fuse(torch.cat(feats, dim=1))
        seg = self.seg_head(y).view(n, s, self.n_classes, h, w).transpose(1, 2)
        lmk = self.lmk_head(y).view(n, s, self.n_landmarks, h, w).transpose(1, 2)
        return seg, lmk
