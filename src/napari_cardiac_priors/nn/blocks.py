"""Shared convolution blocks. Tensors are ``(N, C, Y, X)``."""

from __future__ import annotations

from torch import nn


def conv_bn_relu(c_in: int, c_out: int, *, stride: int = 1) -> nn.Sequential:
    """3x3 convolution (no bias) -> batch norm -> ReLU; ``stride`` 2 halves Y and X."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )
