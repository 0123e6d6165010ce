"""ACNN-Seg and ACNN-SR (LR stack -> HR volume) on phantom LR/HR pairs, with the shape prior of
a frozen T-L model (``train_options["prior"]``: a registry name or a run folder; None = no prior)."""

from __future__ import annotations

import numpy as np

from .base import Task, _batches, _dice_per_class
from .options import ACNNOptions


def _stack_slices(arrays) -> np.ndarray:
    """Stack ``(Z, Y, X)`` arrays whose slice counts differ (LR stacks of 8-12 slices and their HR
    grids): each is padded with zeros after its last slice to the largest count (background:
    label 0, intensity 0, as outside the stack)."""
    n = max(a.shape[0] for a in arrays)
    return np.stack([np.pad(a, ((0, n - a.shape[0]),) + ((0, 0),) * (a.ndim - 1)) for a in arrays])


def _pad_spec(spatial, shape) -> list[int]:
    """``torch.nn.functional.pad`` widths that pad ``spatial`` at the end of each axis to ``shape``
    (:func:`napari_cardiac_priors.nn.losses.pad_widths`, imported when called: no torch here)."""
    from ...nn.losses import pad_widths

    return pad_widths(spatial, shape)


def pad_probabilities(probs, shape):
    """Pad ``(N, C, Z, Y, X)`` probabilities to the T-L grid: background 1 in the padding
    (:func:`napari_cardiac_priors.nn.losses.pad_probabilities`, imported when called)."""
    from ...nn.losses import pad_probabilities as pad

    return pad(probs, shape)


class ACNNTask(Task):
    """ACNN-Seg (``config["task"] == "segmentation"``) or ACNN-SR on phantom LR/HR pairs."""

    Options = ACNNOptions

    @property
    def _segmentation(self) -> bool:
        return self.recipe.config.get("task", "segmentation") == "segmentation"

    def load(self, ids, *, max_cases=None, training=True):
        from ..pairs import phantom_pairs

        return phantom_pairs(ids[:max_cases] if max_cases else ids, crop=tuple(self.options.crop),
                             factor=int(self.recipe.config.get("factor", 5)))

    def batches(self, items, rng):
        import torch

        from ..pairs import sample_pair

        opts = self.options
        for idx in _batches(len(items), self.recipe.batch_size, rng):
            batch = [sample_pair(items[i], rng, motion=bool(opts.motion), noise_sd=float(opts.noise_sd),
                                 zero_slices_p=float(opts.zero_slices_p), max_zero_slices=int(opts.max_zero_slices))
                     for i in idx]
            lr, labels, hr = (torch.from_numpy(_stack_slices(v)) for v in zip(*batch))
            yield lr[:, None].to(self.device), labels.long().to(self.device), hr[:, None].to(self.device)

    def loss(self, net, batch, stage):
        from ...nn.losses import acnn_seg_loss, acnn_sr_loss

        lr, labels, hr = batch
        out = net(lr)
        tl = self.prior()
        lam, terms = float(self.options.lambda1), {}
        if self._segmentation:
            if tl is None:
                return acnn_seg_loss(out, labels, terms=terms), terms
            return acnn_seg_loss(out, labels, tl.autoencoder.encode, lambda1=lam, grid_shape=tl.autoencoder.shape,
                                 terms=terms), terms
        if tl is None:
            return acnn_sr_loss(out, hr, terms=terms), terms
        return acnn_sr_loss(out, hr, tl.predictor, lambda1=lam, grid_shape=tl.predictor.shape, terms=terms), terms

    def validate(self, net, items):
        """Scores on the held-out stacks with their own motion; a recipe trained with zero-filled
        slices (``zero_slices_p``) is also scored with one interior slice of each stack set to
        zero (the same slice every time, drawn with the stack's index), and its score is the mean
        of both."""
        import torch

        from ..pairs import zero_slices

        net.eval()
        stacks = [p.test_stack() for p in items]
        if self.options.zero_slices_p:
            lost = [np.random.default_rng(i).integers(1, s.shape[0] - 1) if s.shape[0] > 2 else None
                    for i, s in enumerate(stacks)]  # one interior slice per stack, if it has one
            stacks += [s if k is None else zero_slices(s, [k]) for s, k in zip(stacks, lost)]
        scores = []
        with torch.no_grad():
            for i, lr in enumerate(stacks):
                p = items[i % len(items)]
                out = net(torch.from_numpy(lr)[None, None].to(self.device))[0]
                if self._segmentation:
                    scores.append(_dice_per_class(out.argmax(0).cpu().numpy(), p.hr_labels, (1, 2)))
                else:
                    scores.append([float(np.abs(out[0].cpu().numpy() - p.hr_image).mean())])
        net.train()
        n = len(items)
        clean, s = np.mean(scores[:n], axis=0), np.mean(scores, axis=0)
        zero = np.mean(scores[n:], axis=0) if len(scores) > n else None
        if self._segmentation:
            extra = {} if zero is None else {"dice_LV_zero": float(zero[0]), "dice_MYO_zero": float(zero[1])}
            return {"dice_LV": float(clean[0]), "dice_MYO": float(clean[1]), **extra, "score": float(s.mean())}
        extra = {} if zero is None else {"mae_zero": float(zero[0])}
        return {"mae": float(clean[0]), **extra, "score": -float(s[0])}
