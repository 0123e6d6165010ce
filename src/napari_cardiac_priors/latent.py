"""Latent spaces of the shape models: T-L codes of label maps, and how plausible a shape is.

A T-L model's input contract gives the grid its autoencoder sees (``size`` ``(Z, Y, X)`` and
``spacing`` mm). :func:`tl_grid_labels` resamples a label map onto that grid (nearest
neighbour, the label map's own orientation, centred on its heart: the centroid of LV, MYO
and RV); :func:`encode_labels` gives its code; :func:`plausibility` its Mahalanobis distance
to the training codes and where that distance falls among the training subjects' own.
"""

from __future__ import annotations

import numpy as np

from .errors import InputError
from .volume import Volume, resample


def tl_grid_labels(labels: Volume, contract: dict) -> Volume:
    """``labels`` resampled onto the T-L grid of ``contract``, centred on the heart."""
    if labels.kind != "labels":
        raise InputError("the shape model encodes label maps, not images")
    heart = np.argwhere(np.isin(labels.array, (1, 2, 3)))
    if heart.size == 0:
        raise InputError("the label map holds no LV, MYO or RV: there is no shape to encode")
    size = [int(v) for v in contract["size"]]
    spacing = [float(v) for v in contract["spacing"]]
    centre_ijk = heart.mean(axis=0)[::-1]  # (x, y, z) voxel index
    centre = labels.affine @ np.r_[centre_ijk, 1.0]
    axes = labels.affine[:3, :3] / np.linalg.norm(labels.affine[:3, :3], axis=0)
    affine = np.eye(4)
    affine[:3, :3] = axes * np.array(spacing[::-1])  # columns x, y, z
    half = (np.array(size[::-1], float) - 1) / 2.0
    affine[:3, 3] = centre[:3] - affine[:3, :3] @ half
    return resample(labels, affine=affine, shape=tuple(size), order=0)


def encode_labels(model, labels: Volume) -> np.ndarray:
    """The T-L code ``(D,)`` of a label map (``model``: a loaded T-L model or its name)."""
    import torch

    from .inference import load_model
    from .nn.tl import one_hot

    model = load_model(model) if isinstance(model, str) else model
    net = model.network
    grid = tl_grid_labels(labels, model.entry.input)
    n_classes = net.autoencoder.n_classes
    lab = np.where(grid.array < n_classes, grid.array, 0)
    with torch.inference_mode():
        x = one_hot(torch.from_numpy(lab.astype(np.int64))[None], n_classes).to(model.device)
        return net.autoencoder.encode(x)[0].float().cpu().numpy()


def mahalanobis(code: np.ndarray, net) -> float:
    """Mahalanobis distance of a code to the training codes (the network's stored statistics)."""
    d = np.asarray(code, np.float64) - net.code_mean.double().cpu().numpy()
    return float(np.sqrt(max(d @ net.code_cov_inv.double().cpu().numpy() @ d, 0.0)))


def plausibility(labels: Volume, model) -> dict:
    """``{"distance": Mahalanobis distance, "percentile": % of training subjects closer}``.

    A distance beyond every training subject's (percentile 100) marks a shape unlike any the
    model was trained on: check the segmentation before measuring from it.
    """
    from .inference import load_model

    model = load_model(model) if isinstance(model, str) else model
    dist = mahalanobis(encode_labels(model, labels), model.network)
    q = model.network.distance_quantiles.double().cpu().numpy()
    pct = float(np.interp(dist, q, np.linspace(0, 100, len(q)), left=0.0, right=100.0)) if np.any(q) else float("nan")
    return {"distance": dist, "percentile": pct}
