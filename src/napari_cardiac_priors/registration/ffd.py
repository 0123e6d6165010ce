"""Cubic B-spline free-form deformation on label maps (SSLLN eq. 4), all atlases in one batch.

Transformation model (target -> atlas, "pull"): the target voxel at world point ``w`` takes
the atlas label at ``M_n^-1 (w + u_n(w))``, where ``M_n`` is atlas ``n``'s world affine (atlas
world -> target world, e.g. from :func:`~.affine.landmark_affine`) and ``u_n`` a displacement
field in target world mm. ``u_n`` is a sum of cubic B-splines on control lattices (one per
control spacing, coarse to fine; MIRTK's additive multi-level FFD). A lattice is aligned with
the target's voxel axes and has the same spacing in mm along each axis.

Loss per atlas (minimised with Adam, all atlases in one batch)::

    SSD(target one-hot, warped atlas one-hot) + bending * BE

* SSD: mean over the voxels of the (cropped) target grid of the sum over the shared
  structures of ``(t_k - w_k)^2``, one-hot maps, the atlas' interpolated trilinearly. For
  hard maps this counts, per voxel, the structures on which target and atlas disagree: it is
  a smooth version of ``1 - C`` with ``C`` the label consistency of eq. 4 (the fraction of
  voxels whose labels agree).
* BE: bending energy in lattice units (coordinates and displacement divided by the control
  spacing, so it is dimensionless and scale-free): the mean over the interior control points
  of ``sum_i [u_i,zz^2 + u_i,yy^2 + u_i,xx^2 + 2 (u_i,zy^2 + u_i,zx^2 + u_i,yx^2)]``, derivatives
  of the B-spline evaluated exactly at the control points. ``bending=1e-3`` by default.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from ..volume import Volume
from .warp import (
    apply,
    bounding_box,
    check_labels,
    one_hot,
    sample,
    stack_labels,
    warp_stack,
    world_coordinates,
    world_to_normalised,
)


@dataclass(frozen=True)
class Level:
    """One level of the multi-resolution schedule.

    control_spacing : mm between control points.
    voxel_size : mm, the grid the loss is evaluated on: every ``max(1, round(voxel_size /
        spacing))``-th target voxel along each axis (1.25 = full HR resolution).
    iterations : Adam steps.
    lr : Adam step size, mm of control-point displacement; decays linearly to 10 % over the level.
    band : mm, optional: only voxels within ``band`` of a target label boundary enter the loss
        (normalised by the whole grid's voxel count, so the weight of the bending energy does
        not change). Away from the target's boundaries an aligned atlas is constant too and
        adds nothing; this makes the full-resolution polish about 4x cheaper. None: all voxels.
    sigma : mm, Gaussian smoothing of the target and atlas one-hot maps (each on its own full-
        resolution grid) before sampling; None: ``voxel_size / 2`` on a subsampled grid, 0 on
        the full grid. Smoothing both alike (rather than pooling) keeps an exactly aligned atlas
        at the loss minimum.
    """

    control_spacing: float = 20.0
    voxel_size: float = 2.5
    iterations: int = 50
    lr: float = 0.5
    band: float | None = None
    sigma: float | None = None


#: Default schedule: 40 mm control points on a 5 mm grid, 20 mm on a 2.5 mm grid (6 mm band
#: around the target's boundaries), then a short polish of the 20 mm lattice at the full HR
#: resolution (4 mm band).
DEFAULT_LEVELS = (
    Level(40.0, 5.0, 40, 1.0),
    Level(20.0, 2.5, 40, 0.5, band=6.0),
    Level(20.0, 1.25, 15, 0.2, band=4.0),
)
#: half the iterations of DEFAULT_LEVELS (compared on real targets in BENCHMARKS.md)
FAST_LEVELS = (
    Level(40.0, 5.0, 20, 1.0),
    Level(20.0, 2.5, 20, 0.5, band=6.0),
    Level(20.0, 1.25, 8, 0.2, band=4.0),
)


# -- cubic B-splines --------------------------------------------------------------------------
def bspline_kernel(t: torch.Tensor) -> torch.Tensor:
    """Uniform cubic B-spline ``beta3(t)`` (support ``|t| < 2``, ``beta3(0) = 2/3``)."""
    a = t.abs()
    inner = 2.0 / 3.0 - a**2 + 0.5 * a**3
    outer = (2.0 - a).clamp(min=0.0) ** 3 / 6.0
    return torch.where(a < 1.0, inner, outer)


@dataclass(frozen=True)
class Lattice:
    """Control points along the target grid's axes.

    origin : target array index ``(z, y, x)`` (fractional) of control point 0.
    step : control spacing in target voxels ``(z, y, x)`` (fractional).
    size : number of control points ``(cz, cy, cx)``.
    spacing : control spacing in mm (the same along every axis).
    """

    origin: tuple
    step: tuple
    size: tuple
    spacing: float

    @classmethod
    def covering(cls, start, stop, voxel_spacing, spacing: float) -> "Lattice":
        """The lattice whose B-splines cover target indices ``start .. stop - 1`` ``(z, y, x)``."""
        step = tuple(float(spacing) / float(s) for s in voxel_spacing)
        origin = tuple(float(a) - d for a, d in zip(start, step))
        size = tuple(int(np.floor((b - 1 - a) / d)) + 4 for a, b, d in zip(start, stop, step))
        return cls(origin, step, size, float(spacing))

    def basis(self, axis: int, positions, *, device="cpu") -> torch.Tensor:
        """``(len(positions), size[axis])`` B-spline weights at target indices ``positions``
        along ``axis`` (0 = z, 1 = y, 2 = x); rows outside the lattice are zero."""
        p = torch.as_tensor(np.asarray(positions, dtype=np.float64))  # float64 on the CPU
        t = (p - self.origin[axis]) / self.step[axis]
        j = torch.arange(self.size[axis], dtype=torch.float64)
        return bspline_kernel(t[:, None] - j[None, :]).to(device=device, dtype=torch.float32)


def evaluate(coefficients: torch.Tensor, bz: torch.Tensor, by: torch.Tensor, bx: torch.Tensor) -> torch.Tensor:
    """Dense B-spline field by separable evaluation.

    ``coefficients`` ``(A, 3, cz, cy, cx)``; per-axis basis matrices ``bz (Z, cz)``,
    ``by (Y, cy)``, ``bx (X, cx)``. Returns ``(A, Z, Y, X, 3)`` (vector components last).
    """
    t = torch.einsum("acijk,xk->acijx", coefficients, bx)
    t = torch.einsum("acijx,yj->aciyx", t, by)
    return torch.einsum("aciyx,zi->azyxc", t, bz)


def _stencil(x: torch.Tensor, dim: int, w) -> torch.Tensor:
    n = x.shape[dim] - 2
    return w[0] * x.narrow(dim, 0, n) + w[1] * x.narrow(dim, 1, n) + w[2] * x.narrow(dim, 2, n)


_VALUE = (1.0 / 6.0, 4.0 / 6.0, 1.0 / 6.0)
_D1 = (-0.5, 0.0, 0.5)
_D2 = (1.0, -2.0, 1.0)
_BENDING_TERMS = (
    ((_D2, _VALUE, _VALUE), 1.0), ((_VALUE, _D2, _VALUE), 1.0), ((_VALUE, _VALUE, _D2), 1.0),
    ((_D1, _D1, _VALUE), 2.0), ((_D1, _VALUE, _D1), 2.0), ((_VALUE, _D1, _D1), 2.0),
)


def bending_energy(coefficients: torch.Tensor) -> torch.Tensor:
    """Bending energy per field, ``(A,)``, of B-spline coefficients ``(A, 3, cz, cy, cx)``.

    Derivatives are taken per lattice unit and evaluated exactly at the interior control
    points (stencils ``[1, 4, 1] / 6``, ``[-1, 0, 1] / 2``, ``[1, -2, 1]``); the result is the
    mean over those points of the summed squared second derivatives (mixed ones twice). Pass
    coefficients divided by the control spacing (mm / mm) for a dimensionless energy.
    """
    total = 0.0
    for ops, weight in _BENDING_TERMS:
        d = coefficients
        for dim, w in zip((2, 3, 4), ops):
            d = _stencil(d, dim, w)
        total = total + weight * d.square().sum(1).mean(dim=(1, 2, 3))
    return total


def label_ssd(warped: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """``(A,)`` mean over voxels of ``sum_k w_ak (warped_ak - target_k)^2``.

    ``warped`` ``(A, C, Z, Y, X)``; ``target`` ``(1 or A, C, Z, Y, X)``; ``weights`` ``(A, C)``
    (1 for the structures an atlas shares with the target, 0 otherwise).
    """
    d = (warped - target).square()
    if weights is not None:
        d = d * weights[:, :, None, None, None]
    return d.sum(1).mean(dim=(1, 2, 3))


# -- the transform ------------------------------------------------------------------------------
@dataclass(eq=False)
class FFDTransform:
    """Affine + multi-level B-spline FFD of ``A`` atlases onto one target grid.

    target_shape : ``(Z, Y, X)`` of the target grid; target_affine : its NIfTI affine.
    affines : ``(A, 4, 4)`` atlas world -> target world.
    lattices : list of ``(Lattice, coefficients (A, 3, cz, cy, cx) float32 tensor)``,
        coefficients in world mm, components ``(x, y, z)``; the displacement is their sum.
    loss : ``(A,)`` final loss per atlas; history : mean loss per iteration, all levels.
    """

    target_shape: tuple
    target_affine: np.ndarray
    affines: np.ndarray
    lattices: list = field(default_factory=list)
    loss: np.ndarray | None = None
    history: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.affines)

    def displacement(self, atlas: int | None = None, *, start=(0, 0, 0), shape=None, step=(1, 1, 1),
                     device="cpu") -> torch.Tensor:
        """Displacement in world mm, ``(A, Z, Y, X, 3)`` (or ``(Z, Y, X, 3)`` for one ``atlas``),
        at target indices ``start + step * i`` (default: the whole target grid)."""
        shape = tuple(self.target_shape if shape is None else shape)
        n = len(self) if atlas is None else 1
        out = torch.zeros((n, *shape, 3), dtype=torch.float32, device=device)
        for lattice, coeffs in self.lattices:
            b = [lattice.basis(d, start[d] + step[d] * np.arange(shape[d]), device=device) for d in range(3)]
            c = coeffs.to(device) if atlas is None else coeffs[atlas: atlas + 1].to(device)
            out = out + evaluate(c, *b)
        return out if atlas is None else out[0]

    def warp(self, volumes: Sequence[Volume], *, mode: str = "nearest", device="cpu") -> np.ndarray:
        """Warp the atlases' label maps (or images) into the target grid: ``(A, Z, Y, X)``.

        ``volumes[n]`` is atlas ``n``'s labels or image on the atlas' grid. See
        :func:`~.warp.warp_stack` for ``mode``.
        """
        if len(volumes) != len(self):
            raise InputError(f"the transform holds {len(self)} atlases, got {len(volumes)} volumes")
        reference = _GridOnly(self.target_shape, self.target_affine)
        return warp_stack(volumes, reference, affines=list(self.affines), mode=mode, device=device,
                          displacement=lambda n: self.displacement(n, device=device))


@dataclass(frozen=True)
class _GridOnly:
    """A grid without an array (what warp_stack reads from its reference)."""

    spatial_shape: tuple
    affine: np.ndarray


# -- registration -------------------------------------------------------------------------------
def _as_levels(levels) -> tuple[Level, ...]:
    out = []
    for lv in levels:
        lv = lv if isinstance(lv, Level) else Level(*lv)
        if lv.control_spacing <= 0 or lv.voxel_size <= 0 or lv.iterations < 0 or lv.lr <= 0 or (
                lv.band is not None and lv.band <= 0) or (lv.sigma is not None and lv.sigma < 0):
            raise InputError(f"bad level {lv}: spacing, voxel size, lr and band must be positive, sigma >= 0")
        out.append(lv)
    if not out:
        raise InputError("levels is empty")
    return tuple(out)


def _gaussian(x: torch.Tensor, sigma_vox) -> torch.Tensor:
    """Separable Gaussian smoothing of ``(B, C, Z, Y, X)`` with per-axis ``sigma_vox`` (zeros outside)."""
    b, c = x.shape[:2]
    y = x.reshape(b * c, 1, *x.shape[2:])
    for axis, s in enumerate(sigma_vox):
        if s <= 0:
            continue
        r = max(1, int(np.ceil(3.0 * s)))
        k = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=torch.float32, device=x.device) / s) ** 2)
        shape = [1, 1, 1, 1, 1]
        shape[2 + axis] = 2 * r + 1
        pad = [0, 0, 0]
        pad[axis] = r
        y = F.conv3d(y, (k / k.sum()).reshape(shape), padding=tuple(pad))
    return y.reshape(x.shape)


def _factors(voxel_size: float, spacing) -> tuple[int, int, int]:
    return tuple(max(1, int(round(voxel_size / s))) for s in spacing)


def _boundary_band(labels: np.ndarray, spacing, band: float) -> np.ndarray:
    """Voxels of ``labels`` within ``band`` mm of a label change (bool, same shape)."""
    from scipy import ndimage

    edge = np.zeros(labels.shape, bool)
    for axis in range(3):
        d = np.diff(labels, axis=axis) != 0
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis], hi[axis] = slice(None, -1), slice(1, None)
        edge[tuple(lo)] |= d
        edge[tuple(hi)] |= d
    if not edge.any():
        return edge
    return ndimage.distance_transform_edt(~edge, sampling=spacing) <= band


def register_ffd(target: Volume, atlases: Sequence[Volume], affines, *, structures=None,
                 levels=DEFAULT_LEVELS, bending: float = 1e-3, margin: float = 15.0, device="cpu",
                 callback: Callable[[int, int, float], None] | None = None) -> FFDTransform:
    """Register atlas label maps onto a target label map with label-consistency B-spline FFDs.

    All atlases are optimised together, as one batch (batch axis = atlases), on the target's
    grid cropped to its foreground bounding box plus ``margin`` mm.

    Parameters
    ----------
    target : Volume, 3D labels ``(z, y, x)`` (e.g. the LR segmentation resampled to HR).
    atlases : sequence of 3D labels Volumes, each on its own grid (spacing may differ).
    affines : sequence of (4, 4) atlas world -> target world maps (the initialisation).
    structures : labels to register on; default all foreground labels of the target. Each
        atlas uses those of them it also holds (a target without RV wall registers on LV, MYO
        and RV; the atlas' RV wall is still carried along by :meth:`FFDTransform.warp`).
    levels : sequence of :class:`Level` (or ``(control_spacing, voxel_size, iterations, lr)``
        tuples), coarse to fine; a level with the previous level's control spacing continues
        optimising that lattice.
    bending : weight of the dimensionless bending energy (see the module docstring).
    margin : mm added around the target foreground box.
    device : torch device of the computation.
    callback : called as ``callback(level, iteration, mean_loss)`` after every step.

    Returns
    -------
    FFDTransform (affines + lattices); ``.warp(atlases)`` gives ``(A, Z, Y, X)`` labels.
    """
    check_labels(target, "target")
    atlases = list(atlases)
    if not atlases:
        raise InputError("no atlases given")
    for i, a in enumerate(atlases):
        check_labels(a, f"atlases[{i}]")
    if len(affines) != len(atlases):
        raise InputError(f"got {len(affines)} affines for {len(atlases)} atlases")
    affines = np.stack([np.asarray(m, dtype=np.float64) for m in affines])
    if affines.shape[1:] != (4, 4) or not np.all(np.isfinite(affines)):
        raise InputError("affines must be finite 4x4 matrices")
    levels = _as_levels(levels)
    dev = torch.device(device)

    tgt = np.asarray(target.array)
    present = set(int(k) for k in np.unique(tgt) if k > 0)
    if structures is not None:
        present &= {int(k) for k in structures}
    atlas_present = [set(int(k) for k in np.unique(np.asarray(a.array)) if k > 0) for a in atlases]
    classes = sorted(k for k in present if any(k in p for p in atlas_present))
    if not classes:
        raise InputError("the target and the atlases share no structure to register on")
    weights = torch.tensor([[float(k in p) for k in classes] for p in atlas_present], device=dev)

    spacing = np.asarray(target.spacing)
    box = bounding_box(np.isin(tgt, classes), np.ceil(margin / spacing).astype(int))
    start = np.array([s.start for s in box])
    size = np.array([s.stop - s.start for s in box])
    target_1h = one_hot(torch.as_tensor(tgt[box].astype(np.int64), device=dev)[None], classes)

    atlas_lab, atlas_aff = stack_labels(atlases, margin=1, device=dev)
    atlas_1h = one_hot(atlas_lab, classes)
    del atlas_lab
    atlas_spacing = np.min([a.spacing for a in atlases], axis=0)  # smoothing is per axis of the stack

    transform = FFDTransform(target.spatial_shape, target.affine, affines)
    current: tuple[Lattice, torch.Tensor] | None = None
    smooth_cache: dict = {}
    final_loss = None
    for li, level in enumerate(levels):
        if current is not None and current[0].spacing != level.control_spacing:
            transform.lattices.append(current)
            current = None
        if current is None:
            lattice = Lattice.covering(start, start + size, spacing, level.control_spacing)
            current = (lattice, torch.zeros((len(atlases), 3, *lattice.size), device=dev))
        lattice = current[0]

        # Evaluation grid of this level: every f-th voxel of the crop; target and atlas
        # one-hot maps smoothed alike (sigma in mm) on their full-resolution grids.
        f = _factors(level.voxel_size, spacing)
        sigma = level.sigma if level.sigma is not None else (level.voxel_size / 2.0 if max(f) > 1 else 0.0)
        shape = tuple(int(np.ceil(n / k)) for n, k in zip(size, f))
        tgt_lvl = _gaussian(target_1h, sigma / spacing)[:, :, :: f[0], :: f[1], :: f[2]]
        world = world_coordinates(shape, target.affine, start=start, step=f, device=dev)
        if sigma not in smooth_cache:
            smooth_cache.clear()
            smooth_cache[sigma] = _gaussian(atlas_1h, sigma / atlas_spacing)
        src = smooth_cache[sigma]
        to_norm = np.stack([world_to_normalised(a, src.shape[2:], m) for a, m in zip(atlas_aff, affines)])
        lin = torch.as_tensor(to_norm[:, :3, :3], dtype=torch.float32, device=dev)

        positions = [start[d] + f[d] * np.arange(shape[d]) for d in range(3)]
        fixed = torch.zeros((len(atlases), *shape, 3), device=dev)
        for lat, coeffs in transform.lattices:
            fixed = fixed + evaluate(coeffs, *(lat.basis(d, positions[d], device=dev) for d in range(3)))
        base = apply(to_norm, world) + torch.einsum("a...j,aij->a...i", fixed, lin)
        del fixed, world
        basis = [lattice.basis(d, positions[d], device=dev) for d in range(3)]
        tgt_pts, n_vox = tgt_lvl, float(np.prod(shape))
        mask = None
        if level.band is not None:
            m = _boundary_band(tgt[box], spacing, level.band)[:: f[0], :: f[1], :: f[2]]
            mask = torch.as_tensor(m.ravel(), device=dev).nonzero()[:, 0]
            base = base.reshape(len(atlases), -1, 3)[:, mask][:, None, None]  # (A, 1, 1, N, 3)
            tgt_pts = tgt_lvl.reshape(1, len(classes), -1)[:, :, mask][:, :, None, None]

        coeffs = current[1].clone().requires_grad_(True)
        opt = torch.optim.Adam([coeffs], lr=level.lr)
        n_it = int(level.iterations)
        for it in range(n_it):
            for group in opt.param_groups:
                group["lr"] = level.lr * (1.0 - 0.9 * it / max(n_it, 1))
            opt.zero_grad(set_to_none=True)
            coeffs_n = torch.einsum("aij,aj...->ai...", lin, coeffs)
            disp = evaluate(coeffs_n, *basis)
            if mask is not None:
                disp = disp.reshape(len(atlases), -1, 3)[:, mask][:, None, None]
            ssd = label_ssd(sample(src, base + disp), tgt_pts, weights) * (disp.shape[1:4].numel() / n_vox)
            loss = ssd + bending * bending_energy(coeffs / lattice.spacing)
            loss.sum().backward()
            opt.step()
            final_loss = loss.detach()
            mean = float(final_loss.mean())
            transform.history.append(mean)
            if callback is not None:
                callback(li, it, mean)
        current = (lattice, coeffs.detach())
    transform.lattices.append(current)
    transform.loss = None if final_loss is None else final_loss.cpu().numpy()
    return transform
