"""The ACNN segmentation / super-resolution network (Oktay et al., Fig. 2).

Features are extracted on the LR grid (3D convs, in-plane strides only, as the stack has few
thick slices); each scale is brought back to the full in-plane size and ``factor`` times the
slice count by learned transposed convolutions, concatenated, and mapped to the output: class
logits (segmentation) or one intensity channel (super-resolution, added to the linearly
upsampled input so the network learns the residual).

Input ``(N, 1, Z, Y, X)`` on the LR grid; output ``(N, C, factor * Z, Y, X)`` on the HR grid
whose slice ``factor * k + j`` lies at ``(j - (factor - 1) / 2) / factor`` LR slice spacings
from LR slice ``k`` (see :func:`napari_cardiac_priors.contract.hr_affine`). Y and X must be
divisible by ``2 ** (len(widths) - 1)``.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import Conv3d


def _block(c_in, c_out, stride=(1, 1, 1)):
    return nn.Sequential(
        Conv3d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm3d(c_out), nn.ReLU(inplace=True),
        Conv3d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm3d(c_out), nn.ReLU(inplace=True),
    )


class ACNN3D(nn.Module):
    """LR stack -> HR labels (``task="segmentation"``) or HR intensities (``task="super-resolution"``)."""

    def __init__(self, n_classes: int = 4, factor: int = 5, widths=(16, 32, 64, 64), up_channels: int = 16,
                 task: str = "segmentation", head_channels: int = 32):
        super().__init__()
        if task not in ("segmentation", "super-resolution"):
            raise ValueError(f"unknown task {task!r}")
        self.task, self.factor, self.n_levels = task, int(factor), len(widths)
        self.levels = nn.ModuleList()
        self.ups = nn.ModuleList()
        c = 1
        for i, w in enumerate(widths):
            self.levels.append(_block(c, w, (1, 1, 1) if i == 0 else (1, 2, 2)))
            s = 2 ** i
            self.ups.append(nn.Sequential(
                nn.ConvTranspose3d(w, up_channels, (self.factor, s, s), stride=(self.factor, s, s), bias=False),
                nn.BatchNorm3d(up_channels), nn.ReLU(inplace=True)))
            c = w
        out = n_classes if task == "segmentation" else 1
        self.head = nn.Sequential(
            Conv3d(up_channels * len(widths), head_channels, 3, padding=1, bias=False), nn.BatchNorm3d(head_channels),
            nn.ReLU(inplace=True), Conv3d(head_channels, out, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = 2 ** (self.n_levels - 1)
        if x.shape[-1] % f or x.shape[-2] % f:
            raise ValueError(f"in-plane size {tuple(x.shape[-2:])} must be divisible by {f}")
        feats, h = [], x
        for level, up in zip(self.levels, self.ups):
            h = level(h)
            feats.append(up(h))
        out = self.head(torch.cat(feats, 1))
        if self.task == "super-resolution":
            base = torch.nn.functional.interpolate(x, size=out.shape[2:], mode="trilinear", align_corners=False)
            out = out + base
        return out
