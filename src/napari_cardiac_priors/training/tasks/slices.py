"""SDNet and the 2D U-Net baseline of its Table 1 on ACDC slices, with labels from only some
training subjects (``train_options["labelled_subjects"]``).

:class:`SliceTask` holds what both share (slices, labelled subjects, rotation, batches, 3D
Dice per volume); what differs per architecture is a small strategy: :class:`_UNetSlices`
(labelled slices only, squared Dice) or :class:`_SDNetSlices` (every slice, the SDNet cost with
its critic, a warm-up stage, the statistics of z after training).
"""

from __future__ import annotations

import numpy as np

from .base import Task, _batches
from .options import SliceOptions


def acdc_slices(cases, *, size=(224, 224), spacing=(1.37, 1.37)):
    """``[(image (H, W) in [-1, 1], labels (H, W), case id)]``: every slice of each case resampled
    in-plane to ``spacing`` mm about the image centre, each volume's 5th-95th percentile -> [-1, 1]."""
    from ...contract import normalise
    from ...latent import _slice_grid
    from ...volume import resample

    out = []
    for c in cases:
        img = c.image.with_array(normalise(c.image.array, "percentile_5_95_sym"))
        for k in range(c.image.spatial_shape[0]):
            one, lab = img.slice(k), c.labels.slice(k)
            grid = _slice_grid(one, spacing, size)
            out.append((resample(one, grid, order=1, cval=-1.0).array[0].astype(np.float32),
                        resample(lab, grid, order=0).array[0].astype(np.uint8), c.id))
    return out


class _UNetSlices:
    """The 2D U-Net baseline: trains on the labelled slices only, with the squared Dice loss."""

    #: whether unlabelled slices are kept for training (and labelled ones dealt into every batch)
    semi_supervised = False
    #: whether a mask critic joins at ``adversarial_from_epoch`` (the epochs before: stage "warmup")
    has_critic = False

    @staticmethod
    def _logits(net, image):
        out = net(image)  # UNet2D: (N, C, 1, H, W) for one-slice inputs
        return out.squeeze(2) if out.dim() == 5 else out

    def loss(self, net, batch, stage, options):
        from ...nn.losses import squared_dice_loss

        image, labels, _ = batch
        return squared_dice_loss(self._logits(net, image), labels)

    def predict(self, net, x):
        """``(labels (N, H, W) numpy, reconstruction errors per slice or None)`` of a batch ``x`` ``(N, 1, H, W)``."""
        return self._logits(net, x).argmax(1).cpu().numpy(), None

    def finish(self, net, items, device) -> bool:
        return False


class _SDNetSlices:
    """SDNet: every slice trains (the labelled ones also the Dice and critic terms)."""

    semi_supervised = True
    has_critic = True

    def loss(self, net, batch, stage, options):
        from ...nn.losses import sdnet_loss

        image, labels, labelled = batch
        if stage == "decoder":  # the anatomy as inference sees it; no mask terms; no batch norm statistics move
            net.anatomy_encoder.eval()
            net.segmentor.eval()
            labelled = labelled & False
        terms = {}
        loss = sdnet_loss(net, net(image), image, labels, labelled, weights=dict(options.weights),
                          adversarial=stage not in ("warmup", "decoder"), terms=terms)
        return loss, terms

    def predict(self, net, x):
        """Also the per-slice Pearson correlation of the reconstruction (mu, not a sampled z) with ``x``."""
        import torch

        anatomy, _, mu, _ = net.encode(x)
        rec = net.decoder(anatomy, mu)
        a = (rec - rec.mean((1, 2, 3), keepdim=True)).flatten(1)
        b = (x - x.mean((1, 2, 3), keepdim=True)).flatten(1)
        corr = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-12)
        mae = (rec - x).abs().mean((1, 2, 3))
        seg = net.segmentor(anatomy).argmax(1).cpu().numpy()
        return seg, {"mae": mae.cpu().numpy(), "corr": torch.nan_to_num(corr).cpu().numpy()}

    def finish(self, net, items, device) -> bool:
        """Store the mean and standard deviation of the training slices' z (mu)."""
        import torch

        net.eval()
        mus = []
        with torch.no_grad():
            for i in range(0, len(items), 16):
                x = torch.from_numpy(np.stack([c[0] for c in items[i : i + 16]]))[:, None].to(device)
                mus.append(net.encode(x)[2].float().cpu().numpy())
        net.train()
        mus = np.concatenate(mus)
        net.z_mean.copy_(torch.as_tensor(mus.mean(0), dtype=torch.float32))
        net.z_std.copy_(torch.as_tensor(mus.std(0) + 1e-6, dtype=torch.float32))
        return True


class SliceTask(Task):
    """SDNet (``architecture="sdnet"``) or a 2D U-Net on ACDC slices (``data="acdc-slices"``).

    ``train_options``: ``labelled_subjects`` (None: all; k: the first k training patients of a
    seeded permutation keep their labels, the others only their images), ``rotation_deg``
    (augmentation: uniform rotation in +- that, the paper's 90), ``size``, ``spacing``,
    ``adversarial_from_epoch`` (SDNet: the mask critic and its loss term join from this 0-based
    epoch on; the epochs before are stage ``"warmup"``; default 0, the paper's schedule),
    ``decoder_from_epoch`` (SDNet: from this epoch on, stage ``"decoder"``: only the modality
    encoder and the decoder learn, on the reconstruction, KL and z terms),
    ``labelled_per_batch`` (SDNet with some labels withheld: a batch without a labelled slice
    gets this many, drawn in turn from the labelled slices, in place of unlabelled ones; default
    1. With one labelled subject in 80, plain shuffling puts a labelled slice in 1 batch of 20
    and the Dice term would hardly ever speak), ``weights`` (SDNet: loss weights over the paper's).
    """

    Options = SliceOptions

    def __init__(self, recipe, device, data_root=None):
        super().__init__(recipe, device, data_root)
        self._arch = _SDNetSlices() if recipe.architecture == "sdnet" else _UNetSlices()

    def stage(self, epoch):
        if not self._arch.has_critic:
            return "train"
        decoder = self.options.decoder_from_epoch
        if decoder is not None and epoch >= int(decoder):
            return "decoder"
        return "warmup" if epoch < int(self.options.adversarial_from_epoch or 0) else "train"

    def trainable(self, net, stage):
        if stage == "decoder":
            return [*net.modality_encoder.parameters(), *net.decoder.parameters()]
        return net.parameters()

    def _patients(self, ids):
        from ...io.acdc import default_root
        from ..data import acdc_cases

        return acdc_cases(self.data_root or default_root(), ids)

    def labelled_ids(self) -> set:
        k = self.options.labelled_subjects
        ids = list(self.recipe.train_ids)
        if k is None:
            return set(ids)
        order = np.random.default_rng(self.recipe.seed).permutation(len(ids))
        return {ids[i] for i in order[: int(k)]}

    def load(self, ids, *, max_cases=None, training=True):
        opts = self.options
        cases = self._patients(ids)
        if max_cases:
            cases = cases[:max_cases]
        slices = acdc_slices(cases, size=tuple(opts.size), spacing=tuple(opts.spacing))
        if not training:
            return slices
        labelled = {f"patient{int(i):03d}" for i in self.labelled_ids()}
        items = [(img, lab, cid.split("_")[0] in labelled) for img, lab, cid in slices]
        if not self._arch.semi_supervised:
            items = [it for it in items if it[2]]
        return items

    def batches(self, items, rng):
        import torch
        from scipy import ndimage

        max_rot = float(self.options.rotation_deg)
        with_labels = np.flatnonzero([it[2] for it in items])
        k = int(self.options.labelled_per_batch)
        if not self._arch.semi_supervised or len(with_labels) in (0, len(items)):
            k = 0

        def in_turn():  # the labelled slices, each once per round, in a new order every round
            while True:
                yield from rng.permutation(with_labels)

        turn = in_turn()
        for idx in _batches(len(items), self.recipe.batch_size, rng):
            if k and not any(items[i][2] for i in idx):
                idx = idx.copy()
                idx[:k] = [next(turn) for _ in idx[:k]]
            imgs, labs, flags = [], [], []
            for i in idx:
                img, lab, labelled = items[i]
                angle = rng.uniform(-max_rot, max_rot) if max_rot else 0.0
                if angle:
                    img = ndimage.rotate(img, angle, reshape=False, order=1, cval=-1.0)
                    lab = ndimage.rotate(lab, angle, reshape=False, order=0, cval=0)
                imgs.append(img)
                labs.append(lab)
                flags.append(labelled)
            yield (torch.from_numpy(np.stack(imgs))[:, None].to(self.device), torch.from_numpy(np.stack(labs)).long().to(self.device),
                   torch.tensor(flags, device=self.device))

    def loss(self, net, batch, stage):
        return self._arch.loss(net, batch, stage, self.options)

    def validate(self, net, items):
        import torch

        from ...metrics import dice

        net.eval()
        per_case: dict = {}
        mae, corr = [], []
        with torch.no_grad():
            for i in range(0, len(items), 16):
                chunk = items[i : i + 16]
                x = torch.from_numpy(np.stack([c[0] for c in chunk]))[:, None].to(self.device)
                pred, err = self._arch.predict(net, x)
                if err is not None:
                    mae.extend(err["mae"])
                    corr.extend(err["corr"])
                for (img, lab, cid), p in zip(chunk, pred):
                    acc = per_case.setdefault(cid, [[], []])
                    acc[0].append(p)
                    acc[1].append(lab)
        net.train()
        scores = {1: [], 2: [], 3: []}
        for p, g in per_case.values():  # 3D Dice per volume (stacked slices)
            p, g = np.stack(p), np.stack(g)
            for c in scores:
                scores[c].append(dice(p == c, g == c))
        out = {"dice_LV": float(np.mean(scores[1])), "dice_MYO": float(np.mean(scores[2])), "dice_RV": float(np.mean(scores[3]))}
        out["dice_mean"] = out["score"] = float(np.mean(list(out.values())))
        if mae:  # SDNet: segmentation and reconstruction count alike, unless the recipe selects by Dice
            out["reconstruction_mae"] = float(np.mean(mae))
            out["reconstruction_corr"] = float(np.mean(corr))
            if self.options.select_by == "dice+reconstruction":
                out["score"] = (out["dice_mean"] + out["reconstruction_corr"]) / 2
        return out

    def finish(self, net, items) -> bool:
        """SDNet: store the mean and standard deviation of the training slices' z (mu)."""
        return self._arch.finish(net, items, self.device)
