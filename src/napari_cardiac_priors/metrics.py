"""Segmentation and landmark metrics: Dice, 3D Hausdorff / HD95 / mean surface distance in mm,
volumes (mL), masses (g), ejection fraction, landmark point-to-point error.

Label arrays are ``(z, y, x)`` with canonical values; ``spacing`` is ``(sz, sy, sx)`` mm.
Surface distances are 3D (between the voxel faces' boundary voxels of the two masks, in mm,
with anisotropic spacing), not the per-slice 2D contour distances of some cardiac tools.

Empty structures: when both masks are empty Dice is 1 and distances are 0; when exactly one
is empty Dice is 0 and distances are NaN (undefined).
"""

from __future__ import annotations

import numpy as np

from .conventions import LABELS, LV, MYO, MYOCARDIAL_DENSITY_G_PER_ML, RV, RVW

#: Structures reported by :func:`evaluate_labels`, by canonical value.
STRUCTURES = {LV: "LV", MYO: "MYO", RV: "RV", RVW: "RVW"}


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"prediction and reference differ in shape: {a.shape} vs {b.shape}")


def dice(pred: np.ndarray, ref: np.ndarray) -> float:
    """Dice overlap of two boolean masks of the same shape (1.0 when both are empty)."""
    pred, ref = np.asarray(pred, bool), np.asarray(ref, bool)
    _check_pair(pred, ref)
    total = pred.sum() + ref.sum()
    if total == 0:
        return 1.0
    return float(2.0 * np.logical_and(pred, ref).sum() / total)


def _surface(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    eroded = ndimage.binary_erosion(mask, structure=ndimage.generate_binary_structure(mask.ndim, 1), border_value=0)
    return mask & ~eroded


def surface_distances(pred: np.ndarray, ref: np.ndarray, spacing) -> tuple[np.ndarray, np.ndarray]:
    """Directed distances (mm) from the surface voxels of ``pred`` to ``ref``'s surface, and back.

    ``pred`` and ``ref`` are boolean ``(z, y, x)`` masks; ``spacing`` is ``(sz, sy, sx)`` mm.
    Returns two 1D arrays (empty when the corresponding mask is empty).
    """
    from scipy import ndimage

    pred, ref = np.asarray(pred, bool), np.asarray(ref, bool)
    _check_pair(pred, ref)
    spacing = tuple(float(s) for s in spacing)
    if len(spacing) != pred.ndim:
        raise ValueError(f"spacing has {len(spacing)} values for a {pred.ndim}D mask")
    if not pred.any() or not ref.any():
        return np.empty(0), np.empty(0)
    # crop to the union's bounding box (plus a margin) for speed
    both = pred | ref
    idx = np.nonzero(both)
    sl = tuple(slice(max(int(i.min()) - 2, 0), int(i.max()) + 3) for i in idx)
    sp, sr = _surface(pred[sl]), _surface(ref[sl])
    dt_ref = ndimage.distance_transform_edt(~sr, sampling=spacing)
    dt_pred = ndimage.distance_transform_edt(~sp, sampling=spacing)
    return dt_ref[sp], dt_pred[sr]


def hausdorff(pred: np.ndarray, ref: np.ndarray, spacing, *, percentile: float = 100.0) -> float:
    """Symmetric Hausdorff distance in mm; ``percentile=95`` gives HD95.

    HD95 is the larger of the two directed 95th percentiles (as MedPy computes it).
    """
    a, b = surface_distances(pred, ref, spacing)
    if a.size == 0 or b.size == 0:
        return 0.0 if not np.any(pred) and not np.any(ref) else float("nan")
    return float(max(np.percentile(a, percentile), np.percentile(b, percentile)))


def hd95(pred: np.ndarray, ref: np.ndarray, spacing) -> float:
    """95th-percentile symmetric Hausdorff distance (mm)."""
    return hausdorff(pred, ref, spacing, percentile=95.0)


def mean_surface_distance(pred: np.ndarray, ref: np.ndarray, spacing) -> float:
    """Average symmetric surface distance (mm): the mean over both directed distance sets."""
    a, b = surface_distances(pred, ref, spacing)
    if a.size == 0 or b.size == 0:
        return 0.0 if not np.any(pred) and not np.any(ref) else float("nan")
    return float(np.concatenate([a, b]).mean())


def evaluate_labels(pred: np.ndarray, ref: np.ndarray, spacing, *, structures=None) -> dict:
    """Dice, HD, HD95 and mean surface distance per structure.

    Returns ``{"LV": {"dice": ..., "hd": ..., "hd95": ..., "msd": ...}, ...}`` for the
    canonical structures (default: those present in either map).
    """
    pred, ref = np.asarray(pred), np.asarray(ref)
    _check_pair(pred, ref)
    if structures is None:
        present = set(np.unique(pred).tolist()) | set(np.unique(ref).tolist())
        structures = [v for v in STRUCTURES if v in present]
    out = {}
    for v in structures:
        p, r = pred == v, ref == v
        a, b = surface_distances(p, r, spacing)
        if a.size and b.size:
            hd, h95 = max(a.max(), b.max()), max(np.percentile(a, 95), np.percentile(b, 95))
            msd = np.concatenate([a, b]).mean()
        else:
            hd = h95 = msd = 0.0 if not p.any() and not r.any() else float("nan")
        out[LABELS[v]] = {"dice": dice(p, r), "hd": float(hd), "hd95": float(h95), "msd": float(msd)}
    return out


def volumes_ml(labels: np.ndarray, spacing) -> dict:
    """Volume of each canonical structure in mL: ``{"LV": ..., "MYO": ..., "RV": ..., "RVW": ...}``."""
    labels = np.asarray(labels)
    voxel_ml = float(np.prod([float(s) for s in spacing])) / 1000.0
    counts = np.bincount(labels.ravel().astype(np.int64), minlength=len(LABELS))
    return {name: float(counts[v] * voxel_ml) for v, name in STRUCTURES.items()}


def mass_g(volume_ml: float, *, density: float = MYOCARDIAL_DENSITY_G_PER_ML) -> float:
    """Myocardial mass (g) of a wall volume (mL), density 1.05 g/mL."""
    return float(volume_ml) * density


def ejection_fraction(edv_ml: float, esv_ml: float) -> float:
    """Ejection fraction in percent, ``100 (EDV - ESV) / EDV``; NaN when EDV is 0."""
    edv_ml, esv_ml = float(edv_ml), float(esv_ml)
    return float("nan") if edv_ml <= 0 else 100.0 * (edv_ml - esv_ml) / edv_ml


def cardiac_measures(labels: np.ndarray, spacing) -> dict:
    """Volumes (mL) and masses (g) of one phase: ``lv_ml, myo_ml, lv_mass_g, rv_ml, rvw_ml, rv_mass_g``.

    ``rv_mass_g`` is NaN when the map has no RV wall label.
    """
    v = volumes_ml(labels, spacing)
    has_rvw = bool(np.any(np.asarray(labels) == RVW))
    return {
        "lv_ml": v["LV"],
        "myo_ml": v["MYO"],
        "lv_mass_g": mass_g(v["MYO"]),
        "rv_ml": v["RV"],
        "rvw_ml": v["RVW"],
        "rv_mass_g": mass_g(v["RVW"]) if has_rvw else float("nan"),
    }


def landmark_errors(pred, ref) -> np.ndarray:
    """Point-to-point distances (mm) between two landmark sets, ``(6,)``, NaN where either is missing.

    ``pred`` and ``ref`` are :class:`~napari_cardiac_priors.landmarks.Landmarks` or ``(6, 3)``
    arrays of world positions in mm.
    """
    p = np.asarray(getattr(pred, "positions", pred), dtype=np.float64)
    r = np.asarray(getattr(ref, "positions", ref), dtype=np.float64)
    if p.shape != r.shape or p.shape[-1] != 3:
        raise ValueError(f"landmark arrays must both be (n, 3), got {p.shape} and {r.shape}")
    return np.linalg.norm(p - r, axis=-1)


def anatomy_errors(labels: np.ndarray) -> list[str]:
    """Anatomically implausible errors of a bi-ventricular label map ``(z, y, x)``, as short texts.

    The checks (ACNN §III's "anatomically implausible" results): each of LV, MYO and RV is
    present and one connected 3D component (26-connectivity, so that pieces on neighbouring
    slices that touch at an edge or corner count as one; in-plane shifts between breath-holds
    still split some manual ACDC labels, see BENCHMARKS.md for the rate); on every slice with LV cavity
    the cavity is enclosed by myocardium (no LV pixel 4-adjacent to background or RV: a hole
    in the myocardium); the RV cavity touches the LV wall somewhere (the septum). An empty
    list means none was found.
    """
    from scipy import ndimage

    labels = np.asarray(labels)
    errors = []
    for v in (LV, MYO, RV):
        mask = labels == v
        if not mask.any():
            errors.append(f"no {LABELS[v]}")
            continue
        n = ndimage.label(mask, np.ones((3, 3, 3), bool))[1]
        if n > 1:
            errors.append(f"{LABELS[v]} in {n} pieces")
    open_slices = 0
    cross = ndimage.generate_binary_structure(2, 1)
    lv_slices = np.flatnonzero((labels == LV).any(axis=(1, 2)))
    for k in lv_slices[1:-1]:  # the end slices may open legitimately (LV outflow tract at the base)
        outside = ~np.isin(labels[k], (LV, MYO))
        if np.any(ndimage.binary_dilation(labels[k] == LV, cross) & outside):
            open_slices += 1
    if open_slices:
        errors.append(f"myocardium open on {open_slices} slice(s)")
    if (labels == RV).any() and (labels == MYO).any():
        near_rv = ndimage.binary_dilation(labels == RV, np.stack([np.zeros((3, 3), bool), cross, np.zeros((3, 3), bool)]))
        if not np.any(near_rv & (labels == MYO)):
            errors.append("RV does not touch the LV wall")
    return errors
