"""Label fusion of warped atlases: majority vote (baseline) and non-local patch fusion (SSLLN eq. 5).

Inputs are atlases already warped into the target grid: labels ``(A, Z, Y, X)`` (non-negative
integers), images ``(A, Z, Y, X)``; the result is a ``(Z, Y, X)`` label map (numpy, the
dtype of the warped labels).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError


def _labels_tensor(x, name: str, device) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x), device=device)
    if t.ndim != 4:
        raise InputError(f"{name} must be (A, Z, Y, X), got shape {tuple(t.shape)}")
    if t.shape[0] == 0:
        raise InputError(f"{name} holds no atlas")
    if t.dtype.is_floating_point or t.dtype == torch.bool:
        if t.dtype != torch.bool and not torch.equal(t, torch.round(t)):
            raise InputError(f"{name} must hold integer labels")
    t = t.to(torch.int64)
    if int(t.min()) < 0:
        raise InputError(f"{name} must hold non-negative labels")
    return t


def _dtype(x):
    return np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x).dtype


def majority_vote(warped, *, n_labels: int | None = None) -> np.ndarray:
    """Per-voxel most frequent label of ``warped`` ``(A, Z, Y, X)``; ties go to the lowest label.

    Returns ``(Z, Y, X)`` with the dtype of ``warped``.
    """
    lab = _labels_tensor(warped, "warped", "cpu")
    k = int(lab.max()) + 1 if n_labels is None else int(n_labels)
    counts = torch.zeros((k, *lab.shape[1:]), dtype=torch.int32)
    counts.scatter_add_(0, lab, torch.ones_like(lab, dtype=torch.int32))
    return counts.argmax(0).numpy().astype(_dtype(warped))  # argmax: first maximum -> lowest label


def _crop_pad(x: torch.Tensor, start, stop) -> torch.Tensor:
    """``x[..., start:stop]`` over the last three axes, zero-filled where the box leaves ``x``."""
    shape = x.shape[-3:]
    lo = [max(a, 0) for a in start]
    hi = [min(b, n) for b, n in zip(stop, shape)]
    part = x[..., lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    pad = []
    for d in (2, 1, 0):
        pad += [lo[d] - start[d], stop[d] - hi[d]]
    return F.pad(part, pad) if any(pad) else part


def _box_sum(d: torch.Tensor, patch) -> torch.Tensor:
    """Sum of ``d`` ``(A, Z, Y, X)`` over a centred box of odd sizes ``patch`` (zeros outside),
    by running sums along each axis (exact for integer-valued float32 input)."""
    x = d
    for axis, p in enumerate(patch):
        if p == 1:
            continue
        dim = axis + 1
        r = p // 2
        pad = [0, 0] * (3 - axis)
        pad[-2], pad[-1] = r + 1, r  # F.pad lists the last axis first: (.., before, after)
        c = F.pad(x, pad).cumsum(dim)
        n = x.shape[dim]
        x = c.narrow(dim, p, n) - c.narrow(dim, 0, n)
    return x


def _odd3(v, name: str) -> tuple[int, int, int]:
    try:
        t = tuple(int(a) for a in v)
    except (TypeError, ValueError) as e:
        raise InputError(f"{name} must be three odd sizes (z, y, x), got {v!r}") from e
    if len(t) != 3 or any(a < 1 or a % 2 == 0 for a in t):
        raise InputError(f"{name} must be three odd sizes (z, y, x), got {v!r}")
    return t


def patch_fusion(target, warped_labels, *, warped_images=None, patch=(1, 7, 7), search=(3, 7, 7),
                 h: float = 10.0, n_labels: int | None = None, device="cpu") -> np.ndarray:
    """Non-local patch label fusion, SSLLN eq. 5.

    ``S_x = argmax_k sum_n sum_{y in N(x)} exp(-||f_x - f_{n,y}||^2 / h) [l_{n,y} = k]``:
    every atlas voxel ``y`` in the search window around ``x`` votes for its label with the
    Gaussian similarity of its patch to the target's patch at ``x``.

    What the patches hold (``f``):

    * ``warped_images`` given: intensities. ``target`` is the target image ``(Z, Y, X)``,
      ``warped_images`` the warped atlas images ``(A, Z, Y, X)`` (on a common intensity scale,
      e.g. 1st-99th percentile -> [0, 1] as SSLLN); ``h`` is in squared intensity units
      summed over the patch.
    * otherwise: one-hot label maps, for a target that is a segmentation (e.g. the LR
      segmentation resampled to the HR grid). ``target`` is ``(Z, Y, X)`` labels and
      ``||f_x - f_{n,y}||^2`` (one-hot over all labels, background included) is twice the number
      of patch voxels whose labels differ: with ``h = 10`` five disagreeing voxels weigh
      ``1/e``.

    Parameters
    ----------
    target : ``(Z, Y, X)`` labels or image (see above).
    warped_labels : ``(A, Z, Y, X)`` atlas labels in the target grid.
    warped_images : ``(A, Z, Y, X)`` atlas images in the target grid, optional.
    patch, search : odd window sizes ``(z, y, x)`` in voxels (paper: 7x7x1 patch, 7x7x3 search).
    h : kernel bandwidth (paper: 10).
    n_labels : number of labels (default largest value + 1).
    device : torch device; the work is vectorised over atlases and voxels, looping only over
        the search offsets. Voxels whose whole search window holds one label in every atlas
        take that label without computation (the computation is cropped to the rest).

    Returns ``(Z, Y, X)`` labels, dtype of ``warped_labels``; ties go to the lowest label.
    """
    patch, search = _odd3(patch, "patch"), _odd3(search, "search")
    if not h > 0:
        raise InputError(f"h must be positive, got {h}")
    dev = torch.device(device)
    lab = _labels_tensor(warped_labels, "warped_labels", dev)
    shape = tuple(lab.shape[1:])
    k = int(lab.max()) + 1 if n_labels is None else int(n_labels)
    if warped_images is None:
        tgt = _labels_tensor(np.asarray(target)[None] if not isinstance(target, torch.Tensor) else target[None],
                             "target", dev)[0]
        k = max(k, int(tgt.max()) + 1) if n_labels is None else k
        feats = None
    else:
        tgt = torch.as_tensor(np.asarray(target, dtype=np.float32), device=dev)
        feats = torch.as_tensor(np.asarray(warped_images, dtype=np.float32), device=dev)
        if feats.shape != lab.shape:
            raise InputError(f"warped_images {tuple(feats.shape)} and warped_labels {tuple(lab.shape)} differ in shape")
    if tuple(tgt.shape) != shape:
        raise InputError(f"target has shape {tuple(tgt.shape)}, the warped atlases {shape}")
    if int(lab.max()) >= k:
        raise InputError(f"a label value exceeds n_labels - 1 = {k - 1}")

    # Voxels whose search window is unanimous across all atlases need no computation.
    sr = [s // 2 for s in search]
    pr = [p // 2 for p in patch]
    hi = F.max_pool3d(lab.max(0).values[None, None].float(), search, stride=1, padding=sr)[0, 0]
    lo = -F.max_pool3d(-lab.min(0).values[None, None].float(), search, stride=1, padding=sr)[0, 0]
    out = lab[0].clone()
    busy = (hi != lo).cpu().numpy()
    idx = np.nonzero(busy)
    if idx[0].size == 0:
        return out.cpu().numpy().astype(_dtype(warped_labels))
    core_lo = [int(i.min()) for i in idx]
    core_hi = [int(i.max()) + 1 for i in idx]
    ext_lo = [a - p for a, p in zip(core_lo, pr)]
    ext_hi = [b + p for b, p in zip(core_hi, pr)]
    # Target on the extended box; atlases on the extended box + search radius (zeros outside).
    t_ext = _crop_pad(tgt, ext_lo, ext_hi)
    a_lo = [a - s for a, s in zip(ext_lo, sr)]
    a_hi = [b + s for b, s in zip(ext_hi, sr)]
    l_ext = _crop_pad(lab, a_lo, a_hi)
    f_ext = None if feats is None else _crop_pad(feats, a_lo, a_hi)
    ez, ey, ex = (b - a for a, b in zip(ext_lo, ext_hi))

    votes = torch.zeros((k, ez, ey, ex), dtype=torch.float32, device=dev)
    # Label patches: distances are at most 2 |patch| (exp cannot underflow for h > |patch| / 40);
    # intensity patches: rescale by the running minimum distance (same argmax, no underflow).
    rescale = f_ext is not None or 2.0 * float(np.prod(patch)) / h > 80.0
    acc = torch.float32 if dev.type == "mps" else torch.float64  # running sums of intensities
    best = torch.full((ez, ey, ex), float("inf") if rescale else 0.0, device=dev)
    for dz in range(search[0]):
        for dy in range(search[1]):
            for dx in range(search[2]):
                l_o = l_ext[:, dz:dz + ez, dy:dy + ey, dx:dx + ex]
                if f_ext is None:
                    d = 2.0 * (l_o != t_ext[None]).to(torch.float32)
                else:
                    d = (f_ext[:, dz:dz + ez, dy:dy + ey, dx:dx + ex] - t_ext[None]).to(acc).square()
                dist = _box_sum(d, patch).to(torch.float32)  # (A, ez, ey, ex)
                if rescale:
                    new_best = torch.minimum(best, dist.min(0).values)
                    votes.mul_(torch.exp((new_best - best) / h))
                    best = new_best
                votes.scatter_add_(0, l_o, torch.exp((best[None] - dist) / h))
    fused = votes.argmax(0)  # first maximum -> lowest label
    c = [slice(a - e, b - e) for a, b, e in zip(core_lo, core_hi, ext_lo)]
    core = tuple(slice(a, b) for a, b in zip(core_lo, core_hi))
    busy_t = torch.as_tensor(busy[core], device=dev)
    out[core] = torch.where(busy_t, fused[c[0], c[1], c[2]], out[core])
    return out.cpu().numpy().astype(_dtype(warped_labels))
