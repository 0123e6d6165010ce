"""The T-L network of Oktay et al. (ACNN, §II-D, Tables IV and V).

A convolutional autoencoder on one-hot label maps with a linear code (no non-linearity on
the code), and a predictor from intensity images to the same code. Tensors are
``(N, C, Z, Y, X)`` for ``dims=3`` and ``(N, C, Y, X)`` for ``dims=2``; the input grid
``shape`` is fixed per model (it is part of the model's input contract) because of the
fully connected layers.

Autoencoder (Table V), per level ``i``: conv 3 stride ``strides[i]`` -> conv 3 (widths 16, 32,
64), then conv 3 to 1 channel with stride ``strides[3]`` -> FC to the code. The decoder
mirrors it: FC (ReLU) -> learned transposed convolutions (widths 64, 32, 16, 16) each followed
by a conv 3, a last conv 3 to the class logits. Every conv but the last has batch norm and
ReLU. With the paper's strides ``(1,2,2), (2,2,2), (2,2,2), (3,3,3)`` (z, y, x) an input of
60 x 120 x 120 gives a 5 x 5 x 5 map before the code; ``shape`` must be divisible by the
product of the strides.

Predictor (Table IV): two convs per level (32, 64, 128, 256; levels 2-4 start with stride 2),
a conv to 1 channel and an FC to the code.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .layers import Conv3d, class_labels, conv3d

_DECONV = {1: (1, 0), 2: (4, 1), 3: (7, 2)}  # stride -> (kernel, padding): output = stride x input


def _layers(dims: int):
    if dims == 3:
        return Conv3d, nn.ConvTranspose3d, nn.BatchNorm3d
    if dims == 2:
        return nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm2d
    raise ValueError(f"dims must be 2 or 3, got {dims}")


def _conv(dims, c_in, c_out, stride=1, *, bn_relu=True):
    conv, _, bn = _layers(dims)
    layers = [conv(c_in, c_out, 3, stride=stride, padding=1, bias=not bn_relu)]
    if bn_relu:
        layers += [bn(c_out), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


def _deconv(dims, c_in, c_out, stride):
    _, deconv, bn = _layers(dims)
    stride = tuple(stride)
    k = tuple(_DECONV[s][0] for s in stride)
    p = tuple(_DECONV[s][1] for s in stride)
    return nn.Sequential(deconv(c_in, c_out, k, stride=stride, padding=p, bias=False), bn(c_out), nn.ReLU(inplace=True))


def _grid(shape, strides):
    grid = []
    for axis, n in enumerate(shape):
        f = math.prod(s[axis] for s in strides)
        if n % f:
            raise ValueError(f"T-L input size {tuple(shape)} must be divisible by {tuple(math.prod(s[a] for s in strides) for a in range(len(shape)))}")
        grid.append(n // f)
    return tuple(grid)


PAPER_STRIDES_3D = ((1, 2, 2), (2, 2, 2), (2, 2, 2), (3, 3, 3))
PAPER_STRIDES_2D = ((2, 2), (2, 2), (2, 2), (3, 3))


class LabelAutoencoder(nn.Module):
    """Autoencoder on one-hot label maps ``(N, n_classes, *shape)`` with a ``code_size`` linear code."""

    def __init__(self, n_classes: int = 4, shape=(60, 120, 120), code_size: int = 64, strides=None,
                 widths=(16, 32, 64), preview_blocks: int | None = None):
        super().__init__()
        dims = len(shape)
        strides = tuple(tuple(s) for s in (strides or (PAPER_STRIDES_3D if dims == 3 else PAPER_STRIDES_2D)))
        self.shape, self.n_classes, self.code_size = tuple(shape), n_classes, code_size
        self.grid = _grid(shape, strides)
        enc, c = [], n_classes
        for w, s in zip(widths, strides[:3]):
            enc += [_conv(dims, c, w, s), _conv(dims, w, w)]
            c = w
        enc.append(_conv(dims, c, 1, strides[3]))
        self.encoder = nn.Sequential(*enc)
        n = math.prod(self.grid)
        self.to_code = nn.Linear(n, code_size)  # linear code: no non-linearity (paper §III-B)
        self.from_code = nn.Sequential(nn.Linear(code_size, n), nn.ReLU(inplace=True))
        dec, c = [], 1
        for w, s in zip((widths[2], widths[1], widths[0], widths[0]), strides[::-1]):
            dec += [_deconv(dims, c, w, s), _conv(dims, w, w)]
            c = w
        dec[-1] = _conv(dims, c, n_classes, bn_relu=False)  # the last layer: logits, no BN
        self.decoder = nn.Sequential(*dec)
        #: a small head on the output of the first ``preview_blocks`` decoder blocks (transposed conv
        #: + conv each): coarse logits of the whole volume at a fraction of the decoding's cost
        self.preview_blocks = preview_blocks
        if preview_blocks is not None:
            if not 1 <= int(preview_blocks) < len(strides):
                raise ValueError(f"preview_blocks must be 1 to {len(strides) - 1}, got {preview_blocks}")
            conv = _layers(dims)[0]
            c = (widths[2], widths[1], widths[0])[int(preview_blocks) - 1]
            self.preview = nn.Sequential(conv(c, 16, 3, padding=1), nn.ReLU(inplace=True), conv(16, n_classes, 1))

    def encode(self, onehot: torch.Tensor) -> torch.Tensor:
        """``(N, n_classes, *shape)`` one-hot (or probability) maps -> ``(N, code_size)`` codes."""
        return self.to_code(self.encoder(onehot).flatten(1))

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        """``(N, code_size)`` codes -> ``(N, n_classes, *shape)`` logits."""
        return self.decoder(self.from_code(code).view(code.shape[0], 1, *self.grid))

    def decode_preview(self, code: torch.Tensor) -> torch.Tensor:
        """``(N, code_size)`` codes -> ``(N, n_classes, *shape)`` coarse logits from the preview head
        (the decoder's first ``preview_blocks`` blocks, the head, linear upsampling to ``shape``).

        The head is fitted to the full decoding after training (:func:`fit_preview`); the Latent
        explorer shows this whole volume while a slider moves and the exact decoding once it rests.
        """
        import torch.nn.functional as F

        if self.preview_blocks is None:
            raise ValueError("this autoencoder has no preview head (config preview_blocks)")
        x = self.from_code(code).view(code.shape[0], 1, *self.grid)
        x = self.decoder[: 2 * int(self.preview_blocks)](x)
        mode = "trilinear" if len(self.shape) == 3 else "bilinear"
        return F.interpolate(self.preview(x), size=self.shape, mode=mode, align_corners=False)

    def decode_slab(self, code: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """Slices ``start:stop`` (first spatial axis) of ``decode(code)``, computed from only the
        part of each layer's output they depend on (eval mode: batch norm uses running statistics).

        A 3D model's decoder is convolutional after its FC layer, so one output slice depends on
        a few slices of each layer below it; the sliders of the Latent explorer decode the slice
        on screen this way first. Returns ``(N, n_classes, stop - start, Y, X)`` logits equal to
        the full decoding's up to float rounding.
        """
        import torch.nn.functional as F

        if len(self.shape) != 3:
            raise ValueError("decode_slab is for 3D models; a 2D model decodes one slice anyway")
        if not 0 <= start < stop <= self.shape[0]:
            raise ValueError(f"slab {start}:{stop} is outside the model's {self.shape[0]} slices")
        layers = [m for m in self.decoder.modules() if isinstance(m, (nn.Conv3d, nn.ConvTranspose3d, nn.BatchNorm3d, nn.ReLU))]
        zs = [(m.kernel_size[0], m.stride[0], m.padding[0]) if isinstance(m, (nn.Conv3d, nn.ConvTranspose3d)) else None
              for m in layers]
        sizes = [self.grid[0]]  # z length of each layer's input, then of the output
        for m, kz in zip(layers, zs):
            n = sizes[-1]
            if isinstance(m, nn.ConvTranspose3d):
                n = (n - 1) * kz[1] - 2 * kz[2] + kz[0] + m.output_padding[0]
            elif kz:
                n = (n + 2 * kz[2] - kz[0]) // kz[1] + 1
            sizes.append(n)
        # backwards: the rows [a, b) each layer must produce (inside its output), and so on down
        ranges = [None] * len(layers)
        a, b = start, stop
        for i in reversed(range(len(layers))):
            ranges[i] = (a, b)
            if zs[i]:
                k, s, p = zs[i]
                if isinstance(layers[i], nn.ConvTranspose3d):  # output o takes input r where o = r s - p + kk
                    a, b = -((k - 1 - a - p) // s), (b - 1 + p) // s + 1
                else:
                    a, b = a * s - p, (b - 1) * s - p + k
                a, b = max(a, 0), min(b, sizes[i])  # rows outside the volume: padding, not data
        x = self.from_code(code).view(code.shape[0], 1, *self.grid)[:, :, a:b]
        lo = a  # x holds the global rows [lo, lo + x.shape[2]) of the current layer's input
        for m, kz, (a, b) in zip(layers, zs, ranges):
            if isinstance(m, nn.ConvTranspose3d):
                k, s, p = kz
                y = F.conv_transpose3d(x, m.weight, m.bias, (s, *m.stride[1:]), (0, *m.padding[1:]),
                                       (0, *m.output_padding[1:]), m.groups, m.dilation)
                first = lo * s - p  # the global row of y's first row
                x = y[:, :, a - first : b - first]
            elif kz:
                k, s, p = kz
                pad_lo, pad_hi = lo - (a * s - p), (b - 1) * s - p + k - (lo + x.shape[2])  # zeros: the padding
                x = conv3d(F.pad(x, (0, 0, 0, 0, pad_lo, pad_hi)), m.weight, m.bias, (s, *m.stride[1:]),
                           (0, *m.padding[1:]), m.dilation, m.groups)
            else:
                x = m(x)
            lo = a
        return x

    def forward(self, onehot: torch.Tensor):
        code = self.encode(onehot)
        return self.decode(code), code


class CodePredictor(nn.Module):
    """Predictor from intensity images ``(N, in_channels, *shape)`` to the autoencoder's code."""

    def __init__(self, shape=(60, 120, 120), code_size: int = 64, in_channels: int = 1, widths=(32, 64, 128, 256)):
        super().__init__()
        dims = len(shape)
        layers, c = [], in_channels
        for i, w in enumerate(widths):
            layers.append(_conv(dims, c, w, 1 if i == 0 else 2))
            layers.append(_conv(dims, w, w) if i < len(widths) - 1 else _conv(dims, w, 1))
            c = w
        self.features = nn.Sequential(*layers)
        grid = [n for n in shape]
        for _ in widths[1:]:
            grid = [(g + 1) // 2 for g in grid]
        self.to_code = nn.Linear(math.prod(grid), code_size)
        self.shape, self.code_size = tuple(shape), code_size

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.to_code(self.features(image).flatten(1))


class TLNetwork(nn.Module):
    """Autoencoder + predictor, with the training codes' mean and standard deviation as buffers."""

    def __init__(self, n_classes: int = 4, shape=(60, 120, 120), code_size: int = 64, strides=None,
                 ae_widths=(16, 32, 64), predictor_widths=(32, 64, 128, 256), preview_blocks: int | None = None):
        super().__init__()
        self.autoencoder = LabelAutoencoder(n_classes, shape, code_size, strides, ae_widths, preview_blocks)
        self.predictor = CodePredictor(shape, code_size, 1, predictor_widths)
        self.register_buffer("code_mean", torch.zeros(code_size))
        self.register_buffer("code_std", torch.ones(code_size))
        self.register_buffer("code_cov_inv", torch.eye(code_size))
        #: 0th, 1st, ..., 100th percentile of the training codes' Mahalanobis distances
        self.register_buffer("distance_quantiles", torch.zeros(101))

    def forward(self, onehot: torch.Tensor, image: torch.Tensor | None = None):
        """``(reconstruction logits, label code, predicted code or None)``."""
        logits, code = self.autoencoder(onehot)
        return logits, code, (self.predictor(image) if image is not None else None)


def label_swap_noise(labels: torch.Tensor, n_classes: int, *, p: float = 0.1, generator=None) -> torch.Tensor:
    """Labels with each voxel replaced, with probability ``p``, by a different class drawn uniformly.

    The denoising input of the autoencoder (its target stays the clean labels). ``labels`` is an
    integer tensor of any shape; returns a new tensor of the same shape and dtype.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p}")
    swap = torch.rand(labels.shape, generator=generator, device=labels.device) < p
    shift = torch.randint(1, n_classes, labels.shape, generator=generator, device=labels.device)
    return torch.where(swap, (labels + shift) % n_classes, labels).to(labels.dtype)


def one_hot(labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """``(N, *S)`` integer labels -> ``(N, n_classes, *S)`` float one-hot maps."""
    return torch.nn.functional.one_hot(labels.long(), n_classes).movedim(-1, 1).float()


def fit_preview(autoencoder: LabelAutoencoder, codes: torch.Tensor, *, steps: int = 200, batch_size: int = 2,
                lr: float = 1e-3, generator=None) -> list[float]:
    """Fit the preview head of ``autoencoder`` to its own full decoding (the rest stays frozen, in
    eval mode; which parameters require gradients is restored); returns the loss of each step.

    Each step decodes ``batch_size`` codes drawn on the lines through two of ``codes`` ``(M,
    code_size)`` (the encoded training shapes), ``a + t (b - a)`` with ``t`` uniform in
    [-0.5, 1.5]: the shapes and the in-between codes that interpolation and the sliders reach.
    The loss is the cross-entropy of the preview's logits against the full decoding's labels.
    """
    import torch.nn.functional as F

    autoencoder.eval()
    was = {p: p.requires_grad for p in autoencoder.parameters()}
    head = list(autoencoder.preview.parameters())
    for p in was:
        p.requires_grad_(any(p is h for h in head))
    opt = torch.optim.Adam(head, lr=lr)
    losses = []
    for _ in range(int(steps)):
        i = torch.randint(len(codes), (2, batch_size), generator=generator)
        t = torch.rand(batch_size, 1, generator=generator) * 2.0 - 0.5
        code = codes[i[0]] + t * (codes[i[1]] - codes[i[0]])
        with torch.no_grad():
            target = class_labels(autoencoder.decode(code)).long()
        loss = F.cross_entropy(autoencoder.decode_preview(code), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    for p, flag in was.items():
        p.requires_grad_(flag)
    return losses
