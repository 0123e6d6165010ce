"""SDNet (Chartsias et al., MedIA 2019): an image is split into a binary anatomy factor and a
modality vector; a FiLM decoder puts them back together.

Tensors are 2D ``(N, C, H, W)``; images in [-1, 1]. Components (widths scale with ``base``;
the paper's are ``base=64``):

- :class:`AnatomyEncoder`: U-Net (4 downsamplings, ``base``..``16 base`` filters) -> 1x1 conv to
  ``n_anatomy`` channels -> softmax -> binarised. Binarisation: the one-hot of the per-pixel
  argmax with the softmax's gradient (straight-through, ``s = p + (onehot(argmax p) - p).detach()``),
  so every pixel belongs to exactly one channel. (Rounding the softmax, as in the authors'
  code, leaves pixels where no channel exceeds 0.5 empty; we chose argmax.)
- :class:`ModalityEncoder`: image and anatomy channels -> 4 x [conv 3x3 stride 2 valid, BN,
  LeakyReLU] -> dense 32 -> ``mu``, ``logvar`` (``n_z``), reparameterised sample.
- :class:`FiLMDecoder`: 4 residual blocks on the anatomy map, each conv -> LeakyReLU, conv ->
  FiLM(gamma, beta from z) -> LeakyReLU, summed with the block's first activation; conv 3x3 to
  1 channel, tanh.
- :class:`Segmentor`: 2 x (conv 3x3 ``seg_width``, BN, LeakyReLU), 1x1 conv to classes
  (background included), softmax.
- :class:`MaskDiscriminator`: LSGAN critic on masks, convs 4x4 with strides 2, 2, 2, 2, 1.
"""

from __future__ import annotations

import torch
from torch import nn


def _cbr(c_in, c_out):
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
                         nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


def binarise(probs: torch.Tensor) -> torch.Tensor:
    """One-hot of the channel argmax, with the identity gradient of ``probs`` (straight-through)."""
    hard = torch.nn.functional.one_hot(probs.argmax(1), probs.shape[1]).movedim(-1, 1).to(probs.dtype)
    return probs + (hard - probs).detach()


class AnatomyEncoder(nn.Module):
    """``(N, 1, H, W)`` -> binary anatomy ``(N, n_anatomy, H, W)`` (and its softmax)."""

    def __init__(self, n_anatomy: int = 8, base: int = 64, depth: int = 4):
        super().__init__()
        widths = [base * 2**i for i in range(depth + 1)]
        self.depth = depth
        self.down = nn.ModuleList([_cbr(1 if i == 0 else widths[i - 1], widths[i]) for i in range(depth + 1)])
        self.up = nn.ModuleList([nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in reversed(range(depth))])
        self.dec = nn.ModuleList([_cbr(2 * widths[i], widths[i]) for i in reversed(range(depth))])
        self.head = nn.Conv2d(widths[0], n_anatomy, 1)

    def forward(self, x: torch.Tensor):
        if x.shape[-1] % 2**self.depth or x.shape[-2] % 2**self.depth:
            raise ValueError(f"image size {tuple(x.shape[-2:])} must be divisible by {2**self.depth}")
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else nn.functional.max_pool2d(x, 2))
            skips.append(x)
        for up, dec, skip in zip(self.up, self.dec, skips[::-1][1:]):
            x = dec(torch.cat([up(x), skip], 1))
        probs = torch.softmax(self.head(x), 1)
        return binarise(probs), probs


class ModalityEncoder(nn.Module):
    """Image + anatomy -> ``(z, mu, logvar)``, each ``(N, n_z)``."""

    def __init__(self, n_anatomy: int = 8, n_z: int = 8, size: int = 224, width: int = 16):
        super().__init__()
        layers, c, s = [], 1 + n_anatomy, size
        for _ in range(4):
            layers += [nn.Conv2d(c, width, 3, stride=2), nn.BatchNorm2d(width), nn.LeakyReLU(0.2, inplace=True)]
            c, s = width, (s - 3) // 2 + 1
        self.features = nn.Sequential(*layers)
        self.dense = nn.Sequential(nn.Linear(width * s * s, 32), nn.BatchNorm1d(32), nn.LeakyReLU(0.2, inplace=True))
        self.mu, self.logvar = nn.Linear(32, n_z), nn.Linear(32, n_z)

    def forward(self, image: torch.Tensor, anatomy: torch.Tensor):
        h = self.dense(self.features(torch.cat([image, anatomy], 1)).flatten(1))
        mu, logvar = self.mu(h), self.logvar(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return z, mu, logvar


class _FiLMBlock(nn.Module):
    def __init__(self, c_in, width, n_z):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        self.film = nn.Sequential(nn.Linear(n_z, width), nn.LeakyReLU(0.2, inplace=True), nn.Linear(width, 2 * width))

    def forward(self, x, z):
        h = nn.functional.leaky_relu(self.conv1(x), 0.2)
        return self.modulate(h, self.conv2(h), z)

    def modulate(self, h, y, z):
        """The block's output from its first activation ``h`` and second convolution ``y``."""
        gamma, beta = self.film(z)[:, :, None, None].chunk(2, dim=1)
        return h + nn.functional.leaky_relu(gamma * y + beta, 0.2)


class FiLMDecoder(nn.Module):
    """Anatomy ``(N, n_anatomy, H, W)`` + z ``(N, n_z)`` -> image ``(N, 1, H, W)`` in [-1, 1]."""

    def __init__(self, n_anatomy: int = 8, n_z: int = 8, width: int = 16, blocks: int = 4):
        super().__init__()
        self.blocks = nn.ModuleList([_FiLMBlock(n_anatomy if i == 0 else width, width, n_z) for i in range(blocks)])
        self.out = nn.Conv2d(width, 1, 3, padding=1)

    def prepare(self, anatomy) -> tuple:
        """The part of the decoding that does not depend on z: the first block's activation and
        second convolution, each ``(N, width, H, W)``. ``forward(anatomy, z, prepared=...)`` then
        decodes the same anatomy with other z (a z slider) without computing it again."""
        first = self.blocks[0]
        h = nn.functional.leaky_relu(first.conv1(anatomy), 0.2)
        return h, first.conv2(h)

    def forward(self, anatomy, z, *, prepared: tuple | None = None):
        h = self.blocks[0].modulate(*(prepared if prepared is not None else self.prepare(anatomy)), z)
        for block in self.blocks[1:]:
            h = block(h, z)
        return torch.tanh(self.out(h))


class Segmentor(nn.Module):
    """Anatomy -> class probabilities ``(N, n_classes, H, W)`` (background included)."""

    def __init__(self, n_anatomy: int = 8, n_classes: int = 4, width: int = 64):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(n_anatomy, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width, n_classes, 1))

    def forward(self, anatomy):
        return torch.softmax(self.net(anatomy), 1)


class MaskDiscriminator(nn.Module):
    """LSGAN critic of masks ``(N, n_classes - 1, H, W)`` (foreground channels) -> ``(N, 1)``."""

    def __init__(self, n_channels: int = 3, base: int = 64, size: int = 224):
        super().__init__()
        layers, c, s = [], n_channels, size
        for i, stride in enumerate((2, 2, 2, 2, 1)):
            w = base * 2**i
            layers += [nn.Conv2d(c, w, 4, stride=stride, padding=1), nn.LeakyReLU(0.2, inplace=True)]
            c, s = w, (s + 2 - 4) // stride + 1
        self.features = nn.Sequential(*layers)
        self.dense = nn.Linear(c * s * s, 1)

    def forward(self, masks):
        return self.dense(self.features(masks).flatten(1))


class SDNet(nn.Module):
    """The whole model; :meth:`forward` gives everything the losses need."""

    def __init__(self, n_anatomy: int = 8, n_z: int = 8, n_classes: int = 4, size: int = 224, base: int = 64,
                 film_width: int = 16, seg_width: int = 64, disc_base: int = 64):
        super().__init__()
        self.n_anatomy, self.n_z, self.size = n_anatomy, n_z, size
        self.anatomy_encoder = AnatomyEncoder(n_anatomy, base)
        self.modality_encoder = ModalityEncoder(n_anatomy, n_z, size)
        self.decoder = FiLMDecoder(n_anatomy, n_z, film_width)
        self.segmentor = Segmentor(n_anatomy, n_classes, seg_width)
        self.discriminator = MaskDiscriminator(n_classes - 1, disc_base, size)
        self.register_buffer("z_mean", torch.zeros(n_z))  # statistics of the training codes (mu)
        self.register_buffer("z_std", torch.ones(n_z))

    def encode(self, image):
        """``(anatomy (N, C, H, W) binary, z, mu, logvar)``."""
        anatomy, _ = self.anatomy_encoder(image)
        z, mu, logvar = self.modality_encoder(image, anatomy)
        return anatomy, z, mu, logvar

    def forward(self, image):
        anatomy, z, mu, logvar = self.encode(image)
        return {"anatomy": anatomy, "z": z, "mu": mu, "logvar": logvar,
                "reconstruction": self.decoder(anatomy, z), "segmentation": self.segmentor(anatomy)}


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)), summed over dimensions, averaged over the batch."""
    return (-0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(1)).mean()


def soft_dice_loss(probs: torch.Tensor, target: torch.Tensor, *, smooth: float = 0.1) -> torch.Tensor:
    """1 - mean soft Dice over the foreground channels (smoothing 0.1), ``target`` integer ``(N, H, W)``."""
    onehot = torch.nn.functional.one_hot(target.long(), probs.shape[1]).movedim(-1, 1).to(probs.dtype)
    p, g = probs[:, 1:], onehot[:, 1:]
    inter = (p * g).sum((0, 2, 3))
    return 1 - ((2 * inter + smooth) / (p.sum((0, 2, 3)) + g.sum((0, 2, 3)) + smooth)).mean()


def z_reconstruction_loss(model: SDNet, anatomy: torch.Tensor) -> torch.Tensor:
    """Sample z ~ N(0, I), decode it with a real anatomy map, re-encode the *decoded image* with that
    anatomy, and take the MAE to the sampled z (the paper's cost; not a re-encoding of the reconstruction)."""
    z = torch.randn(anatomy.shape[0], model.n_z, device=anatomy.device)
    image = model.decoder(anatomy, z)
    _, mu, _ = model.modality_encoder(image, anatomy)
    return (mu - z).abs().mean()


def anatomy_round_trip_loss(model: SDNet, anatomy: torch.Tensor) -> torch.Tensor:
    """Decode the (detached) anatomy with a z drawn from N(0, I), encode the decoded image's
    anatomy again (its softmax, not binarised) and take the MAE to the anatomy: a decoder whose
    images keep their anatomy whatever the modality factor (what z traversal needs; not in the
    paper, whose weight for it is 0)."""
    target = anatomy.detach()
    z = torch.randn(target.shape[0], model.n_z, device=target.device)
    _, probs = model.anatomy_encoder(model.decoder(target, z))
    return (probs - target).abs().mean()


def lsgan_loss(scores: torch.Tensor, real: bool) -> torch.Tensor:
    """Least-squares GAN loss: mean squared error of the critic's scores to 1 (real) or 0 (fake)."""
    return ((scores - (1.0 if real else 0.0)) ** 2).mean()


#: The paper's loss weights (``anatomy_round_trip`` is ours, off in the paper's cost).
SDNET_WEIGHTS = {"kl": 0.01, "dice": 10.0, "adversarial": 10.0, "reconstruction": 1.0, "z_reconstruction": 1.0,
                 "anatomy_round_trip": 0.0}
