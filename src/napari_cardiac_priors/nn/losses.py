"""Losses as functions, with one-line Module wrappers (deepali style).

Shapes: logits / probabilities ``(N, C, *spatial)``; integer targets ``(N, *spatial)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def squared_dice_loss(logits: torch.Tensor, target: torch.Tensor, *, eps: float = 1e-6, include_background: bool = False) -> torch.Tensor:
    """1 - mean over classes of ``2 sum(p g) / sum(p^2 + g^2)`` (SSLLN eq. 2, squared denominator).

    Computed per sample and class, then averaged; a class absent from both prediction and
    target contributes a loss near 0 (the ratio is taken as 1).
    """
    p = logits.softmax(dim=1)
    g = F.one_hot(target.long(), p.shape[1]).movedim(-1, 1).to(p.dtype)
    dims = tuple(range(2, p.ndim))
    inter = (p * g).sum(dims)
    denom = (p * p).sum(dims) + (g * g).sum(dims)
    dice = (2 * inter + eps) / (denom + eps)
    if not include_background:
        dice = dice[:, 1:]
    return 1.0 - dice.mean()


def balanced_landmark_ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Class-balanced weighted cross-entropy of SSLLN eq. 3.

    For each sample, class ``k`` is weighted by ``w_k = 1 - |Y_k| / |Y|`` and the loss sums
    ``-w_k log p_k`` over the voxels of class ``k``. Rare landmark voxels thus weigh about 1
    each and the background as much as all landmark voxels together. Unlike eq. 3's plain sum,
    the sum is divided by the total weight ``sum_k w_k |Y_k|`` (a weighted mean), so that the
    term is O(1) like the Dice loss and ``alpha = 0.8`` balances the two tasks whatever the
    volume size; the result is averaged over the batch.
    """
    n, c = logits.shape[:2]
    logp = logits.log_softmax(dim=1).flatten(2)  # (N, C, V)
    t = target.long().flatten(1)  # (N, V)
    counts = F.one_hot(t, c).sum(1).to(logp.dtype)  # (N, C)
    w = 1.0 - counts / t.shape[1]
    picked = logp.gather(1, t[:, None]).squeeze(1)  # (N, V)
    wv = w.gather(1, t)
    return (-(wv * picked).sum(1) / wv.sum(1).clamp_min(1e-6)).mean()


def sslln_loss(seg_logits, seg_target, lmk_logits, lmk_target, *, alpha: float = 0.8) -> torch.Tensor:
    """SSLLN eq. 1 without the weight decay (given to the optimiser): Dice + alpha * landmark CE."""
    return squared_dice_loss(seg_logits, seg_target) + alpha * balanced_landmark_ce(lmk_logits, lmk_target)


class SquaredDiceLoss(nn.Module):
    def forward(self, logits, target):
        return squared_dice_loss(logits, target)


class BalancedLandmarkCE(nn.Module):
    def forward(self, logits, target):
        return balanced_landmark_ce(logits, target)


def code_distance(code: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distance between codes ``(N, D)``, averaged over the batch (ACNN's L_he)."""
    return ((code - reference) ** 2).sum(dim=1).mean()


def shape_prior_loss(encoder, probabilities: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``|| f(probabilities) - f(onehot(target)) ||^2`` through a (frozen) T-L label encoder ``f``.

    ``probabilities``: ``(N, C, *S)`` softmax output (probabilities, never logits: the encoder was
    trained on one-hot maps); ``target``: ``(N, *S)`` integer labels. Zero when the probabilities
    are the one-hot target. Gradients flow to ``probabilities`` only if the encoder's parameters
    are frozen by the caller (``requires_grad_(False)``, eval mode).
    """
    from .tl import one_hot

    with torch.no_grad():
        ref = encoder(one_hot(target, probabilities.shape[1]))
    return code_distance(encoder(probabilities), ref)


def pad_widths(spatial, shape) -> list[int]:
    """``torch.nn.functional.pad`` widths that pad the sizes ``spatial`` (of the last axes,
    ``(Z, Y, X)``) at the end of each axis to ``shape`` (a T-L grid); ValueError if an axis is larger."""
    pad = []
    for n, t in zip(reversed(tuple(spatial)), reversed(tuple(shape))):
        if int(t) < int(n):
            raise ValueError(f"{tuple(spatial)} is larger than the T-L grid {tuple(shape)}")
        pad += [0, int(t) - int(n)]
    return pad


def pad_probabilities(probs: torch.Tensor, shape) -> torch.Tensor:
    """Pad ``(N, C, Z, Y, X)`` probabilities at the end of each axis to the T-L grid ``shape``
    ``(Z, Y, X)``: background (channel 0) 1, the other channels 0 in the padding."""
    pad = pad_widths(probs.shape[2:], shape)
    out = F.pad(probs, pad)
    if any(pad):
        mask = F.pad(torch.ones_like(probs[:, :1]), pad)
        out[:, :1] = out[:, :1] + (1 - mask)
    return out


def _note(terms: dict | None, name: str, value: torch.Tensor) -> torch.Tensor:
    """Record a (weighted) loss term's value in ``terms`` (when given); returns the term."""
    if terms is not None:
        terms[name] = float(value.detach())
    return value


def acnn_seg_loss(logits: torch.Tensor, target: torch.Tensor, encoder=None, *, lambda1: float = 0.01,
                  grid_shape=None, terms: dict | None = None) -> torch.Tensor:
    """ACNN-Seg eq. 1 without weight decay (given to the optimiser): cross-entropy +
    ``lambda1`` x the shape prior through ``encoder`` (None: the plain 3D-Seg baseline).

    ``grid_shape`` ``(Z, Y, X)``: the encoder's grid, when the volume ``(N, C, *S)`` is smaller;
    for the prior term only, probabilities and target are padded at the end of each axis to it
    as background (:func:`pad_probabilities`). ``terms``: a dict that receives each weighted
    term's value (``cross_entropy``, ``prior``).
    """
    loss = _note(terms, "cross_entropy", nn.functional.cross_entropy(logits, target.long()))
    if encoder is not None and lambda1:
        probs = torch.softmax(logits, dim=1)
        if grid_shape is not None:
            probs = pad_probabilities(probs, grid_shape)
            target = F.pad(target, pad_widths(target.shape[1:], grid_shape))  # label 0: background
        loss = loss + _note(terms, "prior", lambda1 * shape_prior_loss(encoder, probs, target))
    return loss


def acnn_sr_loss(output: torch.Tensor, target: torch.Tensor, predictor=None, *, lambda1: float = 0.01,
                 grid_shape=None, terms: dict | None = None) -> torch.Tensor:
    """ACNN-SR eq. 2 without weight decay: smooth-L1 to the HR image + ``lambda1`` x the code
    distance through the (frozen) T-L ``predictor`` (None: SR without prior).

    ``grid_shape`` ``(Z, Y, X)``: the predictor's grid, when the volumes ``(N, 1, *S)`` are
    smaller; both are zero-padded at the end of each axis to it first, and both terms are
    taken on the padded grid. ``terms``: a dict that receives each weighted term's value
    (``smooth_l1``, ``prior``).
    """
    if grid_shape is not None:
        pad = pad_widths(output.shape[2:], grid_shape)
        output, target = F.pad(output, pad), F.pad(target, pad)
    loss = _note(terms, "smooth_l1", nn.functional.smooth_l1_loss(output, target))
    if predictor is not None and lambda1:
        with torch.no_grad():
            ref = predictor(target)
        loss = loss + _note(terms, "prior", lambda1 * code_distance(predictor(output), ref))
    return loss


def volume_prior_loss(encoder, logits: torch.Tensor, target: torch.Tensor, grids: torch.Tensor) -> torch.Tensor:
    """The ACNN shape prior for a volume prediction on a model grid that is not the T-L grid.

    Softmax probabilities and the one-hot target are sampled onto each sample's T-L grid
    (``grids`` ``(N, Z, Y, X, 3)``: (x, y, z) in [-1, 1] for ``grid_sample`` with
    ``align_corners=True``; probabilities bilinearly, the target by nearest neighbour; the
    foreground is sampled and background is 1 minus it, so 1 outside the volume), cut to the
    encoder's classes, and compared through the (frozen) label ``encoder`` (:func:`code_distance`).

    ``logits`` ``(N, C, S, Y, X)``; ``target`` ``(N, S, Y, X)`` integer labels.
    """
    from .tl import one_hot

    def sample(p, mode):
        fg = F.grid_sample(p[:, 1:], grids, mode=mode, padding_mode="zeros", align_corners=True)
        return torch.cat([1.0 - fg.sum(1, keepdim=True), fg], 1)

    n_tl = encoder.__self__.n_classes if hasattr(encoder, "__self__") else logits.shape[1]
    probs = sample(torch.softmax(logits.float(), 1), "bilinear")[:, :n_tl]
    with torch.no_grad():
        ref = encoder(sample(one_hot(target, logits.shape[1]), "nearest")[:, :n_tl])
    return code_distance(encoder(probs), ref)


def tl_autoencoder_loss(logits: torch.Tensor, target: torch.Tensor, *, dice_weight: float = 0.0,
                        terms: dict | None = None) -> torch.Tensor:
    """The T-L label autoencoder's reconstruction loss: cross-entropy of the reconstruction
    ``logits`` ``(N, C, Z, Y, X)`` to the clean ``target`` ``(N, Z, Y, X)`` (the input was the
    noisy one-hot map), plus ``dice_weight`` x :func:`squared_dice_loss` (0: cross-entropy alone).
    ``terms``: a dict that receives each weighted term's value (``cross_entropy``, ``dice``)."""
    loss = _note(terms, "cross_entropy", F.cross_entropy(logits, target))
    if dice_weight:
        loss = loss + _note(terms, "dice", dice_weight * squared_dice_loss(logits, target))
    return loss


def sdnet_loss(model, out: dict, image: torch.Tensor, labels: torch.Tensor, labelled: torch.Tensor, *,
               weights: dict | None = None, adversarial: bool = True, terms: dict | None = None) -> torch.Tensor:
    """SDNet's semi-supervised cost (Chartsias et al. 2019), weighted by ``weights`` (over
    :data:`~.sdnet.SDNET_WEIGHTS`): image reconstruction MAE + KL of the modality factor + the
    z-reconstruction MAE (a sampled z; draws from torch's generator) (+ the anatomy round trip
    where its weight is not 0) + soft Dice on the labelled slices, and unless ``adversarial`` is
    False (a warm-up without the mask critic) the LSGAN terms on masks: the generator's term
    sees the critic's parameters detached, and the critic's own term (real = the labelled
    slices' one-hot masks, fake = the detached predictions, weighted 0.5) is added, so that one
    backward pass trains both sides.

    ``out``: ``model(image)`` (its dict); ``image`` ``(N, 1, H, W)``; ``labels`` ``(N, H, W)``
    integer; ``labelled`` ``(N,)`` bool: the slices whose labels count. ``terms``: a dict that
    receives each weighted term's value (``reconstruction``, ``kl``, ``z_reconstruction``,
    ``anatomy_round_trip``, ``dice``, ``adversarial``, ``critic``; a term a batch lacks or whose
    weight is 0 is left out).
    """
    from .sdnet import (SDNET_WEIGHTS, anatomy_round_trip_loss, kl_divergence, lsgan_loss, soft_dice_loss,
                        z_reconstruction_loss)

    unknown = set(weights or {}) - set(SDNET_WEIGHTS)
    if unknown:
        raise ValueError(f"unknown SDNet loss weights {sorted(unknown)}; known: {sorted(SDNET_WEIGHTS)}")
    w = {**SDNET_WEIGHTS, **(weights or {})}
    loss = _note(terms, "reconstruction", w["reconstruction"] * (out["reconstruction"] - image).abs().mean())
    loss = loss + _note(terms, "kl", w["kl"] * kl_divergence(out["mu"], out["logvar"]))
    loss = loss + _note(terms, "z_reconstruction", w["z_reconstruction"] * z_reconstruction_loss(model, out["anatomy"]))
    if w["anatomy_round_trip"]:
        loss = loss + _note(terms, "anatomy_round_trip", w["anatomy_round_trip"] * anatomy_round_trip_loss(model, out["anatomy"]))
    seg = out["segmentation"]
    if labelled.any():
        loss = loss + _note(terms, "dice", w["dice"] * soft_dice_loss(seg[labelled], labels[labelled]))
    if not adversarial:
        return loss
    disc = model.discriminator
    fake = seg[:, 1:]
    frozen = {k: v.detach() for k, v in disc.named_parameters()}
    loss = loss + _note(terms, "adversarial", w["adversarial"] * lsgan_loss(torch.func.functional_call(disc, frozen, (fake,)), True))
    if labelled.any():
        real = F.one_hot(labels[labelled], seg.shape[1]).movedim(-1, 1).float()[:, 1:]
        loss = loss + _note(terms, "critic", 0.5 * (lsgan_loss(disc(real), True) + lsgan_loss(disc(fake.detach()), False)))
    return loss
