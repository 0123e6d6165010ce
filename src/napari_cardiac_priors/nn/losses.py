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


def acnn_seg_loss(logits: torch.Tensor, target: torch.Tensor, encoder=None, *, lambda1: float = 0.01) -> torch.Tensor:
    """ACNN-Seg eq. 1 without weight decay (given to the optimiser): cross-entropy +
    ``lambda1`` x the shape prior through ``encoder`` (None: the plain 3D-Seg baseline)."""
    loss = nn.functional.cross_entropy(logits, target.long())
    if encoder is not None and lambda1:
        loss = loss + lambda1 * shape_prior_loss(encoder, torch.softmax(logits, dim=1), target)
    return loss


def acnn_sr_loss(output: torch.Tensor, target: torch.Tensor, predictor=None, *, lambda1: float = 0.01) -> torch.Tensor:
    """ACNN-SR eq. 2 without weight decay: smooth-L1 to the HR image + ``lambda1`` x the code
    distance through the (frozen) T-L ``predictor`` (None: SR without prior)."""
    loss = nn.functional.smooth_l1_loss(output, target)
    if predictor is not None and lambda1:
        with torch.no_grad():
            ref = predictor(target)
        loss = loss + lambda1 * code_distance(predictor(output), ref)
    return loss
