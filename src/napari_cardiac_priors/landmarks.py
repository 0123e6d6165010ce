"""The six cardiac landmarks: a small container of world positions, confidences and sources.

Positions are world millimetres, RAS+ (the NIfTI world of the image they belong to), in the
order of :data:`conventions.LANDMARK_NAMES`. A landmark that is not known is NaN.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .conventions import LANDMARK_NAMES, LANDMARK_SOURCES
from .errors import note


@dataclass(eq=False)
class Landmarks:
    """Six landmarks in world mm.

    Parameters
    ----------
    positions : (6, 3) array
        World ``(x, y, z)`` RAS+ mm, rows in the order of ``LANDMARK_NAMES``; NaN rows are
        landmarks that are not known.
    confidence : (6,) array
        In [0, 1]; NaN where unknown.
    source : sequence of 6 str
        Where each landmark comes from: ``model``, ``user``, ``phantom``, ``derived``, ``file``.
    """

    positions: np.ndarray
    confidence: np.ndarray = None
    source: tuple = None
    names: tuple = field(default=LANDMARK_NAMES, init=False)

    def __post_init__(self):
        p = np.asarray(self.positions, dtype=np.float64)
        n = len(LANDMARK_NAMES)
        if p.shape != (n, 3):
            raise ValueError(f"positions must have shape ({n}, 3) in the order {LANDMARK_NAMES}, got {p.shape}")
        if np.isinf(p).any():
            raise ValueError("landmark positions hold Inf")
        c = np.ones(n) if self.confidence is None else np.asarray(self.confidence, dtype=np.float64).reshape(-1)
        if c.shape != (n,):
            raise ValueError(f"confidence must have {n} values, got {c.shape}")
        s = ("file",) * n if self.source is None else tuple(str(v) for v in self.source)
        if len(s) != n:
            raise ValueError(f"source must have {n} values, got {len(s)}")
        bad = sorted(set(s) - set(LANDMARK_SOURCES))
        if bad:
            raise ValueError(f"unknown landmark source {bad[0]!r}; use one of {LANDMARK_SOURCES}")
        self.positions, self.confidence, self.source = p, c, s

    @classmethod
    def from_dict(cls, points: dict, *, source: str = "file") -> "Landmarks":
        """Build from ``{name: (x, y, z)}``; names not given are NaN."""
        unknown = sorted(set(points) - set(LANDMARK_NAMES))
        if unknown:
            raise ValueError(f"unknown landmark name {unknown[0]!r}; the names are {', '.join(LANDMARK_NAMES)}")
        pos = np.full((len(LANDMARK_NAMES), 3), np.nan)
        for i, name in enumerate(LANDMARK_NAMES):
            if name in points:
                pos[i] = points[name]
        return cls(pos, source=(source,) * len(LANDMARK_NAMES))

    @property
    def valid(self) -> np.ndarray:
        """(6,) bool: rows with a finite position."""
        return np.all(np.isfinite(self.positions), axis=1)

    def as_dict(self) -> dict:
        """``{name: (x, y, z)}`` of the valid landmarks."""
        return {n: tuple(p) for n, p, ok in zip(self.names, self.positions, self.valid) if ok}

    def transformed(self, matrix) -> "Landmarks":
        """Landmarks moved by a 4x4 world-to-world matrix."""
        m = np.asarray(matrix, dtype=np.float64)
        p = self.positions @ m[:3, :3].T + m[:3, 3]
        return Landmarks(p, self.confidence.copy(), self.source)

    def __repr__(self) -> str:
        rows = ", ".join(
            f"{n}=({p[0]:.1f}, {p[1]:.1f}, {p[2]:.1f})" if ok else f"{n}=NaN"
            for n, p, ok in zip(self.names, self.positions, self.valid)
        )
        return f"Landmarks({rows})"


# -- helpers shared by the phantom's exact landmarks and the label-map rules ------------------
def first_false(mask: np.ndarray) -> np.ndarray:
    """Index of the first False along the last axis (the axis length where all are True)."""
    n = mask.shape[-1]
    idx = np.argmin(mask, axis=-1)
    return np.where(mask.all(axis=-1), n, idx)


def longest_run(flags: np.ndarray) -> tuple[int, int] | None:
    """``(start, end)`` indices (inclusive, circular) of the longest run of True in ``flags``."""
    n = flags.size
    if not flags.any():
        return None
    if flags.all():
        return 0, n - 1
    shift = int(np.argmin(flags))  # start the scan on a False so that no run wraps
    f = np.roll(flags, -shift)
    best, start = (0, 0), None
    for i, v in enumerate(np.append(f, False)):
        if v and start is None:
            start = i
        elif not v and start is not None:
            if i - start > best[0]:
                best = (i - start, start)
            start = None
    length, s = best
    return (s + shift) % n, (s + length - 1 + shift) % n


# -- landmarks derived from a label map -----------------------------------------------------
_N_RAYS = 360
_STEP_MM = 0.25


def apex_at_low_index(labels: np.ndarray) -> bool:
    """Whether the apex of the canonical label map ``(z, y, x)`` lies towards slice 0: the base
    is the end towards which the LV cavity opens to background along z (the apex is capped)."""
    from .conventions import BACKGROUND, LV

    lab = np.asarray(labels)
    cavity = lab == LV
    open_up = np.count_nonzero(cavity[:-1] & (lab[1:] == BACKGROUND)) + np.count_nonzero(cavity[-1])
    open_down = np.count_nonzero(cavity[1:] & (lab[:-1] == BACKGROUND)) + np.count_nonzero(cavity[0])
    return bool(open_up >= open_down)


def derive_from_labels(labels, spacing=None, *, affine=None, notes: list | None = None) -> Landmarks:
    """The six landmarks measured on a bi-ventricular label map (for data without annotations).

    ``labels`` is a labels :class:`~napari_cardiac_priors.volume.Volume`, or a canonical
    ``(z, y, x)`` array with ``spacing`` ``(sz, sy, sx)`` mm (and optionally its NIfTI
    ``affine``). Slices (constant z) are the short-axis planes. Positions are world RAS mm.

    The rules mirror the phantom's exact landmarks (:mod:`..phantom.landmark_rules`):

    - ``apex``: centroid of the myocardium on the most apical slice holding myocardium; the
      base is the end towards which the LV cavity opens to background (the apex is capped).
    - ``mitral_valve``: centroid of the LV cavity voxels whose neighbour towards the base is
      background (the open basal face of the cavity).
    - mid-ventricular slice: the slice nearest half way between apex and mitral valve; the
      line apex - mitral valve crosses it at ``P``. In that slice, along 360 rays from ``P``:
    - ``rv_insert_anterior`` / ``rv_insert_inferior``: the ends of the longest arc of the LV
      epicardium that the RV cavity touches, on the epicardium; anterior has the larger
      :func:`anterior_score` (world y + z: the anterior insertion lies anterior and superior).
    - ``rv_lateral``: the RV cavity point farthest along the direction from ``P`` to the RV
      cavity's centroid (the turning point of the RV free wall).
    - ``lv_lateral``: on the ray from ``P`` away from the RV cavity's centroid, the midpoint
      between endocardium and epicardium.

    A landmark that cannot be measured (no LV, no RV in the mid slice) is NaN with a note
    (appended to ``notes``, or a warning when ``notes`` is None).
    """
    from .conventions import BACKGROUND, LV, MYO
    from .volume import Volume

    vol = labels if isinstance(labels, Volume) else Volume(np.asarray(labels), spacing=spacing, affine=affine, kind="labels")
    if vol.is_cine:
        raise ValueError("derive_from_labels takes one frame (z, y, x), not a cine stack")
    lab = vol.array
    n = len(LANDMARK_NAMES)
    pos = np.full((n, 3), np.nan)  # array index coordinates (z, y, x) until the end

    def result():
        world = vol.index_to_world(pos)
        conf = np.where(np.isfinite(world[:, 0]), 1.0, np.nan)
        return Landmarks(world, conf, ("derived",) * n)

    in_lv = (lab == LV) | (lab == MYO)
    lv_z = np.nonzero(in_lv.any(axis=(1, 2)))[0]
    if lv_z.size == 0:
        note("derive_from_labels: no LV in the label map; all landmarks are NaN", notes)
        return result()
    apical_low = apex_at_low_index(lab)
    cavity = lab == LV
    to_base = 1 if apical_low else -1

    myo_z = np.nonzero((lab == MYO).any(axis=(1, 2)))[0]
    wall = lab == MYO if myo_z.size else in_lv
    wall_z = myo_z if myo_z.size else lv_z
    k_apex = int(wall_z[0] if apical_low else wall_z[-1])
    yx = np.argwhere(wall[k_apex]).mean(axis=0)
    pos[LANDMARK_NAMES.index("apex")] = [k_apex, *yx]

    beyond = np.full_like(cavity, True)  # the basal neighbour is background (or outside)
    if to_base > 0:
        beyond[:-1] = lab[1:] == BACKGROUND
    else:
        beyond[1:] = lab[:-1] == BACKGROUND
    face = np.argwhere(cavity & beyond)
    if face.size == 0:
        note("derive_from_labels: no open basal face of the LV cavity; mitral_valve is NaN", notes)
        return result()
    mv = face.mean(axis=0) + [0.5 * to_base, 0.0, 0.0]  # on the face, half a slice up
    pos[LANDMARK_NAMES.index("mitral_valve")] = mv

    apex = pos[LANDMARK_NAMES.index("apex")]
    k = int(np.clip(np.round(0.5 * (apex[0] + mv[0])), 0, lab.shape[0] - 1))
    t = 0.0 if mv[0] == apex[0] else (k - apex[0]) / (mv[0] - apex[0])
    p = apex[1:] + t * (mv[1:] - apex[1:])  # (y, x) index of P in slice k
    found = inplane_points(lab[k], p, vol.spacing[1:])
    for msg in found.pop("warnings"):
        note(f"derive_from_labels: {msg} (mid-ventricular slice {k})", notes)
    for name in ("lv_lateral", "rv_lateral"):
        if found[name] is not None:
            pos[LANDMARK_NAMES.index(name)] = [k, *found[name]]
    if found["rv_inserts"] is not None:
        ins = [[k, *q] for q in found["rv_inserts"]]
        score = anterior_score(vol.index_to_world(np.array(ins)))
        ant, inf = (ins[0], ins[1]) if score[0] >= score[1] else (ins[1], ins[0])
        pos[LANDMARK_NAMES.index("rv_insert_anterior")] = ant
        pos[LANDMARK_NAMES.index("rv_insert_inferior")] = inf
    return result()


def anterior_score(points) -> np.ndarray:
    """World ``y + z`` (RAS mm) of points ``(..., 3)``: of the two RV insertion points the
    anterior one lies more anterior (y) and, on a tilted short-axis plane, more superior (z).
    On an axis-aligned stack (ACDC's unit headers) it orders them by world y alone."""
    p = np.asarray(points, dtype=float)
    return p[..., 1] + p[..., 2]


def inplane_points(sl: np.ndarray, p, spacing_yx) -> dict:
    """The in-plane landmarks of one short-axis slice ``sl`` ``(y, x)`` (canonical labels), seen
    from the point ``p`` ``(y, x)`` (index units; the long axis's crossing, or the LV centroid),
    with pixel spacing ``spacing_yx`` ``(sy, sx)`` mm. Along 360 rays from ``p``:

    - ``rv_inserts``: the two ends of the longest arc of the LV epicardium that the RV cavity
      touches, on the epicardium (unnamed: which is anterior is decided by the caller);
    - ``rv_lateral``: the RV cavity point farthest along the direction from ``p`` to the RV
      cavity's centroid;
    - ``lv_lateral``: on the ray away from the RV centroid, mid-way between endo- and epicardium.

    Returns ``{"rv_inserts": (2, 2) array or None, "rv_lateral": (2,) or None, "lv_lateral":
    (2,) or None, "warnings": [messages]}`` with points as ``(y, x)`` indices.
    """
    from .conventions import LV, MYO, RV

    p = np.asarray(p, dtype=float)
    sy, sx = (float(v) for v in spacing_yx)
    out = {"rv_inserts": None, "rv_lateral": None, "lv_lateral": None, "warnings": []}

    def sample(points_mm):  # points_mm (..., 2) offsets (dy, dx) in mm from p -> labels
        iy = np.round(p[0] + points_mm[..., 0] / sy).astype(int)
        ix = np.round(p[1] + points_mm[..., 1] / sx).astype(int)
        ok = (iy >= 0) & (iy < sl.shape[0]) & (ix >= 0) & (ix < sl.shape[1])
        vals = np.zeros(iy.shape, sl.dtype)
        vals[ok] = sl[iy[ok], ix[ok]]
        return vals

    def index_of(offset_mm):
        return np.array([p[0] + offset_mm[0] / sy, p[1] + offset_mm[1] / sx])

    r_max = float(np.hypot(sl.shape[0] * sy, sl.shape[1] * sx))
    rho = (np.arange(int(r_max / _STEP_MM)) + 0.5) * _STEP_MM
    phi = (np.arange(_N_RAYS) + 0.5) * (2 * np.pi / _N_RAYS)
    dirs = np.stack([np.sin(phi), np.cos(phi)], axis=-1)  # (dy, dx)
    ray = sample(rho[None, :, None] * dirs[:, None, :])  # (rays, samples)
    is_rv = ray == RV
    if not is_rv.any():
        out["warnings"].append("no RV cavity in the slice; RV landmarks are NaN")
        return out
    pts = rho[None, :, None] * dirs[:, None, :]
    w = is_rv * rho[None, :]
    c = np.einsum("ij,ijk->k", w, pts) / w.sum()
    d = -c / max(np.linalg.norm(c), 1e-9)
    line = sample(rho[:, None] * d[None, :])
    endo = rho[min(int(first_false(line == LV)), rho.size - 1)]
    epi = rho[min(int(first_false((line == LV) | (line == MYO))), rho.size - 1)]
    if (line[0] in (LV, MYO)) and epi > endo:
        out["lv_lateral"] = index_of(0.5 * (endo + epi - _STEP_MM) * d)
    last = rho.size - 1 - np.argmax(is_rv[:, ::-1], axis=1)
    rays = np.nonzero(is_rv.any(axis=1))[0]
    outer = (rho[last[rays]] + 0.5 * _STEP_MM)[:, None] * dirs[rays]
    out["rv_lateral"] = index_of(outer[int(np.argmax(outer @ -d))])
    j = first_false((ray == LV) | (ray == MYO))
    outside = ray[np.arange(_N_RAYS), np.minimum(j, rho.size - 1)]
    touches = (outside == RV) & (j > 0) & (j < rho.size)
    run = longest_run(touches)
    if run is None:
        out["warnings"].append("the RV cavity does not touch the LV epicardium")
    else:
        out["rv_inserts"] = np.array([index_of((rho[j[e]] - 0.5 * _STEP_MM) * dirs[e]) for e in run])
    return out


# -- landmark label volumes: targets for a landmark head, and points from its output -----------
def landmark_target(landmarks: Landmarks, reference, *, radius_mm: float = 4.0) -> np.ndarray:
    """A ``(z, y, x)`` uint8 volume on the grid of ``reference`` (a Volume): landmark ``k``
    (1-6, in ``LANDMARK_NAMES`` order) marks the voxels within ``radius_mm`` of its position
    (a ball in mm, so anisotropic grids are handled), the nearest landmark winning where balls
    overlap; the voxel nearest each landmark is always marked. NaN landmarks mark nothing.
    """
    shape = reference.spatial_shape
    spacing = np.asarray(reference.spacing)
    out = np.zeros(shape, np.uint8)
    best = np.full(shape, np.inf)
    for k, (p, ok) in enumerate(zip(landmarks.positions, landmarks.valid), start=1):
        if not ok:
            continue
        c = reference.world_to_index(p)
        r = np.ceil(radius_mm / spacing).astype(int)
        lo = np.maximum(np.floor(c).astype(int) - r, 0)
        hi = np.minimum(np.ceil(c).astype(int) + r + 1, shape)
        if np.any(hi <= lo):
            continue  # outside the grid
        zz, yy, xx = np.meshgrid(*(np.arange(a, b) for a, b in zip(lo, hi)), indexing="ij")
        d = np.sqrt(((zz - c[0]) * spacing[0]) ** 2 + ((yy - c[1]) * spacing[1]) ** 2 + ((xx - c[2]) * spacing[2]) ** 2)
        box = tuple(slice(a, b) for a, b in zip(lo, hi))
        nearest = d == d.min()
        win = ((d <= radius_mm) | nearest) & (d < best[box])
        out[box][win] = k
        best[box][win] = d[win]
    return out


def from_probabilities(prob: np.ndarray, reference, *, notes: list | None = None) -> Landmarks:
    """Landmarks from landmark-head probabilities ``(7, z, y, x)`` (background + six) on the grid
    of ``reference`` (a Volume).

    For each landmark: the voxels where it is the most probable class, their largest
    26-connected cluster, and that cluster's probability-weighted centroid (world mm).
    ``confidence`` is the highest probability in the cluster. A landmark with no voxel is NaN,
    with one note naming the missing landmarks (never a made-up point): appended to ``notes``,
    or a warning when ``notes`` is None (see :func:`~napari_cardiac_priors.errors.note`).
    """
    from scipy import ndimage

    prob = np.asarray(prob)
    n = len(LANDMARK_NAMES)
    if prob.ndim != 4 or prob.shape[0] != n + 1:
        raise ValueError(f"prob must be ({n + 1}, z, y, x), got {prob.shape}")
    winner = prob.argmax(axis=0)
    pos = np.full((n, 3), np.nan)
    conf = np.full(n, np.nan)
    missing = []
    structure = np.ones((3, 3, 3), bool)
    for k in range(1, n + 1):
        mask = winner == k
        if not mask.any():
            missing.append(LANDMARK_NAMES[k - 1])
            continue
        lab, count = ndimage.label(mask, structure=structure)
        if count > 1:
            sizes = np.bincount(lab.ravel())[1:]
            mask = lab == (1 + int(np.argmax(sizes)))
        idx = np.argwhere(mask)
        w = prob[k][mask]
        pos[k - 1] = reference.index_to_world((idx * w[:, None]).sum(0) / w.sum())
        conf[k - 1] = float(w.max())
    if missing:
        note(f"no voxel found for landmark(s) {', '.join(missing)}; they are NaN", notes)
    return Landmarks(pos, conf, ("model",) * n)


def from_slab_probabilities(labels, prob: np.ndarray, *, derived: Landmarks | None = None) -> tuple[Landmarks, list]:
    """The six landmarks of a slab model: ``(Landmarks, notes)``.

    ``labels`` is the model's label Volume ``(z, y, x)`` and ``prob`` its landmark-head
    probabilities ``(4, z, y, x)`` on the same grid (background, RV insertion, RV lateral, LV
    lateral). Names come from the anatomy and the geometry, never from the stored order:

    - ``apex`` and ``mitral_valve`` from the labels (:func:`derive_from_labels`: the base is the
      end where the LV cavity opens), so a reversed stack gets the same points;
    - the in-plane landmarks on the mid-ventricular slice half way between them: the most
      probable pixels of each class, their largest 2D clusters (two for the RV insertions) and
      the clusters' probability-weighted centroids; of the two insertions the anterior one has
      the larger :func:`anterior_score` (the rule of :func:`derive_from_labels`).

    A landmark that cannot be found is NaN and named in ``notes``. ``derived``: the
    landmarks of :func:`derive_from_labels` on ``labels`` when the caller has them already.
    """
    from scipy import ndimage

    n = len(LANDMARK_NAMES)
    pos = np.full((n, 3), np.nan)
    conf = np.full(n, np.nan)
    notes = []
    if not np.any(labels.array):
        return Landmarks(pos, conf, ("model",) * n), notes
    found = []
    derived = derived if derived is not None else derive_from_labels(labels, notes=found)
    ia, im = LANDMARK_NAMES.index("apex"), LANDMARK_NAMES.index("mitral_valve")
    pos[[ia, im]] = derived.positions[[ia, im]]
    conf[[ia, im]] = derived.confidence[[ia, im]]
    if not (derived.valid[ia] and derived.valid[im]):
        notes += found[:1]
        missing = [nm for nm, ok in zip(LANDMARK_NAMES, np.isfinite(pos[:, 0])) if not ok]
        notes.append(f"no voxel found for landmark(s) {', '.join(missing)}; they are NaN")
        return Landmarks(pos, conf, ("model",) * n), notes
    za, zm = labels.world_to_index(pos[[ia, im]])[:, 0]
    k = int(np.clip(np.round(0.5 * (za + zm)), 0, labels.spatial_shape[0] - 1))
    p = np.asarray(prob)[:, k]
    winner = p.argmax(axis=0)
    found = {}
    for c, name, count in ((1, "rv_insert", 2), (2, "rv_lateral", 1), (3, "lv_lateral", 1)):
        comp, m = ndimage.label(winner == c)
        if m == 0:
            continue
        sizes = np.bincount(comp.ravel())[1:]
        points = []
        for j in np.argsort(sizes)[::-1][:count]:
            mask = comp == j + 1
            idx = np.argwhere(mask)
            w = p[c][mask]
            yx = (idx * w[:, None]).sum(0) / w.sum()
            points.append((labels.index_to_world([k, *yx]), float(w.max())))
        found[name] = points
    for name in ("rv_lateral", "lv_lateral"):
        if name in found:
            i = LANDMARK_NAMES.index(name)
            pos[i], conf[i] = found[name][0]
    inserts = found.get("rv_insert", [])
    if len(inserts) == 2:
        ant, inf = sorted(inserts, key=lambda q: -anterior_score(q[0]))
        for name, (q, c) in (("rv_insert_anterior", ant), ("rv_insert_inferior", inf)):
            i = LANDMARK_NAMES.index(name)
            pos[i], conf[i] = q, c
    missing = [nm for nm, ok in zip(LANDMARK_NAMES, np.isfinite(pos[:, 0])) if not ok]
    if missing:
        notes.append(f"no voxel found for landmark(s) {', '.join(missing)} on the mid-ventricular slice {k}; they are NaN")
    return Landmarks(pos, conf, ("model",) * n), notes
