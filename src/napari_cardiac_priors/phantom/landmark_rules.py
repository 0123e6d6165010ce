"""The six landmarks of a phantom, computed from its continuous geometry.

The rules are chosen so that they can also be measured on a label map (a function deriving
landmarks from labels mirrors them). All points are world RAS mm; "plane" below is the world
axial plane (constant z), the short-axis slice of the stack.

1. ``apex``: the lowest point (minimum world z) of the LV epicardium. On a label map: the
   centroid of the myocardium on the lowest slice that holds myocardium.
2. ``mitral_valve``: the area centroid of the LV cavity's cross-section in the basal plane
   (the plane that truncates the LV, perpendicular to its long axis). On a label map: the
   centroid of the LV cavity voxels that touch the background (the open basal face).
3. Mid-ventricular plane: ``z_mid = (apex_z + mitral_valve_z) / 2``; the LV long axis is the
   line apex - mitral valve, so it crosses this plane at ``P = (apex + mitral_valve) / 2``.
   The following are measured in this plane, in polar coordinates around ``P``:
4. ``rv_insert_anterior`` / ``rv_insert_inferior``: the two ends of the arc of the LV
   epicardium that the RV cavity touches (the RV cavity is the first thing outside the
   epicardium along the ray from ``P``), taken on the epicardium; anterior is the one with the
   larger world y. If the RV touches several arcs, the longest one counts.
5. ``rv_lateral``: the RV cavity point farthest along the direction from ``P`` to the RV
   cavity's area centroid in this plane (the turning point of the RV free wall).
6. ``lv_lateral``: on the ray from ``P`` pointing away from the RV cavity's area centroid (in
   this plane), the midpoint between the endocardium and the epicardium.

A landmark that cannot be found (no RV cavity in the plane) is NaN, with a warning.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..conventions import LANDMARK_NAMES, LV, MYO, RV
from ..landmarks import Landmarks, first_false, longest_run
from .anatomy import THETA, HeartFrame, PhaseGeometry, label_points

_N_RAYS = 720
_STEP = 0.25  # mm, radial sampling in the mid-ventricular plane
_R_MAX = 120.0


def apex_point(geom: PhaseGeometry, frame: HeartFrame) -> np.ndarray:
    """World position (3,) of the lowest point of the LV epicardium."""
    psi = np.linspace(0.0, np.pi / 2.0, 181)[:, None]
    th = THETA[::2][None, :]
    r = geom.epi_radius[::2][None, :] * np.sin(psi)
    u = geom.lv_centre_u - geom.epi_half_length * np.cos(psi)
    q = np.stack(np.broadcast_arrays(r * np.cos(th), r * np.sin(th), u), axis=-1).reshape(-1, 3)
    p = frame.to_world(q)
    return p[np.argmin(p[:, 2])]


def mitral_valve_point(geom: PhaseGeometry, frame: HeartFrame) -> np.ndarray:
    """World position (3,) of the area centroid of the LV cavity in the basal plane."""
    h = geom.base_u - geom.lv_centre_u
    rho = geom.endo_radius * np.sqrt(max(0.0, 1.0 - (h / geom.endo_half_length) ** 2))
    area = np.sum(rho**2)
    cx = (2.0 / 3.0) * np.sum(rho**3 * np.cos(THETA)) / area
    cy = (2.0 / 3.0) * np.sum(rho**3 * np.sin(THETA)) / area
    return frame.to_world([cx, cy, geom.base_u])


def _labels_at(geom, frame, points) -> np.ndarray:
    return label_points(geom, frame.coords_of_points(points))


def _boundary(geom, frame, origin, dirs, inside_lo, outside_hi, inside, n_iter: int = 14) -> np.ndarray:
    """Bisection along rays ``origin + rho * dirs`` for the radius where ``inside(labels)``
    switches from True (at ``inside_lo``) to False (at ``outside_hi``)."""
    lo, hi = np.asarray(inside_lo, float).copy(), np.asarray(outside_hi, float).copy()
    for _ in range(n_iter):
        mid = 0.5 * (lo + hi)
        ok = inside(_labels_at(geom, frame, origin + mid[:, None] * dirs))
        lo = np.where(ok, mid, lo)
        hi = np.where(ok, hi, mid)
    return 0.5 * (lo + hi)


def _in_lv(lab):
    return (lab == LV) | (lab == MYO)


def phantom_landmarks(geom: PhaseGeometry, frame: HeartFrame) -> Landmarks:
    """The six landmarks of one phase (see the module docstring for the rules)."""
    apex = apex_point(geom, frame)
    mv = mitral_valve_point(geom, frame)
    centre = 0.5 * (apex + mv)

    phi = (np.arange(_N_RAYS) + 0.5) * (2.0 * np.pi / _N_RAYS)
    dirs = np.stack([np.cos(phi), np.sin(phi), np.zeros_like(phi)], axis=-1)
    rho = (np.arange(int(_R_MAX / _STEP)) + 0.5) * _STEP
    lab = _labels_at(geom, frame, centre + rho[None, :, None] * dirs[:, None, :])

    # Epicardium along every ray, then what lies just outside it.
    k = first_false(_in_lv(lab))
    lo = np.where(k > 0, rho[np.maximum(k - 1, 0)], 0.0)
    hi = np.where(k < rho.size, rho[np.minimum(k, rho.size - 1)], _R_MAX)
    epi = _boundary(geom, frame, centre, dirs, lo, hi, _in_lv)
    touches_rv = _labels_at(geom, frame, centre + (epi + 0.02)[:, None] * dirs) == RV

    positions = np.full((len(LANDMARK_NAMES), 3), np.nan)
    positions[LANDMARK_NAMES.index("apex")] = apex
    positions[LANDMARK_NAMES.index("mitral_valve")] = mv
    is_rv = lab == RV
    if not is_rv.any():
        warnings.warn("phantom: no RV cavity in the mid-ventricular plane; RV landmarks are NaN", stacklevel=2)
        return Landmarks(positions, np.where(np.isfinite(positions[:, 0]), 1.0, np.nan), ("phantom",) * 6)

    # RV centroid (polar area weights rho) and the lateral LV wall opposite it.
    w = is_rv * rho[None, :]
    pts_xy = centre[:2] + rho[None, :, None] * dirs[:, None, :2]
    rv_centroid = np.einsum("ij,ijk->k", w, pts_xy) / w.sum()
    d = centre[:2] - rv_centroid
    d = np.array([*(d / np.linalg.norm(d)), 0.0])[None, :]
    fine = np.arange(0.05, _R_MAX, 0.1)
    lab_d = _labels_at(geom, frame, centre + fine[:, None] * d)
    ends = []
    for inside in (lambda lb: lb == LV, _in_lv):
        j = int(first_false(inside(lab_d)))
        lo_, hi_ = (fine[j - 1] if j > 0 else 0.0), (fine[j] if j < fine.size else _R_MAX)
        ends.append(_boundary(geom, frame, centre, d, [lo_], [hi_], inside)[0])
    positions[LANDMARK_NAMES.index("lv_lateral")] = centre + 0.5 * (ends[0] + ends[1]) * d[0]

    # RV lateral: the outermost RV sample farthest along centre -> RV centroid, refined along its ray.
    last = rho.size - 1 - np.argmax(is_rv[:, ::-1], axis=1)
    rays = np.nonzero(is_rv.any(axis=1))[0]
    outer = rho[last[rays], None] * dirs[rays, :2]
    k = int(np.argmax(outer @ -d[0, :2]))
    i, j = int(rays[k]), int(last[rays[k]])
    hi_ = rho[j + 1] if j + 1 < rho.size else _R_MAX
    r_out = _boundary(geom, frame, centre, dirs[i:i + 1], [rho[j]], [hi_], lambda lb: lb == RV)[0]
    positions[LANDMARK_NAMES.index("rv_lateral")] = centre + r_out * dirs[i]

    # Insertion points: the ends of the longest arc where the RV cavity touches the epicardium.
    run = longest_run(touches_rv)
    if run is None:
        warnings.warn("phantom: the RV cavity does not touch the LV in the mid-ventricular plane", stacklevel=2)
    else:
        step = 2.0 * np.pi / _N_RAYS
        ends_phi = np.array([phi[run[0]] - step / 2.0, phi[run[1]] + step / 2.0])
        ed = np.stack([np.cos(ends_phi), np.sin(ends_phi), np.zeros(2)], axis=-1)
        r_ins = _boundary(geom, frame, centre, ed, [0.0, 0.0], [_R_MAX, _R_MAX], _in_lv, n_iter=24)
        ins = centre + r_ins[:, None] * ed
        ant, inf = (ins[0], ins[1]) if ins[0, 1] >= ins[1, 1] else (ins[1], ins[0])
        positions[LANDMARK_NAMES.index("rv_insert_anterior")] = ant
        positions[LANDMARK_NAMES.index("rv_insert_inferior")] = inf
    conf = np.where(np.isfinite(positions[:, 0]), 1.0, np.nan)
    return Landmarks(positions, conf, ("phantom",) * len(LANDMARK_NAMES))
