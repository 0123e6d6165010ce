"""Shared convolution blocks. Tensors are ``(N, C, Y, X)``."""

from __future__ import annotations

import torch
from torch import nn


def conv_bn_relu(c_in: int, c_out: int, *, stride: int = 1) -> nn.Sequential:
    """3x3 convolution (no bias) -> batch norm -> ReLU; ``stride`` 2 halves Y and X."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


def unet_trunk(c_in: int, *, base: int, depth: int) -> tuple[nn.ModuleList, nn.ModuleList, nn.ModuleList]:
    """``(down, up, dec)`` of a U-Net with ``depth`` poolings and widths ``base * 2**level``:
    two conv-BN-ReLU per level, transposed-convolution upsampling and skip concatenation."""
    widths = [base * 2**i for i in range(depth + 1)]
    down = nn.ModuleList()
    for w in widths:
        down.append(nn.Sequential(conv_bn_relu(c_in, w), conv_bn_relu(w, w)))
        c_in = w
    up, dec = nn.ModuleList(), nn.ModuleList()
    for w_hi, w_lo in zip(widths[::-1][:-1], widths[::-1][1:]):
        up.append(nn.ConvTranspose2d(w_hi, w_lo, 2, stride=2))
        dec.append(nn.Sequential(conv_bn_relu(2 * w_lo, w_lo), conv_bn_relu(w_lo, w_lo)))
    return down, up, dec


def unet_features(x: torch.Tensor, down, up, dec, pool) -> torch.Tensor:
    """The full-resolution features ``(N, base, Y, X)`` of :func:`unet_trunk`'s modules on ``x``."""
    skips = []
    for i, block in enumerate(down):
        x = block(x if i == 0 else pool(x))
        skips.append(x)
    for u, d, skip in zip(up, dec, skips[::-1][1:]):
        x = d(torch.cat([u(x), skip], dim=1))
    return x
