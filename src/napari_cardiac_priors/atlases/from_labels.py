"""Atlases from labelled low-resolution stacks: slice-shift correction and shape-based
interpolation onto the high-resolution atlas grid.

A cine short-axis stack is acquired one breath-hold per slice, so its slices are shifted
in-plane against each other by a few millimetres, and its slices lie 8-10 mm apart. An atlas
needs a smooth heart on a 1.25 x 1.25 x 2 mm grid (:data:`~..conventions.HR_SPACING`):

1. :func:`slice_shifts`: each slice's in-plane shift, measured as the offset of its LV
   (cavity + myocardium) centroid from a straight line fitted through all of them (the LV
   long axis); slices without LV move with their nearest neighbour that has one.
2. :func:`shape_interpolate`: every structure as a signed distance map per slice (mm,
   negative inside), moved by the slice's shift, sampled on the HR grid in-plane and
   interpolated linearly between slices (shape-based interpolation: smooth surfaces, no
   stair steps). Beyond its last slice a structure is closed half a slice further, with a
   flat face at the base (the valve plane) and a dome at the apex.
3. :func:`atlas_from_labels`: both, plus the six landmarks measured on the result.

Labels are canonical (0 background, 1 LV, 2 MYO, 3 RV, 4 RV wall); arrays are ``(z, y, x)``.
"""

from __future__ import annotations

import numpy as np

from ..conventions import HR_SPACING, LV, MYO, RV, RVW
from ..errors import InputError
from ..volume import Volume

#: nested regions interpolated one by one, then painted in this order (later wins)
_REGIONS = (("rv_wall", (RVW,)), ("rv", (RV,)), ("epicardium", (LV, MYO)), ("cavity", (LV,)))
_PAINT = {"rv_wall": RVW, "rv": RV, "epicardium": MYO, "cavity": LV}
#: signed distance (mm) given to a slice that does not hold a structure
_FAR = 1e3


def slice_shifts(labels: Volume, *, min_area_mm2: float = 50.0) -> np.ndarray:
    """In-plane shift of every slice from the LV axis, ``(S, 2)`` ``(dy, dx)`` in mm.

    The LV (cavity + myocardium) centroid of each slice with at least ``min_area_mm2`` of it
    is compared with a least-squares straight line through all of them; a slice without LV
    takes the shift of the nearest slice that has one. Subtracting the shift from a slice's
    positions puts its LV on the line. Fewer than two LV slices: no shift.
    """
    arr = np.asarray(labels.array)
    sz, sy, sx = labels.spacing
    lv = np.isin(arr, (LV, MYO))
    area = lv.sum(axis=(1, 2)) * sy * sx
    ks = np.flatnonzero(area >= min_area_mm2)
    shifts = np.zeros((arr.shape[0], 2))
    if ks.size < 2:
        return shifts
    centres = np.array([np.argwhere(lv[k]).mean(axis=0) * (sy, sx) for k in ks])
    design = np.stack([np.ones(ks.size), ks.astype(float)], axis=1)
    coef, *_ = np.linalg.lstsq(design, centres, rcond=None)
    shifts[ks] = centres - design @ coef
    for k in range(arr.shape[0]):
        if k not in ks:
            shifts[k] = shifts[ks[np.argmin(np.abs(ks - k))]]
    return shifts


def _signed_distance(mask: np.ndarray, spacing) -> np.ndarray:
    """Signed distance (mm) of a 2D mask: negative inside, positive outside, 0 nowhere."""
    from scipy import ndimage

    if not mask.any():
        return np.full(mask.shape, _FAR)
    if mask.all():
        return np.full(mask.shape, -_FAR)
    return ndimage.distance_transform_edt(~mask, sampling=spacing) - ndimage.distance_transform_edt(mask, sampling=spacing)


def _ends(present: np.ndarray) -> tuple[int, int] | None:
    ks = np.flatnonzero(present)
    return (int(ks[0]), int(ks[-1])) if ks.size else None


def apex_side(labels: Volume) -> int:
    """+1 if the apex lies towards the last slice of ``labels``, -1 towards the first: the end
    where the LV (cavity + myocardium) is smaller, compared over the outer quarter of its
    slices (the base, cut by the valve plane, is the wide end)."""
    arr = np.asarray(labels.array)
    area = np.isin(arr, (LV, MYO)).sum(axis=(1, 2)).astype(float)
    ends = _ends(area > 0)
    if ends is None:
        raise InputError("the labels hold no LV (labels 1 and 2); an atlas needs a left ventricle")
    lo, hi = ends
    q = max(1, (hi - lo + 1) // 4)
    return 1 if area[hi - q + 1 : hi + 1].mean() < area[lo : lo + q].mean() else -1


def hr_grid_around(labels: Volume, *, spacing=HR_SPACING, margin_mm: float = 10.0, z_extra_mm: float | None = None):
    """``(affine, shape, origin, step)`` of a grid of ``spacing`` ``(sz, sy, sx)`` mm in the
    orientation of ``labels``, covering its structures plus ``margin_mm`` in-plane and
    ``z_extra_mm`` (default: one slice) beyond the first and last slice that holds one.
    ``origin`` and ``step`` give the continuous ``labels`` index ``(z, y, x)`` of HR voxel
    ``(z', y', x')``: ``origin + step * (z', y', x')``."""
    arr = np.asarray(labels.array)
    fg = np.argwhere(arr > 0)
    if fg.size == 0:
        raise InputError("the labels are empty; there is no heart to build an atlas from")
    lo_v, hi_v = fg.min(axis=0).astype(float), fg.max(axis=0).astype(float)
    sp = np.asarray(labels.spacing, float)
    extra = np.array([z_extra_mm if z_extra_mm is not None else sp[0], margin_mm, margin_mm]) / sp
    lo_v, hi_v = lo_v - extra, hi_v + extra
    step = np.asarray(spacing, float) / sp
    shape = np.floor((hi_v - lo_v) / step).astype(int) + 1
    m = np.eye(4)  # HR (x', y', z') -> labels (x, y, z)
    m[:3, :3] = np.diag(step[::-1])
    m[:3, 3] = lo_v[::-1]
    return labels.affine @ m, tuple(int(v) for v in shape), lo_v, step


def shape_interpolate(labels: Volume, *, shifts_mm=None, spacing=HR_SPACING, margin_mm: float = 10.0,
                      caps: tuple[str, str] | None = None) -> Volume:
    """The label map ``labels`` (a stack of slices) interpolated shape-based onto an HR grid.

    Parameters
    ----------
    labels : a labels Volume ``(S, Y, X)``; slices are its first axis.
    shifts_mm : ``(S, 2)`` in-plane shift ``(dy, dx)`` of each slice to undo (see
        :func:`slice_shifts`), or None.
    spacing : the output spacing ``(sz, sy, sx)`` mm, in the orientation of ``labels``.
    margin_mm : in-plane margin around the structures; the grid reaches one slice beyond the
        first and last slice holding a structure.
    caps : how each structure is closed beyond its ``(first, last)`` slice: "flat" (half a
        slice further, a plane) or "dome" (half a slice further at its deepest point, a
        rounded end). Default: flat at the base, dome at the apex (:func:`apex_side`).

    Returns
    -------
    A labels Volume on the HR grid (same world space and orientation).
    """
    from scipy import ndimage

    arr = np.asarray(labels.array)
    if arr.ndim != 3:
        raise InputError("shape-based interpolation needs a 3D label map (z, y, x)")
    if caps is None:
        caps = ("flat", "dome") if apex_side(labels) > 0 else ("dome", "flat")
    if any(c not in ("flat", "dome") for c in caps):
        raise InputError(f"caps must be 'flat' or 'dome', got {caps!r}")
    S = arr.shape[0]
    shifts = np.zeros((S, 2)) if shifts_mm is None else np.asarray(shifts_mm, float)
    affine, shape, origin, step = hr_grid_around(labels, spacing=spacing, margin_mm=margin_mm)
    sz, sy, sx = labels.spacing
    yy = origin[1] + step[1] * np.arange(shape[1])
    xx = origin[2] + step[2] * np.arange(shape[2])
    gy, gx = np.meshgrid(yy, xx, indexing="ij")
    zf = origin[0] + step[0] * np.arange(shape[0])  # continuous slice index of each HR slice
    out = np.zeros(shape, np.uint8)
    for name, values in _REGIONS:
        present = np.isin(arr, values).any(axis=(1, 2))
        ends = _ends(present)
        if ends is None:
            continue
        # one signed distance map per slice on the HR in-plane grid, the slice's shift undone
        sdf = {}
        for k in range(ends[0], ends[1] + 1):
            d = _signed_distance(np.isin(arr[k], values), (sy, sx))
            coords = [gy + shifts[k, 0] / sy, gx + shifts[k, 1] / sx]
            sdf[k] = ndimage.map_coordinates(d, coords, order=1, mode="nearest")
        for side, k_end, k_cap in ((0, ends[0], ends[0] - 1), (1, ends[1], ends[1] + 1)):
            last = sdf[k_end]
            sdf[k_cap] = np.abs(last) if caps[side] == "flat" else np.full(last.shape, max(-last.min(), 0.0))
        inside = np.zeros(shape, bool)
        for j, z in enumerate(zf):
            k0 = int(np.floor(z))
            if k0 not in sdf or k0 + 1 not in sdf:
                continue
            w = z - k0
            inside[j] = (1.0 - w) * sdf[k0] + w * sdf[k0 + 1] < 0.0
        out[inside] = _PAINT[name]
    return Volume(out, affine=affine, kind="labels", metadata={"interpolated_from": list(arr.shape)})


def atlas_from_labels(labels: Volume, atlas_id: str, *, correct_shifts: bool = True):
    """An :class:`~..registry.atlases.Atlas` from a labelled LR stack: slice shifts corrected,
    shape-based interpolation onto the HR grid, the six landmarks measured on the result."""

    from ..landmarks import derive_from_labels
    from ..registry.atlases import Atlas

    if labels.kind != "labels" or labels.is_cine:
        raise InputError("an atlas is built from a 3D label map")
    if not np.isin(labels.array, (LV,)).any() or not np.isin(labels.array, (MYO,)).any():
        raise InputError("the labels need an LV cavity (1) and myocardium (2)")
    shifts = slice_shifts(labels) if correct_shifts else None
    hr = shape_interpolate(labels, shifts_mm=shifts)
    landmarks = derive_from_labels(hr, notes=[])
    if landmarks.valid.sum() < 4:
        raise InputError("fewer than 4 of the six landmarks could be measured on the labels")
    return Atlas(atlas_id, hr, landmarks)


def build_from_label_files(paths, *, acdc_values: bool = False) -> tuple[list, dict]:
    """Atlases from label-map files (one atlas each, its id the file's stem), and
    ``{path: reason}`` of those that cannot be one. ``acdc_values``: the files use the ACDC
    values (1 RV, 2 MYO, 3 LV) rather than the canonical ones."""
    from ..conventions import ACDC_TO_CANONICAL
    from ..io import read_volume, stem

    atlases, skipped = [], {}
    for path in paths:
        try:
            labels = read_volume(path, kind="labels")
            if labels.is_cine:
                raise InputError("a cine stack of labels; give one phase per file")
            if acdc_values:
                if int(labels.array.max()) > 3:
                    raise InputError(f"label value {int(labels.array.max())} is not an ACDC label (0-3)")
                labels = labels.with_array(ACDC_TO_CANONICAL[labels.array.astype(np.int64)])
            atlases.append(atlas_from_labels(labels, stem(path)))
        except (InputError, ValueError, OSError) as e:
            skipped[str(path)] = str(e)
    return atlases, skipped
