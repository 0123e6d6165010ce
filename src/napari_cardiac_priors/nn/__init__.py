"""PyTorch modules of the three methods and their losses (torch is imported by the submodules).

:mod:`.sslln` the 2.5D multi-task network of Duan et al.; :mod:`.tl` the T-L network (label
autoencoder + code predictor) and :mod:`.acnn` the ACNN segmentation / SR network of Oktay et al.; :mod:`.sdnet` SDNet of Chartsias et al.; :mod:`.losses` losses as functions
with thin Module wrappers; :mod:`.blocks` shared conv blocks; :func:`build` makes a network
from its registry architecture name and config.
"""

from __future__ import annotations


def build(architecture: str, config: dict):
    """A network from a manifest entry's ``architecture`` and ``config``."""
    if architecture == "sslln":
        from .sslln import SSLLN

        return SSLLN(**config)
    if architecture == "unet2d":
        from .unet import UNet2D

        return UNet2D(**config)
    if architecture == "slab2d":
        from .slab import SlabNet

        return SlabNet(**config)
    if architecture == "tl":
        from .tl import TLNetwork

        return TLNetwork(**config)
    if architecture == "acnn3d":
        from .acnn import ACNN3D

        return ACNN3D(**config)
    if architecture == "sdnet":
        from .sdnet import SDNet

        return SDNet(**config)
    raise ValueError(f"unknown architecture {architecture!r}")
