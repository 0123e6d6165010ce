"""SSLLN and the 2D U-Net on whole volumes: squared Dice (+ the landmark cross-entropy), and
with ``train_options["prior"]`` the ACNN shape prior of a frozen T-L network."""

from __future__ import annotations

import numpy as np

from .base import Task, _batches
from .options import PriorOptions
from .prior import tl_sample_grid


def validate_volumes(network, cases, contract, *, device="cpu") -> dict:
    """Mean Dice per structure (on each case's own grid) and mean landmark error (mm)."""

    from ...contract import probabilities_to_input, to_model
    from ...inference import keep_largest_component, predict_probabilities
    from ...landmarks import from_probabilities
    from ...metrics import STRUCTURES, dice, landmark_errors

    was_training = network.training
    network.eval()
    dices = {name: [] for name in STRUCTURES.values()}
    errs = []
    for case in cases:
        image, grid = to_model(case.image, contract)
        seg_p, lmk_p = predict_probabilities(network, image, device=device)
        labels = keep_largest_component(probabilities_to_input(seg_p, grid, case.image).argmax(0).astype(np.uint8))
        for v, name in STRUCTURES.items():
            if v < seg_p.shape[0]:
                dices[name].append(dice(labels == v, case.labels.array == v))
        if lmk_p is not None:
            errs.append(landmark_errors(from_probabilities(lmk_p, grid.volume(lmk_p[0]), notes=[]), case.landmarks))
    network.train(was_training)
    out = {f"dice_{k}": float(np.mean(v)) for k, v in dices.items() if v}
    out["dice_mean"] = float(np.mean([out[k] for k in out]))
    if errs:
        e = np.array(errs)
        out["landmark_error_mm_median"] = [float(v) for v in np.nanmedian(e, axis=0)]
        out["landmark_missing"] = int(np.isnan(e).sum())
    return out


class SegmentationTask(Task):
    """Volumes sampled onto the model grid with the SSLLN augmentation (see :mod:`..data`)."""

    Options = PriorOptions

    def _cases(self, ids):
        from ..data import acdc_cases, phantom_cases

        if self.recipe.data == "acdc":
            from ...io.acdc import default_root

            return acdc_cases(self.data_root or default_root(), ids)
        if self.recipe.data in ("phantom-hr", "phantom-lr"):
            return phantom_cases(ids, lr=self.recipe.data == "phantom-lr")
        raise ValueError(f"unknown data source {self.recipe.data!r}")

    def load(self, ids, *, max_cases=None, training=True):
        from ..data import load_case_arrays

        cases = self._cases(ids)
        if max_cases:
            cases = cases[:max_cases]
        if not training:
            return cases
        return [load_case_arrays(c, self.recipe.input, landmark_radius_mm=self.recipe.landmark_radius_mm) for c in cases]

    def batches(self, items, rng):
        import torch

        from ..data import sample_augmentation, sample_case

        r = self.recipe
        contract = dict(r.input)
        S = contract["size"][0]
        if r.train_crop:
            contract["size"] = [S, *r.train_crop]
        prior = self.prior()
        for idx in _batches(len(items), r.batch_size, rng):
            batch = [sample_case(items[i], contract, sample_augmentation(rng, S, **r.augment)) for i in idx]
            tensors = tuple(torch.from_numpy(np.stack(v)).to(self.device) for v in zip(*batch))
            if prior is not None:  # where the T-L grid lies in each sample (centred on its heart)
                spacing = [(float(items[i]["volume"].spacing[0]), *map(float, contract["spacing"][1:])) for i in idx]
                grids = np.stack([tl_sample_grid(b[1], sp, prior.autoencoder.shape, self._prior_spacing,
                                                pose=self._prior_pose)
                                  for b, sp in zip(batch, spacing)])
                tensors = (*tensors, torch.from_numpy(grids).to(self.device))
            yield tensors

    def loss(self, net, batch, stage):
        from ...nn.losses import sslln_loss, squared_dice_loss, volume_prior_loss

        x, seg_t, lmk_t = batch[:3]
        out = net(x)
        if isinstance(out, tuple):
            return sslln_loss(out[0], seg_t, out[1], lmk_t, alpha=self.recipe.alpha)
        loss = squared_dice_loss(out, seg_t)
        if len(batch) > 3:
            loss = loss + float(self.options.lambda1) * volume_prior_loss(
                self.prior().autoencoder.encode, out, seg_t, batch[3])
        return loss

    def validate(self, net, items):
        out = validate_volumes(net, items, self.recipe.input, device=self.device)
        out["score"] = out["dice_mean"]
        return out
