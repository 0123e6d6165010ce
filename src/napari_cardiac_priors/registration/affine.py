"""World -> world affine initialisations: from landmarks (SSLLN) and from label moments.

Both return a (4, 4) matrix acting on world ``(x, y, z)`` RAS mm (homogeneous column
vectors) that maps the *moving* (atlas) world onto the *fixed* (target) world:
``fixed ~ M @ [moving, 1]``. Pass it as ``affines[n]`` to the warping, selection and FFD
functions of this package.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..landmarks import Landmarks
from ..volume import Volume

#: Smallest singular value of the centred point set, relative to the largest, below which a
#: point set counts as collinear/coplanar/duplicated.
RANK_TOLERANCE = 1e-6


def _centred_rank_check(points: np.ndarray, name: str) -> None:
    centred = points - points.mean(axis=0)
    s = np.linalg.svd(centred, compute_uv=False)
    if s[0] <= 0 or s[-1] <= RANK_TOLERANCE * s[0]:
        kind = "duplicated" if s[0] <= 0 else ("collinear" if s[1] <= RANK_TOLERANCE * s[0] else "coplanar")
        raise InputError(
            f"the {name} landmarks are {kind} (singular values {np.array2string(s, precision=3)} mm): "
            "a 12-parameter affine needs at least 4 points that span 3D"
        )


def landmark_affine(moving: Landmarks, fixed: Landmarks) -> np.ndarray:
    """12-DOF least-squares affine mapping ``moving`` landmark positions onto ``fixed`` ones.

    Rows that are NaN in either set are dropped. With 4 valid pairs the fit is exact; with
    more it minimises the summed squared distance (mm^2) in the fixed world.

    Parameters
    ----------
    moving, fixed : Landmarks, world RAS mm, rows in the same (canonical) order.

    Returns
    -------
    (4, 4) ndarray: world ``(x, y, z)`` moving -> fixed.

    Raises
    ------
    InputError
        Fewer than 4 landmarks valid in both sets, or a rank-deficient (collinear, coplanar,
        duplicated) configuration in either set.
    """
    for name, lm in (("moving", moving), ("fixed", fixed)):
        if not isinstance(lm, Landmarks):
            raise InputError(f"{name} must be Landmarks, got {type(lm).__name__}")
    ok = moving.valid & fixed.valid
    n = int(ok.sum())
    if n < 4:
        raise InputError(f"a landmark affine needs at least 4 landmarks in both sets, got {n}")
    src = moving.positions[ok]
    dst = fixed.positions[ok]
    _centred_rank_check(src, "moving")
    _centred_rank_check(dst, "fixed")
    # Centre both sets for conditioning: dst - cd = L (src - cs).
    cs, cd = src.mean(axis=0), dst.mean(axis=0)
    lin, *_ = np.linalg.lstsq(src - cs, dst - cd, rcond=None)  # (3, 3): rows are src dims
    m = np.eye(4)
    m[:3, :3] = lin.T
    m[:3, 3] = cd - lin.T @ cs
    return m


def _moments(volume: Volume, structures) -> tuple[np.ndarray, np.ndarray, dict]:
    """Centroid (3,), covariance (3, 3) of the union of ``structures`` and per-structure
    centroids ``{label: (3,)}``, all in world mm."""
    lab = np.asarray(volume.array)
    mask = np.isin(lab, structures)
    idx = np.argwhere(mask)  # (N, 3) z, y, x
    pts = volume.index_to_world(idx)
    values = lab[mask]
    centroid = pts.mean(axis=0)
    d = pts - centroid
    cov = d.T @ d / len(pts)
    per = {int(k): pts[values == k].mean(axis=0) for k in structures if np.any(values == k)}
    return centroid, cov, per


def label_affine(moving_labels: Volume, fixed_labels: Volume, *, structures=(1, 2, 3)) -> np.ndarray:
    """Affine from label moments: the "label-based affine" baseline (SSLLN Fig. 12).

    Matches the centroid and the covariance (principal axes and their extents) of the union
    of ``structures`` (default LV + MYO + RV) of ``moving_labels`` onto ``fixed_labels``:
    ``M = V_f diag(sqrt(l_f)) S diag(1 / sqrt(l_m)) V_m^T`` (eigen-decompositions of the two
    covariances, eigenvalues in decreasing order). The sign flips ``S`` of the principal axes
    are the proper ones (det M > 0) that bring the per-structure centroids closest (least
    squares, mm). Deterministic, non-iterative; it maps principal axes onto principal axes,
    so it recovers rigid + axis-aligned scalings of the moments, not shears.

    Returns (4, 4) world ``(x, y, z)`` moving -> fixed.
    """
    for name, v in (("moving_labels", moving_labels), ("fixed_labels", fixed_labels)):
        if not isinstance(v, Volume) or v.is_cine:
            raise InputError(f"{name} must be a 3D labels Volume")
    structures = [int(k) for k in structures]
    for name, v in (("moving_labels", moving_labels), ("fixed_labels", fixed_labels)):
        if np.count_nonzero(np.isin(v.array, structures)) < 4:
            raise InputError(f"{name} holds none of the structures {structures}")
    cm, cov_m, per_m = _moments(moving_labels, structures)
    cf, cov_f, per_f = _moments(fixed_labels, structures)
    lm, vm = np.linalg.eigh(cov_m)
    lf, vf = np.linalg.eigh(cov_f)
    lm, vm, lf, vf = lm[::-1], vm[:, ::-1], lf[::-1], vf[:, ::-1]
    if lm[-1] <= 1e-9 * lm[0] or lf[-1] <= 1e-9 * lf[0]:
        raise InputError("the label maps are flat (a single slice or line): no 3D moments to match")
    whiten = np.diag(1.0 / np.sqrt(lm)) @ vm.T
    colour = vf @ np.diag(np.sqrt(lf))
    shared = sorted(set(per_m) & set(per_f))
    best, best_cost = None, np.inf
    for signs in ((1, 1, 1), (1, -1, -1), (-1, 1, -1), (-1, -1, 1), (-1, -1, -1), (-1, 1, 1), (1, -1, 1), (1, 1, -1)):
        lin = colour @ np.diag(signs) @ whiten
        if np.linalg.det(lin) <= 0:
            continue
        cost = sum(float(np.sum((lin @ (per_m[k] - cm) + cf - per_f[k]) ** 2)) for k in shared)
        if cost < best_cost - 1e-9:
            best, best_cost = lin, cost
    m = np.eye(4)
    m[:3, :3] = best
    m[:3, 3] = cf - best @ cm
    return m
