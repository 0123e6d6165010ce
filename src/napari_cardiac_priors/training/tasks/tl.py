"""The T-L network (ACNN's shape prior: a label autoencoder and a predictor from images to the
same code) in the paper's stages, and the code statistics it keeps after training."""

from __future__ import annotations

import numpy as np

from .base import Task, _batches, _dice_per_class
from .options import TLOptions


def _fit_to(array: np.ndarray, shape) -> np.ndarray:
    """Fit ``(Z, Y, X)`` to ``shape``: pad with 0 at the end of an axis, or crop it about its centre."""
    out = array
    for axis, t in enumerate(shape):
        n = out.shape[axis]
        if n > t:
            start = (n - int(t)) // 2
            out = np.take(out, range(start, start + int(t)), axis=axis)
    return np.pad(out, [(0, int(t) - int(n)) for n, t in zip(out.shape, shape)])


def shift_inplane(array: np.ndarray, move) -> np.ndarray:
    """``array`` ``(..., Y, X)`` moved by ``move`` ``(dy, dx)`` whole voxels; what enters is 0."""
    out = np.zeros_like(array)
    dy, dx = (int(v) for v in move)
    ny, nx = array.shape[-2:]
    src = (..., slice(max(0, -dy), ny - max(0, dy)), slice(max(0, -dx), nx - max(0, dx)))
    dst = (..., slice(max(0, dy), ny - max(0, -dy)), slice(max(0, dx), nx - max(0, -dx)))
    out[dst] = array[src]
    return out


def set_code_statistics(net, codes: np.ndarray, *, shrinkage: float = 0.1) -> None:
    """Put the codes' mean, std and the inverse of the shrunk covariance
    ``(1 - s) C + s diag(C)`` (well conditioned with few samples) into the network's buffers."""
    import torch

    mean = codes.mean(0)
    cov = np.cov(codes, rowvar=False) if len(codes) > 1 else np.eye(codes.shape[1])
    ridge = 1e-6 * float(np.mean(np.diag(cov))) + 1e-30  # relative: the codes' scale is the model's own
    cov = (1 - shrinkage) * cov + shrinkage * np.diag(np.diag(cov)) + ridge * np.eye(len(mean))
    dev = net.code_mean.device
    net.code_mean.copy_(torch.as_tensor(mean, dtype=torch.float32, device=dev))
    net.code_std.copy_(torch.as_tensor(codes.std(0) + 1e-6, dtype=torch.float32, device=dev))
    inv = np.linalg.inv(cov)
    net.code_cov_inv.copy_(torch.as_tensor(inv, dtype=torch.float32, device=dev))
    d = codes - mean
    dist = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", d, inv, d), 0.0))
    net.distance_quantiles.copy_(torch.as_tensor(np.percentile(dist, np.arange(101)), dtype=torch.float32, device=dev))


class TLTask(Task):
    """T-L network on phantom LR-aligned HR labels and images (``data="phantom-pairs"``) or on
    ACDC label volumes (``data="acdc"``).

    ``train_options``: ``stages`` (``[[ae|predictor|joint, epochs], ...]``), ``swap_p`` (label
    swap noise of the autoencoder's input, 0.1), ``dice_weight`` (a squared-Dice term beside
    the autoencoder's cross-entropy, 0), ``shift_px`` (random in-plane shifts of each training
    case by up to this many voxels, 0), ``joint_code_weight`` (0.01); ``crop`` and ``factor``
    for phantom pairs.
    """

    Options = TLOptions
    refitted = ("preview_blocks",)  # the preview head is fitted to the decoder after training

    def _stages(self):
        stages = self.options.stages or [["ae", self.recipe.epochs]]
        out = []
        for name, n in stages:
            out += [name] * int(n)
        return out

    def stage(self, epoch):
        stages = self._stages()
        return stages[min(epoch, len(stages) - 1)]

    def trainable(self, net, stage):
        if stage == "ae":
            return net.autoencoder.parameters()
        if stage == "predictor":
            return net.predictor.parameters()
        return net.parameters()

    def load(self, ids, *, max_cases=None, training=True):
        from ..pairs import phantom_pairs

        if self.recipe.data == "acdc":
            return self._load_acdc(ids, max_cases)
        if self.recipe.data != "phantom-pairs":
            raise ValueError(f"the T-L task trains on phantom-pairs or acdc, not {self.recipe.data!r}")
        pairs = phantom_pairs(ids[:max_cases] if max_cases else ids, crop=tuple(self.options.crop),
                              factor=int(self.options.factor))
        shape = self.recipe.config["shape"]
        return [(_fit_to(p.hr_labels, shape), _fit_to(p.hr_image, shape)) for p in pairs]

    def _load_acdc(self, ids, max_cases):
        """ACDC label maps (and images) on the model's fixed grid, centred on each heart."""
        from ...contract import normalise
        from ...io.acdc import default_root
        from ...latent import tl_grid_labels
        from ...volume import resample
        from ..data import acdc_cases

        cases = acdc_cases(self.data_root or default_root(), ids)
        items = []
        for c in cases[:max_cases] if max_cases else cases:
            grid = tl_grid_labels(c.labels, self.recipe.input)
            image = resample(c.image.with_array(normalise(c.image.array)), affine=grid.affine, shape=grid.spatial_shape, order=1)
            items.append((grid.array.astype(np.uint8), image.array.astype(np.float32)))
        return items

    def batches(self, items, rng):
        import torch

        from ...nn.tl import label_swap_noise, one_hot

        n_classes = self.recipe.config["n_classes"]
        p, reach = float(self.options.swap_p), int(self.options.shift_px)
        g = torch.Generator().manual_seed(int(rng.integers(2**31)))
        for idx in _batches(len(items), self.recipe.batch_size, rng):
            moves = rng.integers(-reach, reach + 1, (len(idx), 2)) if reach else np.zeros((len(idx), 2), int)
            labels = torch.from_numpy(np.stack([shift_inplane(items[i][0], m) for i, m in zip(idx, moves)])).long()
            image = torch.from_numpy(np.stack([shift_inplane(items[i][1], m) for i, m in zip(idx, moves)]))[:, None]
            noisy = one_hot(label_swap_noise(labels, n_classes, p=p, generator=g), n_classes)
            yield noisy.to(self.device), labels.to(self.device), image.to(self.device)

    def loss(self, net, batch, stage):
        import torch

        from ...nn.losses import code_distance, tl_autoencoder_loss
        from ...nn.tl import one_hot

        noisy, labels, image = batch
        terms = {}
        if stage in ("ae", "joint"):  # the clean labels are the target of the noisy input
            ce = tl_autoencoder_loss(net.autoencoder(noisy)[0], labels,
                                     dice_weight=float(self.options.dice_weight), terms=terms)
            if stage == "ae":
                return ce, terms
        if stage == "predictor":  # the autoencoder is fixed in this stage (batch norm statistics too)
            net.autoencoder.eval()
            with torch.no_grad():
                target = net.autoencoder.encode(one_hot(labels, noisy.shape[1]))
            net.autoencoder.train()
            return code_distance(net.predictor(image), target)
        target = net.autoencoder.encode(one_hot(labels, noisy.shape[1]))
        # joint: both gradients reach the encoder; the code loss is scaled to the CE's range
        code = float(self.options.joint_code_weight) * code_distance(net.predictor(image), target)
        return ce + code, {**terms, "code": float(code.detach())}

    def validate(self, net, items):
        import torch

        from ...nn.tl import one_hot

        from ...nn.layers import class_labels

        net.eval()
        classes = range(1, self.recipe.config["n_classes"])
        ae, tl, preview = [], [], []
        with torch.no_grad():
            for labels, image in items:
                lab = torch.from_numpy(labels)[None].long().to(self.device)
                rec = net.autoencoder(one_hot(lab, len(classes) + 1))[0].argmax(1)[0].cpu().numpy()
                ae.append(_dice_per_class(rec, labels, classes))
                code = net.predictor(torch.from_numpy(image)[None, None].to(self.device))
                seg = net.autoencoder.decode(code).argmax(1)[0].cpu().numpy()
                tl.append(_dice_per_class(seg, labels, classes))
                if net.autoencoder.preview_blocks is not None:  # the preview against the full decoding
                    rough = class_labels(net.autoencoder.decode_preview(code))[0].cpu().numpy()
                    preview.append(_dice_per_class(rough, seg, classes))
        net.train()
        ae, tl = np.mean(ae, axis=0), np.mean(tl, axis=0)
        out = {"ae_dice": [float(v) for v in ae], "tl_dice": [float(v) for v in tl],
               "ae_dice_mean": float(ae.mean()), "tl_dice_mean": float(tl.mean()),
               "score": float(ae.mean() + tl.mean()) / 2}
        if preview:
            out["preview_dice"] = [float(v) for v in np.mean(preview, axis=0)]
        return out

    def finish(self, net, items) -> bool:
        """Store the mean, standard deviation and (shrunk) inverse covariance of the training codes;
        fit the preview head (if the model has one) to the decoding of the final weights."""
        import torch

        from ...nn.tl import fit_preview, one_hot

        net.eval()
        codes = []
        with torch.no_grad():
            for labels, _ in items:
                lab = torch.from_numpy(labels)[None].long().to(self.device)
                codes.append(net.autoencoder.encode(one_hot(lab, self.recipe.config["n_classes"]))[0].cpu().numpy())
        net.train()
        set_code_statistics(net, np.array(codes))
        if net.autoencoder.preview_blocks is not None:
            g = torch.Generator().manual_seed(self.recipe.seed)
            fit_preview(net.autoencoder, torch.as_tensor(np.array(codes)).to(self.device),
                        steps=int(self.options.preview_steps), generator=g)
            net.train()
        return True
