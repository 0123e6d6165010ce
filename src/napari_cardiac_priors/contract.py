"""A model's input contract: the grid a network sees, and the way to and from it.

A contract (the ``input`` field of a model's manifest entry) is a dict::

    {"size": [S, Y, X],                 # slices (channels of a 2.5D network), rows, columns
     "spacing": [sz or null, sy, sx],   # mm; null keeps the input's own slices (no z resampling)
     "slice_spacing_range": [lo, hi],   # mm, accepted slice spacing of the input
     "inplane_spacing_range": [lo, hi], # mm, accepted in-plane spacing of the input
     "normalisation": "percentile_1_99"}

The model grid is the input grid resampled in-plane to the contract spacing and centre-
cropped/padded to ``Y x X``; the input's slices are placed in the middle of the ``S`` model
slices. It is described by a NIfTI affine (:func:`model_grid`), so that images go to it with
:func:`~napari_cardiac_priors.volume.resample`, and probabilities and points come back to the
input's world with the same machinery. Arrays are ``(z, y, x)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InputError
from .volume import Volume, resample


@dataclass(frozen=True)
class ModelGrid:
    """The model grid of one input: ``affine`` (NIfTI) and ``shape`` ``(S, Y, X)``, and which
    model slices hold input slices (``first``, ``count``)."""

    affine: np.ndarray
    shape: tuple
    first: int
    count: int

    def volume(self, array, *, kind="image") -> Volume:
        """An array on this grid as a Volume (for resampling back to the input)."""
        return Volume(array, affine=self.affine, kind=kind)


def check_input(volume: Volume, contract: dict, *, name: str = "the model") -> None:
    """Raise :class:`InputError` when ``volume`` does not fit the contract (one clear line)."""
    if volume.is_cine:
        raise InputError(f"{name} segments one frame (z, y, x); pick a frame of the cine stack first")
    s_max = contract["size"][0] if "size" in contract else None
    n = volume.spatial_shape[0]
    if s_max is not None and contract.get("spacing", [None])[0] is None and n > int(s_max):
        raise InputError(f"the stack has {n} slices; {name} handles at most {s_max}")
    if n < int(contract.get("min_slices", 2)):
        raise InputError(f"the stack has {n} slice(s); {name} needs at least {contract.get('min_slices', 2)}")
    sz, sy, sx = volume.spacing
    lo, hi = contract.get("slice_spacing_range", (0, np.inf))
    if not lo <= sz <= hi:
        raise InputError(f"slice spacing {sz:.3g} mm is outside the {lo}-{hi} mm that {name} was trained for")
    lo, hi = contract.get("inplane_spacing_range", (0, np.inf))
    if not (lo <= sy <= hi and lo <= sx <= hi):
        raise InputError(f"in-plane spacing {sy:.3g} x {sx:.3g} mm is outside the {lo}-{hi} mm that {name} was trained for")
    a = volume.array
    if not np.isfinite(a).all():
        raise InputError(f"the image has {int(np.size(a) - np.isfinite(a).sum())} NaN or infinite voxel(s); fix or mask them first")
    if not np.any(a != a.flat[0]):
        raise InputError("the image is constant (all voxels equal); there is nothing to segment")


def centred_inplane(volume: Volume, spacing, size, *, shift_mm=(0.0, 0.0)) -> tuple[float, float, float, float]:
    """``(ky, kx, y0, x0)``: a ``size`` ``(Y, X)`` grid of ``spacing`` ``(sy, sx)`` mm centred on the
    input's in-plane centre (plus ``shift_mm`` ``(dy, dx)``) maps its index ``(y', x')`` to the
    input index ``(y0 + ky y', x0 + kx x')``."""
    _, ny, nx = volume.spatial_shape
    _, sy_in, sx_in = volume.spacing
    ky, kx = float(spacing[0]) / sy_in, float(spacing[1]) / sx_in
    Y, X = (int(v) for v in size)
    y0 = (ny - 1) / 2.0 - ky * (Y - 1) / 2.0 + shift_mm[0] / sy_in
    x0 = (nx - 1) / 2.0 - kx * (X - 1) / 2.0 + shift_mm[1] / sx_in
    return ky, kx, y0, x0


def model_grid(volume: Volume, contract: dict, *, shift_mm=(0.0, 0.0)) -> ModelGrid:
    """The model grid of ``volume``: its affine, shape and the input slices' place in it.

    In-plane, the model grid is centred on the input's centre (plus ``shift_mm`` ``(dy, dx)``
    in input-axis mm, used by augmentation); through-plane it keeps the input's slices.
    """
    S, Y, X = (int(v) for v in contract["size"])
    spacing = contract["spacing"]
    nz = volume.spatial_shape[0]
    sy, sx = float(spacing[1]), float(spacing[2])
    if spacing[0] is None:
        first = (S - nz) // 2
        if first < 0:
            raise InputError(f"the stack has {nz} slices; the model handles at most {S}")
        kz, z0, count = 1.0, -float(first), nz
    else:
        kz = float(spacing[0]) / volume.spacing[0]
        z0 = (nz - 1) / 2.0 - kz * (S - 1) / 2.0
        first, count = 0, S
    ky, kx, y0, x0 = centred_inplane(volume, (sy, sx), (Y, X), shift_mm=shift_mm)
    # model index (x', y', z') -> input index (x, y, z), NIfTI axis order
    m = np.array([[kx, 0, 0, x0], [0, ky, 0, y0], [0, 0, kz, z0], [0, 0, 0, 1.0]])
    return ModelGrid(affine=volume.affine @ m, shape=(S, Y, X), first=first, count=count)


def normalise(array: np.ndarray, method: str = "percentile_1_99") -> np.ndarray:
    """Intensities to the model's range: ``percentile_1_99`` maps the 1st-99th percentile to [0, 1]
    (clipped); ``percentile_5_95_sym`` maps the 5th-95th percentile to [-1, 1] (clipped)."""
    a = np.asarray(array, dtype=np.float32)
    if method == "percentile_1_99":
        lo, hi = np.percentile(a, [1, 99])
        return np.clip((a - lo) / max(hi - lo, 1e-6), 0.0, 1.0).astype(np.float32)
    if method == "percentile_5_95_sym":
        lo, hi = np.percentile(a, [5, 95])
        return (2.0 * np.clip((a - lo) / max(hi - lo, 1e-6), 0.0, 1.0) - 1.0).astype(np.float32)
    raise ValueError(f"unknown normalisation {method!r}")


def hr_affine(lr_affine: np.ndarray, factor: int) -> np.ndarray:
    """The affine of the LR-aligned HR grid: ``factor`` slices per LR slice, centred on it
    (HR slice ``factor * k + j`` lies ``(j - (factor - 1) / 2) / factor`` LR spacings from LR slice ``k``)."""
    m = np.eye(4)
    m[2, 2] = 1.0 / factor
    m[2, 3] = -(factor - 1) / (2.0 * factor)
    return np.asarray(lr_affine, float) @ m


def lr_model_grid(volume: Volume, contract: dict, *, multiple: int = 8) -> ModelGrid:
    """The grid of a fully convolutional LR -> HR model (ACNN): the input's own slices, in-plane
    resampled to the contract spacing over the input's field of view, padded to a multiple of
    ``multiple`` pixels (centred)."""
    nz, ny, nx = volume.spatial_shape
    _, sy_in, sx_in = volume.spacing
    sy, sx = (float(v) for v in contract["spacing"][1:])
    Y = int(np.ceil(ny * sy_in / sy / multiple) * multiple)
    X = int(np.ceil(nx * sx_in / sx / multiple) * multiple)
    ky, kx, y0, x0 = centred_inplane(volume, (sy, sx), (Y, X))
    m = np.array([[kx, 0, 0, x0], [0, ky, 0, y0], [0, 0, 1.0, 0.0], [0, 0, 0, 1.0]])
    return ModelGrid(affine=volume.affine @ m, shape=(nz, Y, X), first=0, count=nz)


def slab_indices(n_slices: int, slice_spacing: float, *, slab: int, slab_spacing_mm: float) -> np.ndarray:
    """``(n_slices, slab)`` int array: the input slices that make the slab of each centre slice
    (``-1`` beyond the stack's ends: a zero slice). Neighbours lie ``d`` slices apart, ``d`` the
    whole number of slices nearest ``slab_spacing_mm`` (at least 1), so that a thin-slice stack
    shows the network about the slice distance it was trained with."""
    d = max(1, int(round(float(slab_spacing_mm) / float(slice_spacing))))
    offsets = (np.arange(slab) - slab // 2) * d
    idx = np.arange(n_slices)[:, None] + offsets[None, :]
    return np.where((idx >= 0) & (idx < n_slices), idx, -1)


def to_model(volume: Volume, contract: dict, grid: ModelGrid | None = None) -> tuple[np.ndarray, ModelGrid]:
    """Normalised image on the model grid, ``(S, Y, X)`` float32, and the grid."""
    grid = grid or model_grid(volume, contract)
    norm = volume.with_array(normalise(volume.array, contract.get("normalisation", "percentile_1_99")))
    return resample(norm, affine=grid.affine, shape=grid.shape, order=1).array.astype(np.float32), grid


def probabilities_to_input(prob: np.ndarray, grid: ModelGrid, volume: Volume) -> np.ndarray:
    """Class probabilities ``(C, S, Y, X)`` on the model grid -> ``(C, z, y, x)`` on the input grid
    (linear interpolation; outside the model grid the background class gets probability 1)."""
    out = np.empty((prob.shape[0], *volume.spatial_shape), np.float32)
    for c in range(prob.shape[0]):
        out[c] = resample(grid.volume(prob[c]), volume, order=1, cval=1.0 if c == 0 else 0.0).array
    return out
