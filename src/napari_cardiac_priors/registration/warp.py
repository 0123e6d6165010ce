"""Warping label maps from their grid into a target grid with ``torch.nn.functional.grid_sample``.

Conventions used by every function here:

* arrays are ``(z, y, x)``; batched label maps ``(A, Z, Y, X)``, one-hot maps
  ``(A, C, Z, Y, X)``;
* a NIfTI affine maps voxel ``(x, y, z)`` (the reverse of the array axes) to world RAS mm;
* a *world affine* ``M`` maps the source (atlas) world onto the target world, as
  :func:`~napari_cardiac_priors.registration.landmark_affine` (atlas landmarks -> target
  landmarks) returns it;
* a *displacement* ``u`` is a field on the target grid, ``(..., Z, Y, X, 3)`` in world mm
  with components ``(x, y, z)`` RAS, added in target world before the inverse affine.

Sampling pulls: the target voxel at world point ``w`` takes the source value at
``M^-1 (w + u(w))``. ``grid_sample`` wants normalised source coordinates ``(x, y, z)`` in the
last axis; we use ``align_corners=False``, where voxel ``i`` of an axis of ``n`` voxels sits
at ``(2 i + 1) / n - 1``. Outside the source everything is background.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from ..volume import Volume

#: Reverses (x, y, z) <-> (z, y, x) in homogeneous coordinates.
FLIP = np.eye(4)[[2, 1, 0, 3]]


# -- matrices ---------------------------------------------------------------------------------
def normalise_matrix(shape) -> np.ndarray:
    """(4, 4) map from voxel ``(x, y, z)`` of a grid of ``shape`` ``(z, y, x)`` to
    ``grid_sample`` coordinates ``(x, y, z)`` (``align_corners=False``)."""
    nz, ny, nx = (int(s) for s in shape[-3:])
    n = np.array([nx, ny, nz], dtype=np.float64)
    m = np.eye(4)
    m[:3, :3] = np.diag(2.0 / n)
    m[:3, 3] = 1.0 / n - 1.0
    return m


def world_to_normalised(source_affine, source_shape, world_affine=None) -> np.ndarray:
    """(4, 4) map from target world ``(x, y, z)`` mm to the source's ``grid_sample`` coordinates.

    ``world_affine`` maps source world -> target world (identity when None); it is inverted.
    """
    m = np.linalg.inv(np.asarray(source_affine, dtype=np.float64))
    if world_affine is not None:
        m = m @ np.linalg.inv(np.asarray(world_affine, dtype=np.float64))
    return normalise_matrix(source_shape) @ m


def index_to_normalised(target_affine, source_affine, source_shape, world_affine=None) -> np.ndarray:
    """(4, 4) map from target array indices ``(z, y, x)`` to source ``grid_sample`` coordinates
    ``(x, y, z)``, given the two NIfTI affines and the source -> target world affine."""
    return world_to_normalised(source_affine, source_shape, world_affine) @ np.asarray(target_affine) @ FLIP


def shift_affine(affine, start) -> np.ndarray:
    """NIfTI affine of a sub-grid whose voxel 0 is voxel ``start`` ``(z, y, x)`` of ``affine``'s grid."""
    t = np.eye(4)
    t[:3, 3] = np.asarray(start, dtype=np.float64)[::-1]
    return np.asarray(affine, dtype=np.float64) @ t


def apply(matrix, points: torch.Tensor) -> torch.Tensor:
    """Apply a (4, 4) matrix to points ``(..., 3)``; a ``(B, 4, 4)`` stack to points
    ``(..., 3)`` gives ``(B, ..., 3)``."""
    m = torch.as_tensor(np.asarray(matrix, dtype=np.float32), device=points.device).to(points.dtype)
    if m.ndim == 2:
        return points @ m[:3, :3].T + m[:3, 3]
    lin = torch.einsum("...j,bij->b...i", points, m[:, :3, :3])
    return lin + m[:, :3, 3].reshape((m.shape[0],) + (1,) * (points.ndim - 1) + (3,))


def world_coordinates(shape, affine, *, start=(0, 0, 0), step=(1, 1, 1), device="cpu") -> torch.Tensor:
    """World ``(x, y, z)`` mm of voxel centres, ``(Z, Y, X, 3)`` float32.

    The voxels are ``start + step * i`` (fractional allowed) of the grid of NIfTI ``affine``,
    ``i`` over ``shape`` ``(z, y, x)``.
    """
    axes = [torch.arange(int(n), dtype=torch.float64) * float(s) + float(o) for n, s, o in zip(shape, step, start)]
    zz, yy, xx = torch.meshgrid(*axes, indexing="ij")
    idx = torch.stack([xx, yy, zz], dim=-1)  # voxel (x, y, z); float64 on the CPU (MPS has none)
    a = torch.as_tensor(np.asarray(affine, dtype=np.float64))
    return (idx @ a[:3, :3].T + a[:3, 3]).to(device=device, dtype=torch.float32)


# -- label maps -------------------------------------------------------------------------------
def one_hot(labels: torch.Tensor, classes: Sequence[int]) -> torch.Tensor:
    """``(B, Z, Y, X)`` integer labels -> ``(B, C, Z, Y, X)`` float32, channel ``c`` is
    ``labels == classes[c]``."""
    return torch.stack([labels == int(k) for k in classes], dim=1).to(torch.float32)


def sample(volume: torch.Tensor, grid: torch.Tensor, *, mode: str = "bilinear") -> torch.Tensor:
    """``grid_sample`` with the conventions of this module.

    ``volume`` ``(B, C, Zs, Ys, Xs)``, ``grid`` ``(B, Z, Y, X, 3)`` normalised ``(x, y, z)``;
    ``mode`` ``"bilinear"`` (trilinear in 3D) or ``"nearest"``; zeros outside.
    Returns ``(B, C, Z, Y, X)``.
    """
    return F.grid_sample(volume, grid, mode=mode, padding_mode="zeros", align_corners=False)


def _check_volume(volume, name: str) -> Volume:
    if not isinstance(volume, Volume):
        raise InputError(f"{name} must be a Volume, got {type(volume).__name__}")
    if volume.is_cine:
        raise InputError(f"{name} must be 3D, got a cine stack of shape {volume.shape}")
    return volume


def check_labels(volume, name: str) -> Volume:
    """``volume`` if it is a 3D label map (``kind="labels"`` or an integer array), else InputError."""
    _check_volume(volume, name)
    if volume.kind != "labels" and not np.issubdtype(np.asarray(volume.array).dtype, np.integer):
        raise InputError(f"{name} must be a label map (kind='labels' or integer values), got an image")
    if np.asarray(volume.array).min() < 0:
        raise InputError(f"{name} holds negative labels")
    return volume


def _as_tensor(x, device="cpu") -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.to(device=device, dtype=torch.float32)
    return torch.as_tensor(np.asarray(x, dtype=np.float32), device=device)


def warp_volume(volume: Volume, reference: Volume, *, affine=None, displacement=None, mode: str = "nearest",
                device="cpu") -> Volume:
    """Warp one label map or image into the grid of ``reference``.

    Parameters
    ----------
    volume : Volume, 3D ``(z, y, x)`` on its own grid; labels (``kind="labels"``) or an image.
    reference : Volume whose grid (shape, affine) receives the result; its array is not used.
    affine : (4, 4), optional
        World -> world map from ``volume``'s world onto ``reference``'s world.
    displacement : ``(Z, Y, X, 3)`` world mm on ``reference``'s grid, optional.
    mode : for labels, ``"nearest"`` (label values, exact) or ``"linear"`` (one-hot maps
        interpolated trilinearly, then argmax; background = 1 - sum of the structures, ties to
        the lower label). Images are always interpolated trilinearly.

    Returns a Volume on ``reference``'s grid, same kind and dtype (images: float32).
    """
    _check_volume(volume, "volume")
    out = warp_stack([volume], reference, affines=None if affine is None else [affine],
                     displacement=None if displacement is None else (lambda n: displacement),
                     mode=mode, device=device)
    return Volume(out[0], affine=reference.affine, kind=volume.kind, metadata=dict(volume.metadata))


def warp_stack(volumes: Sequence[Volume], reference: Volume, *, affines=None, displacement=None,
               mode: str = "nearest", device="cpu") -> np.ndarray:
    """Warp several volumes (each on its own grid) into ``reference``'s grid, one at a time.

    ``affines``: sequence of (4, 4) source -> target world maps (identity when None);
    ``displacement``: ``(A, Z, Y, X, 3)`` world mm on the reference grid, or a callable
    ``n -> (Z, Y, X, 3)`` (evaluated one volume at a time to bound memory). Label volumes
    (``kind="labels"``) follow ``mode`` (see :func:`warp_volume`) and keep the first label
    volume's dtype; images are trilinear, float32. Returns ``(A, Z, Y, X)``.
    """
    if mode not in ("nearest", "linear"):
        raise InputError(f"mode must be 'nearest' or 'linear', got {mode!r}")
    volumes = [_check_volume(v, f"volumes[{i}]") for i, v in enumerate(volumes)]
    if affines is not None and len(affines) != len(volumes):
        raise InputError(f"got {len(affines)} affines for {len(volumes)} volumes")
    kinds = {v.kind for v in volumes}
    if len(kinds) > 1:
        raise InputError("warp_stack takes either label maps or images, not both")
    shape = reference.spatial_shape
    base = world_coordinates(shape, reference.affine, device=device)
    is_labels = kinds == {"labels"}
    dtype = (volumes[0].array.dtype if volumes else np.uint8) if is_labels else np.float32
    out = np.zeros((len(volumes), *shape), dtype=dtype)
    for n, vol in enumerate(volumes):
        w = base
        if displacement is not None:
            u = displacement(n) if callable(displacement) else displacement[n]
            w = base + _as_tensor(u, device)
        m = world_to_normalised(vol.affine, vol.spatial_shape, None if affines is None else affines[n])
        grid = apply(m, w)[None]
        if not is_labels:
            img = _as_tensor(vol.array, device)[None, None]
            out[n] = sample(img, grid)[0, 0].cpu().numpy()
            continue
        lab = torch.as_tensor(np.asarray(vol.array).astype(np.int64), device=device)[None]
        if mode == "nearest":
            res = torch.round(sample(lab[:, None].to(torch.float32), grid, mode="nearest")[0, 0]).to(torch.int64)
        else:
            classes = [int(k) for k in torch.unique(lab).tolist() if k != 0]
            if not classes:
                res = torch.zeros(shape, dtype=torch.int64, device=device)
            else:
                soft = sample(one_hot(lab, classes), grid)[0]
                soft = torch.cat([1.0 - soft.sum(0, keepdim=True), soft], dim=0)
                lut = torch.tensor([0, *classes], device=device)
                res = lut[soft.argmax(0)]
        out[n] = res.cpu().numpy().astype(dtype)
    return out


# -- cropping and stacking --------------------------------------------------------------------
def bounding_box(mask: np.ndarray, margin=(0, 0, 0)) -> tuple[slice, slice, slice] | None:
    """Slices ``(z, y, x)`` of the bounding box of ``mask`` grown by ``margin`` voxels per axis,
    clipped to the array; None when ``mask`` is empty."""
    idx = np.nonzero(mask)
    if idx[0].size == 0:
        return None
    return tuple(slice(max(int(i.min()) - int(m), 0), min(int(i.max()) + 1 + int(m), n))
                 for i, m, n in zip(idx, margin, mask.shape))


def crop(volume: Volume, box) -> Volume:
    """The sub-volume ``volume.array[box]`` with its affine shifted so world positions stay put."""
    start = [s.start or 0 for s in box]
    return Volume(volume.array[tuple(box)], affine=shift_affine(volume.affine, start), kind=volume.kind,
                  metadata=dict(volume.metadata))


def stack_labels(volumes: Sequence[Volume], *, margin: int = 1, device="cpu") -> tuple[torch.Tensor, np.ndarray]:
    """Crop each label map to its foreground box (+ ``margin`` voxels) and zero-pad them to one
    shape at the high-index end, so that maps of different grids form one batch.

    Returns ``(labels (A, Z, Y, X) int64, affines (A, 4, 4))``: the NIfTI affines of the cropped
    grids (padding at the end does not move any voxel).
    """
    boxes, crops = [], []
    for i, v in enumerate(volumes):
        check_labels(v, f"volumes[{i}]")
        box = bounding_box(np.asarray(v.array) > 0, (margin,) * 3)
        if box is None:
            raise InputError(f"label map {i} is empty (no foreground)")
        boxes.append(box)
        crops.append(np.asarray(v.array)[box])
    shape = tuple(max(c.shape[d] for c in crops) for d in range(3))
    out = torch.zeros((len(crops), *shape), dtype=torch.int64, device=device)
    for n, c in enumerate(crops):
        out[n, : c.shape[0], : c.shape[1], : c.shape[2]] = torch.as_tensor(c.astype(np.int64), device=device)
    affines = np.stack([shift_affine(v.affine, [s.start for s in b]) for v, b in zip(volumes, boxes)])
    return out, affines
