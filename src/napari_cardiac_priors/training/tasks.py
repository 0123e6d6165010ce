"""What the one training loop (:mod:`.loop`) needs to know about each model family.

A task loads a recipe's data, cuts an epoch into batches, computes the loss of a batch (for
the training stage of the epoch), says which parameters the stage trains, validates, and may
finish the network after training (the T-L code statistics). :func:`make_task` picks the task
from the recipe's architecture.

- :class:`SegmentationTask`: SSLLN and the 2D U-Net on volumes (squared Dice + landmark CE).
- :class:`TLTask`: the T-L network in the paper's stages (``train_options["stages"]``:
  ``[["ae", epochs], ["predictor", epochs], ["joint", epochs]]``).
- :class:`ACNNTask`: ACNN-Seg / ACNN-SR on phantom LR/HR pairs, with the prior of a frozen
  T-L model (``train_options["prior"]``: a registry name or a run folder; None = no prior).
- :class:`SliceTask`: SDNet (and the 2D U-Net baseline of its Table 1) on ACDC slices, with
  labels from only some training subjects (``train_options["labelled_subjects"]``).
"""

from __future__ import annotations

import numpy as np

from .recipes import Recipe


def make_task(recipe: Recipe, *, device: str = "cpu", data_root=None):
    if recipe.architecture == "sdnet" or recipe.data == "acdc-slices":
        return SliceTask(recipe, device, data_root)
    if recipe.architecture == "slab2d":
        from .slab import SlabTask

        return SlabTask(recipe, device, data_root)
    if recipe.architecture in ("sslln", "unet2d"):
        return SegmentationTask(recipe, device, data_root)
    if recipe.architecture == "tl":
        return TLTask(recipe, device, data_root)
    if recipe.architecture == "acnn3d":
        return ACNNTask(recipe, device, data_root)
    raise ValueError(f"no training task for architecture {recipe.architecture!r}")


def _batches(n: int, batch_size: int, rng):
    order = rng.permutation(n)
    return [order[b : b + batch_size] for b in range(0, n - batch_size + 1, batch_size)]


class Task:
    #: the ``train_options`` keys this task reads (the loop's ``betas`` included); any other is refused
    OPTIONS = frozenset({"betas"})

    def __init__(self, recipe: Recipe, device: str, data_root=None):
        unknown = sorted(set(recipe.train_options) - self.OPTIONS)
        if unknown:
            raise ValueError(f"recipe {recipe.name!r}: unknown train_options {unknown}; {type(self).__name__} reads "
                             f"{sorted(self.OPTIONS)}")
        self.recipe, self.device, self.data_root = recipe, device, data_root
        self._prior = None
        self._prior_spacing = None

    def prior(self):
        """The frozen T-L network of ``train_options["prior"]`` (None: no shape prior), loaded once."""
        name = self.recipe.train_options.get("prior")
        if not name:
            return None
        if self._prior is None:
            self._prior = load_frozen_tl(name, device=self.device)
            self._prior_spacing = tuple(float(v) for v in _tl_contract(name)["spacing"])
        return self._prior

    def stage(self, epoch: int) -> str:
        """The training stage of (0-based) ``epoch``."""
        return "train"

    def trainable(self, net, stage: str):
        return net.parameters()

    def calibrate(self, net, items) -> None:
        """Before a validation: bring statistics the network keeps outside its gradients (batch
        norm) in line with the data it will see; nothing by default."""

    def finish(self, net, items) -> bool:
        """Called once after training with the best weights loaded; True if it changed the network
        (the weights are then saved again)."""
        return False


class SegmentationTask(Task):
    """Volumes sampled onto the model grid with the SSLLN augmentation (see :mod:`.data`)."""

    OPTIONS = Task.OPTIONS | {'prior', 'lambda1'}

    def _cases(self, ids):
        from .data import acdc_cases, phantom_cases

        if self.recipe.data == "acdc":
            from ..io.acdc import default_root

            return acdc_cases(self.data_root or default_root(), ids)
        if self.recipe.data in ("phantom-hr", "phantom-lr"):
            return phantom_cases(ids, lr=self.recipe.data == "phantom-lr")
        raise ValueError(f"unknown data source {self.recipe.data!r}")

    def load(self, ids, *, max_cases=None, training=True):
        from .data import load_case_arrays

        cases = self._cases(ids)
        if max_cases:
            cases = cases[:max_cases]
        if not training:
            return cases
        return [load_case_arrays(c, self.recipe.input, landmark_radius_mm=self.recipe.landmark_radius_mm) for c in cases]

    def batches(self, items, rng):
        import torch

        from .data import sample_augmentation, sample_case

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
                grids = np.stack([tl_sample_grid(b[1], sp, prior.autoencoder.shape, self._prior_spacing)
                                  for b, sp in zip(batch, spacing)])
                tensors = (*tensors, torch.from_numpy(grids).to(self.device))
            yield tensors

    def loss(self, net, batch, stage):
        from ..nn.losses import sslln_loss, squared_dice_loss

        x, seg_t, lmk_t = batch[:3]
        out = net(x)
        if isinstance(out, tuple):
            return sslln_loss(out[0], seg_t, out[1], lmk_t, alpha=self.recipe.alpha)
        loss = squared_dice_loss(out, seg_t)
        if len(batch) > 3:
            loss = loss + float(self.recipe.train_options.get("lambda1", 0.01)) * volume_prior_loss(
                self.prior().autoencoder.encode, out, seg_t, batch[3])
        return loss

    def validate(self, net, items):
        from .loop import validate

        out = validate(net, items, self.recipe.input, device=self.device)
        out["score"] = out["dice_mean"]
        return out


def _tl_contract(name) -> dict:
    from pathlib import Path

    path = Path(str(name))
    if path.is_dir():
        import json

        return json.loads((path / "manifest_entry.json").read_text(encoding="utf-8"))["input"]
    from ..registry import get_model

    return get_model(str(name)).input


def tl_sample_grid(labels: np.ndarray, spacing, shape, tl_spacing) -> np.ndarray:
    """Where the voxels of a T-L grid (``shape`` ``(Z, Y, X)`` at ``tl_spacing`` mm, centred on the
    heart of ``labels``) lie in a model-grid volume ``(S, Y, X)`` of ``spacing`` mm: an array
    ``(Z, Y, X, 3)`` of (x, y, z) coordinates in [-1, 1] for ``torch.nn.functional.grid_sample``
    (``align_corners=True``). Axes are the model grid's (no rotation)."""
    heart = np.argwhere(np.isin(labels, (1, 2, 3)))
    centre = heart.mean(axis=0) if heart.size else (np.array(labels.shape, float) - 1) / 2.0
    axes = []
    for a in range(3):
        idx = centre[a] + (np.arange(shape[a]) - (shape[a] - 1) / 2.0) * float(tl_spacing[a]) / float(spacing[a])
        axes.append(2.0 * idx / max(labels.shape[a] - 1, 1) - 1.0)
    z, y, x = np.meshgrid(*axes, indexing="ij")
    return np.stack([x, y, z], axis=-1).astype(np.float32)


def volume_prior_loss(encoder, logits, target, grids):
    """The ACNN shape prior for a volume prediction on the model grid: softmax probabilities and
    the one-hot target are sampled onto each sample's T-L grid (``grids`` from
    :func:`tl_sample_grid`; background 1 outside the volume) and compared through ``encoder``.

    ``logits`` ``(N, C, S, Y, X)``; ``target`` ``(N, S, Y, X)``.
    """
    import torch

    from ..nn.losses import code_distance
    from ..nn.tl import one_hot

    def sample(p, mode):
        fg = torch.nn.functional.grid_sample(p[:, 1:], grids, mode=mode, padding_mode="zeros", align_corners=True)
        return torch.cat([1.0 - fg.sum(1, keepdim=True), fg], 1)

    n_tl = encoder.__self__.n_classes if hasattr(encoder, "__self__") else logits.shape[1]
    probs = sample(torch.softmax(logits.float(), 1), "bilinear")[:, :n_tl]
    with torch.no_grad():
        ref = encoder(sample(one_hot(target, logits.shape[1]), "nearest")[:, :n_tl])
    return code_distance(encoder(probs), ref)


def _fit_to(array: np.ndarray, shape) -> np.ndarray:
    """Fit ``(Z, Y, X)`` to ``shape``: pad with 0 at the end of an axis, or crop it about its centre."""
    out = array
    for axis, t in enumerate(shape):
        n = out.shape[axis]
        if n > t:
            start = (n - int(t)) // 2
            out = np.take(out, range(start, start + int(t)), axis=axis)
    return np.pad(out, [(0, int(t) - int(n)) for n, t in zip(out.shape, shape)])


def _pad_spec(spatial, shape) -> list[int]:
    """``torch.nn.functional.pad`` widths that pad ``spatial`` at the end of each axis to ``shape``."""
    pad = []
    for n, t in zip(reversed(tuple(spatial)), reversed(tuple(shape))):
        if int(t) < int(n):
            raise ValueError(f"{tuple(spatial)} is larger than the T-L grid {tuple(shape)}")
        pad += [0, int(t) - int(n)]
    return pad


def pad_probabilities(probs, shape):
    """Pad ``(N, C, Z, Y, X)`` probabilities to the T-L grid: background 1 in the padding."""
    import torch

    pad = _pad_spec(probs.shape[2:], shape)
    out = torch.nn.functional.pad(probs, pad)
    if any(pad):
        mask = torch.nn.functional.pad(torch.ones_like(probs[:, :1]), pad)
        out[:, :1] = out[:, :1] + (1 - mask)
    return out


def _dice_per_class(pred: np.ndarray, ref: np.ndarray, classes) -> list[float]:
    from ..metrics import dice

    return [dice(pred == c, ref == c) for c in classes]


class TLTask(Task):
    """T-L network on phantom LR-aligned HR labels and images (``data="phantom-pairs"``) or on
    ACDC label volumes (``data="acdc"``).

    ``train_options``: ``stages`` (``[[ae|predictor|joint, epochs], ...]``), ``swap_p`` (label
    swap noise of the autoencoder's input, 0.1), ``dice_weight`` (a squared-Dice term beside
    the autoencoder's cross-entropy, 0), ``shift_px`` (random in-plane shifts of each training
    case by up to this many voxels, 0), ``joint_code_weight`` (0.01); ``crop`` and ``factor``
    for phantom pairs.
    """

    OPTIONS = Task.OPTIONS | {'stages', 'swap_p', 'crop', 'factor', 'joint_code_weight', 'dice_weight', 'shift_px'}

    def _stages(self):
        stages = self.recipe.train_options.get("stages") or [["ae", self.recipe.epochs]]
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
        from .pairs import phantom_pairs

        if self.recipe.data == "acdc":
            return self._load_acdc(ids, max_cases)
        if self.recipe.data != "phantom-pairs":
            raise ValueError(f"the T-L task trains on phantom-pairs or acdc, not {self.recipe.data!r}")
        opts = self.recipe.train_options
        pairs = phantom_pairs(ids[:max_cases] if max_cases else ids, crop=tuple(opts.get("crop", (120, 120))),
                              factor=int(opts.get("factor", 5)))
        shape = self.recipe.config["shape"]
        return [(_fit_to(p.hr_labels, shape), _fit_to(p.hr_image, shape)) for p in pairs]

    def _load_acdc(self, ids, max_cases):
        """ACDC label maps (and images) on the model's fixed grid, centred on each heart."""
        from ..contract import normalise
        from ..io.acdc import default_root
        from ..latent import tl_grid_labels
        from ..volume import resample
        from .data import acdc_cases

        cases = acdc_cases(self.data_root or default_root(), ids)
        items = []
        for c in cases[:max_cases] if max_cases else cases:
            grid = tl_grid_labels(c.labels, self.recipe.input)
            image = resample(c.image.with_array(normalise(c.image.array)), affine=grid.affine, shape=grid.spatial_shape, order=1)
            items.append((grid.array.astype(np.uint8), image.array.astype(np.float32)))
        return items

    def batches(self, items, rng):
        import torch

        from ..nn.tl import label_swap_noise, one_hot

        n_classes = self.recipe.config["n_classes"]
        p = float(self.recipe.train_options.get("swap_p", 0.1))
        reach = int(self.recipe.train_options.get("shift_px", 0))
        g = torch.Generator().manual_seed(int(rng.integers(2**31)))
        for idx in _batches(len(items), self.recipe.batch_size, rng):
            moves = rng.integers(-reach, reach + 1, (len(idx), 2)) if reach else np.zeros((len(idx), 2), int)
            labels = torch.from_numpy(np.stack([shift_inplane(items[i][0], m) for i, m in zip(idx, moves)])).long()
            image = torch.from_numpy(np.stack([shift_inplane(items[i][1], m) for i, m in zip(idx, moves)]))[:, None]
            noisy = one_hot(label_swap_noise(labels, n_classes, p=p, generator=g), n_classes)
            yield noisy.to(self.device), labels.to(self.device), image.to(self.device)

    def loss(self, net, batch, stage):
        import torch

        from ..nn.losses import code_distance, squared_dice_loss
        from ..nn.tl import one_hot

        noisy, labels, image = batch
        if stage in ("ae", "joint"):
            logits = net.autoencoder(noisy)[0]
            ce = torch.nn.functional.cross_entropy(logits, labels)  # clean target
            weight = float(self.recipe.train_options.get("dice_weight", 0.0))
            if weight:
                ce = ce + weight * squared_dice_loss(logits, labels)
            if stage == "ae":
                return ce
        if stage == "predictor":  # the autoencoder is fixed in this stage (batch norm statistics too)
            net.autoencoder.eval()
            with torch.no_grad():
                target = net.autoencoder.encode(one_hot(labels, noisy.shape[1]))
            net.autoencoder.train()
            return code_distance(net.predictor(image), target)
        target = net.autoencoder.encode(one_hot(labels, noisy.shape[1]))
        # joint: both gradients reach the encoder; the code loss is scaled to the CE's range
        return ce + float(self.recipe.train_options.get("joint_code_weight", 0.01)) * code_distance(net.predictor(image), target)

    def validate(self, net, items):
        import torch

        from ..nn.tl import one_hot

        net.eval()
        classes = range(1, self.recipe.config["n_classes"])
        ae, tl = [], []
        with torch.no_grad():
            for labels, image in items:
                lab = torch.from_numpy(labels)[None].long().to(self.device)
                rec = net.autoencoder(one_hot(lab, len(classes) + 1))[0].argmax(1)[0].cpu().numpy()
                ae.append(_dice_per_class(rec, labels, classes))
                code = net.predictor(torch.from_numpy(image)[None, None].to(self.device))
                seg = net.autoencoder.decode(code).argmax(1)[0].cpu().numpy()
                tl.append(_dice_per_class(seg, labels, classes))
        net.train()
        ae, tl = np.mean(ae, axis=0), np.mean(tl, axis=0)
        return {"ae_dice": [float(v) for v in ae], "tl_dice": [float(v) for v in tl],
                "ae_dice_mean": float(ae.mean()), "tl_dice_mean": float(tl.mean()),
                "score": float(ae.mean() + tl.mean()) / 2}

    def finish(self, net, items) -> bool:
        """Store the mean, standard deviation and (shrunk) inverse covariance of the training codes."""
        import torch

        from ..nn.tl import one_hot

        net.eval()
        codes = []
        with torch.no_grad():
            for labels, _ in items:
                lab = torch.from_numpy(labels)[None].long().to(self.device)
                codes.append(net.autoencoder.encode(one_hot(lab, self.recipe.config["n_classes"]))[0].cpu().numpy())
        net.train()
        set_code_statistics(net, np.array(codes))
        return True


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


class ACNNTask(Task):
    """ACNN-Seg (``config["task"] == "segmentation"``) or ACNN-SR on phantom LR/HR pairs."""

    OPTIONS = Task.OPTIONS | {'prior', 'lambda1', 'motion', 'noise_sd', 'crop'}

    def load(self, ids, *, max_cases=None, training=True):
        from .pairs import phantom_pairs

        opts = self.recipe.train_options
        return phantom_pairs(ids[:max_cases] if max_cases else ids, crop=tuple(opts.get("crop", (120, 120))),
                             factor=int(self.recipe.config.get("factor", 5)))

    def batches(self, items, rng):
        import torch

        from .pairs import sample_pair

        opts = self.recipe.train_options
        for idx in _batches(len(items), self.recipe.batch_size, rng):
            batch = [sample_pair(items[i], rng, motion=bool(opts.get("motion", True)), noise_sd=float(opts.get("noise_sd", 0.02)))
                     for i in idx]
            lr, labels, hr = (torch.from_numpy(_stack_slices(v)) for v in zip(*batch))
            yield lr[:, None].to(self.device), labels.long().to(self.device), hr[:, None].to(self.device)

    def loss(self, net, batch, stage):
        from ..nn.losses import acnn_seg_loss, acnn_sr_loss

        lr, labels, hr = batch
        out = net(lr)
        tl = self.prior()
        lam = float(self.recipe.train_options.get("lambda1", 0.01))
        if self.recipe.config.get("task", "segmentation") == "segmentation":
            if tl is None:
                return acnn_seg_loss(out, labels)
            import torch

            from ..nn.losses import shape_prior_loss

            shape = tl.autoencoder.shape
            probs = pad_probabilities(torch.softmax(out, 1), shape)
            padded = torch.nn.functional.pad(labels, _pad_spec(labels.shape[1:], shape))  # background
            return torch.nn.functional.cross_entropy(out, labels) + lam * shape_prior_loss(tl.autoencoder.encode, probs, padded)
        if tl is None:
            return acnn_sr_loss(out, hr)
        import torch

        pad = _pad_spec(out.shape[2:], tl.predictor.shape)
        return acnn_sr_loss(torch.nn.functional.pad(out, pad), torch.nn.functional.pad(hr, pad), tl.predictor, lambda1=lam)

    def validate(self, net, items):
        import torch

        net.eval()
        scores = []
        with torch.no_grad():
            for p in items:
                out = net(torch.from_numpy(p.test_stack())[None, None].to(self.device))[0]
                if self.recipe.config.get("task", "segmentation") == "segmentation":
                    scores.append(_dice_per_class(out.argmax(0).cpu().numpy(), p.hr_labels, (1, 2)))
                else:
                    scores.append([float(np.abs(out[0].cpu().numpy() - p.hr_image).mean())])
        net.train()
        s = np.mean(scores, axis=0)
        if self.recipe.config.get("task", "segmentation") == "segmentation":
            return {"dice_LV": float(s[0]), "dice_MYO": float(s[1]), "score": float(s.mean())}
        return {"mae": float(s[0]), "score": -float(s[0])}


def _stack_slices(arrays) -> np.ndarray:
    """Stack ``(Z, Y, X)`` arrays whose slice counts differ (LR stacks of 8-12 slices and their HR
    grids): each is padded with zeros after its last slice to the largest count (background:
    label 0, intensity 0, as outside the stack)."""
    n = max(a.shape[0] for a in arrays)
    return np.stack([np.pad(a, ((0, n - a.shape[0]),) + ((0, 0),) * (a.ndim - 1)) for a in arrays])


def load_frozen_tl(name, *, device="cpu"):
    """A T-L network from the registry (name) or a training run folder, in eval mode, frozen."""
    from pathlib import Path

    from ..nn import build

    path = Path(str(name))
    if path.is_dir():
        import json

        from safetensors.torch import load_file

        entry = json.loads((path / "manifest_entry.json").read_text(encoding="utf-8"))
        net = build("tl", entry["config"])
        net.load_state_dict({k: v.float() for k, v in load_file(str(path / "model.safetensors")).items()})
    else:
        from ..inference import load_model

        net = load_model(str(name), device=device).network
    return net.to(device).eval().requires_grad_(False)


# -- SDNet and its U-Net baseline on ACDC slices ---------------------------------------------------
def acdc_slices(cases, *, size=(224, 224), spacing=(1.37, 1.37)):
    """``[(image (H, W) in [-1, 1], labels (H, W), case id)]``: every slice of each case resampled
    in-plane to ``spacing`` mm about the image centre, each volume's 5th-95th percentile -> [-1, 1]."""
    from ..contract import normalise
    from ..latent import _slice_grid
    from ..volume import resample

    out = []
    for c in cases:
        img = c.image.with_array(normalise(c.image.array, "percentile_5_95_sym"))
        for k in range(c.image.spatial_shape[0]):
            one, lab = img.slice(k), c.labels.slice(k)
            grid = _slice_grid(one, spacing, size)
            out.append((resample(one, grid, order=1, cval=-1.0).array[0].astype(np.float32),
                        resample(lab, grid, order=0).array[0].astype(np.uint8), c.id))
    return out


class SliceTask(Task):
    """SDNet (``architecture="sdnet"``) or a 2D U-Net on ACDC slices (``data="acdc-slices"``).

    ``train_options``: ``labelled_subjects`` (None: all; k: the first k training patients of a
    seeded permutation keep their labels, the others only their images), ``rotation_deg``
    (augmentation: uniform rotation in +- that, the paper's 90), ``size``, ``spacing``,
    ``adversarial_from_epoch`` (SDNet: the mask critic and its loss term join from this 0-based
    epoch on; the epochs before are stage ``"warmup"``; default 0, the paper's schedule),
    ``labelled_per_batch`` (SDNet with some labels withheld: a batch without a labelled slice
    gets this many, drawn in turn from the labelled slices, in place of unlabelled ones; default
    1. With one labelled subject in 80, plain shuffling puts a labelled slice in 1 batch of 20
    and the Dice term would hardly ever speak).
    """

    OPTIONS = Task.OPTIONS | {'labelled_subjects', 'adversarial_from_epoch', 'size', 'spacing', 'rotation_deg', 'labelled_per_batch', 'weights'}

    def stage(self, epoch):
        start = int(self.recipe.train_options.get("adversarial_from_epoch") or 0)
        return "warmup" if self.recipe.architecture == "sdnet" and epoch < start else "train"

    def _patients(self, ids):
        from ..io.acdc import default_root
        from .data import acdc_cases

        return acdc_cases(self.data_root or default_root(), ids)

    def labelled_ids(self) -> set:
        k = self.recipe.train_options.get("labelled_subjects")
        ids = list(self.recipe.train_ids)
        if k is None:
            return set(ids)
        order = np.random.default_rng(self.recipe.seed).permutation(len(ids))
        return {ids[i] for i in order[: int(k)]}

    def load(self, ids, *, max_cases=None, training=True):
        opts = self.recipe.train_options
        cases = self._patients(ids)
        if max_cases:
            cases = cases[:max_cases]
        slices = acdc_slices(cases, size=tuple(opts.get("size", (224, 224))), spacing=tuple(opts.get("spacing", (1.37, 1.37))))
        if not training:
            return slices
        labelled = {f"patient{int(i):03d}" for i in self.labelled_ids()}
        items = [(img, lab, cid.split("_")[0] in labelled) for img, lab, cid in slices]
        if self.recipe.architecture != "sdnet":  # a plain U-Net learns from labelled slices only
            items = [it for it in items if it[2]]
        return items

    def batches(self, items, rng):
        import torch
        from scipy import ndimage

        max_rot = float(self.recipe.train_options.get("rotation_deg", 90.0))
        with_labels = np.flatnonzero([it[2] for it in items])
        k = int(self.recipe.train_options.get("labelled_per_batch", 1))
        if self.recipe.architecture != "sdnet" or len(with_labels) in (0, len(items)):
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
        import torch

        from ..nn.losses import squared_dice_loss
        from ..nn.sdnet import SDNET_WEIGHTS, kl_divergence, lsgan_loss, soft_dice_loss, z_reconstruction_loss

        image, labels, labelled = batch
        if self.recipe.architecture != "sdnet":
            logits = net(image)  # UNet2D: (N, C, 1, H, W) for one-slice inputs
            return squared_dice_loss(logits.squeeze(2) if logits.dim() == 5 else logits, labels)
        w = {**SDNET_WEIGHTS, **self.recipe.train_options.get("weights", {})}
        out = net(image)
        loss = w["reconstruction"] * (out["reconstruction"] - image).abs().mean()
        loss = loss + w["kl"] * kl_divergence(out["mu"], out["logvar"])
        loss = loss + w["z_reconstruction"] * z_reconstruction_loss(net, out["anatomy"])
        seg = out["segmentation"]
        if labelled.any():
            loss = loss + w["dice"] * soft_dice_loss(seg[labelled], labels[labelled])
        if stage == "warmup":
            return loss
        # LSGAN on masks: the critic learns real (labelled) vs predicted masks; the generator
        # term sees the critic's parameters detached, so one backward pass trains both sides
        disc = net.discriminator
        fake = seg[:, 1:]
        frozen = {k: v.detach() for k, v in disc.named_parameters()}
        loss = loss + w["adversarial"] * lsgan_loss(torch.func.functional_call(disc, frozen, (fake,)), True)
        if labelled.any():
            real = torch.nn.functional.one_hot(labels[labelled], seg.shape[1]).movedim(-1, 1).float()[:, 1:]
            loss = loss + 0.5 * (lsgan_loss(disc(real), True) + lsgan_loss(disc(fake.detach()), False))
        return loss

    def validate(self, net, items):
        import torch

        from ..metrics import dice

        net.eval()
        per_case: dict = {}
        mae = []
        with torch.no_grad():
            for i in range(0, len(items), 16):
                chunk = items[i : i + 16]
                x = torch.from_numpy(np.stack([c[0] for c in chunk]))[:, None].to(self.device)
                if self.recipe.architecture == "sdnet":
                    out = net(x)
                    pred = out["segmentation"].argmax(1).cpu().numpy()
                    mae.append(float((out["reconstruction"] - x).abs().mean()))
                else:
                    o = net(x)
                    pred = (o.squeeze(2) if o.dim() == 5 else o).argmax(1).cpu().numpy()
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
        if mae:
            out["reconstruction_mae"] = float(np.mean(mae))
        return out

    def finish(self, net, items) -> bool:
        """SDNet: store the mean and standard deviation of the training slices' z (mu)."""
        if self.recipe.architecture != "sdnet":
            return False
        import torch

        net.eval()
        mus = []
        with torch.no_grad():
            for i in range(0, len(items), 16):
                x = torch.from_numpy(np.stack([c[0] for c in items[i : i + 16]]))[:, None].to(self.device)
                mus.append(net.encode(x)[2].float().cpu().numpy())
        net.train()
        mus = np.concatenate(mus)
        net.z_mean.copy_(torch.as_tensor(mus.mean(0), dtype=torch.float32))
        net.z_std.copy_(torch.as_tensor(mus.std(0) + 1e-6, dtype=torch.float32))
        return True
