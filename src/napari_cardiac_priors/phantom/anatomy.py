"""Bi-ventricular geometry in heart coordinates: LV spheroid shell, RV crescent, ES contraction.

Heart coordinates ``(x, y, u)`` mm: ``u`` along the LV long axis (base plane of the ED heart
at ``u = 0``, apex at negative ``u``), ``(x, y)`` the short-axis plane, ``r = hypot(x, y)``
and ``theta = atan2(y, x)``. :class:`HeartFrame` maps them to world RAS mm:
``world = origin + rotation @ (x, y, u)``.

Regional effects are per-angle tables: radii are sampled at :data:`N_THETA` angle bins
(centres :data:`THETA`) and looked up by :func:`theta_bin`, so a label map is a handful of
vectorised comparisons per voxel.

Labels (canonical): 1 LV cavity (inside the endocardium), 2 MYO (epicardium minus
endocardium), 3 RV cavity (RV ellipsoid minus the LV epicardium), 4 RV wall (a shell of
``rv_wall`` mm outside the RV ellipsoid, not inside the LV epicardium); everything only
below the base plane ``u <= base_u``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..conventions import LV, MYO, RV, RVW
from .shape import HeartShape

N_THETA = 720
#: Angle-bin centres, radians in [-pi, pi).
THETA = (np.arange(N_THETA) + 0.5) * (2.0 * np.pi / N_THETA) - np.pi
_D_THETA = 2.0 * np.pi / N_THETA


def theta_bin(theta: np.ndarray) -> np.ndarray:
    """Bin index (int32, 0..N_THETA-1) of angles ``theta`` in radians [-pi, pi]."""
    idx = ((np.asarray(theta) + np.pi) * (N_THETA / (2.0 * np.pi))).astype(np.int32)
    np.clip(idx, 0, N_THETA - 1, out=idx)
    return idx


def _wrap(angle: np.ndarray) -> np.ndarray:
    return (angle + np.pi) % (2.0 * np.pi) - np.pi


# -- LV radial tables ------------------------------------------------------------------------
def _infarct_window(shape: HeartShape) -> np.ndarray:
    """(N_THETA,) raised-cosine weight of the infarct sector (0 outside, 1 at its centre)."""
    if shape.infarct_width <= 0:
        return np.zeros(N_THETA)
    half = np.deg2rad(shape.infarct_width) / 2.0
    d = np.abs(_wrap(THETA - np.deg2rad(shape.infarct_angle)))
    return np.where(d < half, 0.5 * (1.0 + np.cos(np.pi * d / half)), 0.0)


def _unit_endo(shape: HeartShape) -> np.ndarray:
    """(N_THETA,) endocardial radius at the spheroid's equator divided by ``lv_radius``."""
    ecc = 1.0 + shape.lv_eccentricity * np.cos(2.0 * (THETA - np.deg2rad(shape.lv_eccentricity_angle)))
    if shape.septal_flattening > 0:
        cos_s = np.cos(THETA - np.deg2rad(shape.septal_angle))
        with np.errstate(divide="ignore"):
            chord = np.where(cos_s > 1e-6, (1.0 - shape.septal_flattening) / cos_s, np.inf)
        ecc = np.minimum(ecc, chord)
    return ecc


def lv_tables(shape: HeartShape) -> tuple[np.ndarray, np.ndarray]:
    """ED endocardial and epicardial radii (mm) per angle bin, each ``(N_THETA,)``.

    Epicardium = endocardium + ``t(theta)``; with septal flattening both are cut by straight
    septal chords, the epicardial one the septal wall thickness further out.
    """
    a = shape.lv_radius
    rel = THETA - np.deg2rad(shape.septal_angle)
    t = shape.wall_thickness * (1.0 + shape.septal_asymmetry * np.cos(rel))
    t = t * (1.0 - shape.infarct_thinning * _infarct_window(shape))
    ecc = 1.0 + shape.lv_eccentricity * np.cos(2.0 * (THETA - np.deg2rad(shape.lv_eccentricity_angle)))
    endo, epi = a * ecc, a * ecc + t
    if shape.septal_flattening > 0:
        d = (1.0 - shape.septal_flattening) * a
        t_septum = t[np.argmin(np.abs(_wrap(rel)))]
        cos_s = np.cos(rel)
        with np.errstate(divide="ignore"):
            endo = np.minimum(endo, np.where(cos_s > 1e-6, d / cos_s, np.inf))
            epi = np.minimum(epi, np.where(cos_s > 1e-6, (d + t_septum) / cos_s, np.inf))
    return endo, epi


def lv_cavity_volume_factor(shape: HeartShape) -> float:
    """``mean((R_endo(theta) / lv_radius)**2)``: the cavity volume relative to a circular one."""
    return float(np.mean(_unit_endo(shape) ** 2))


def cap_volume(radius: np.ndarray, half_length: float, centre_to_base: float) -> np.ndarray:
    """Volume (mm^3) of the spheroid ``(r / radius(theta))**2 + (v / half_length)**2 <= 1``
    below the plane ``v = centre_to_base``. ``radius`` is ``(..., N_THETA)``; broadcasts."""
    beta = np.clip(centre_to_base / half_length, -1.0, 1.0)
    g = (1.0 + beta) - (1.0 + beta**3) / 3.0
    area = 0.5 * np.sum(np.asarray(radius) ** 2, axis=-1) * _D_THETA
    return g * half_length * area


# -- per-phase geometry -----------------------------------------------------------------------
@dataclass(eq=False)
class PhaseGeometry:
    """The heart of one phase in heart coordinates (mm).

    LV: spheroids centred at ``u = lv_centre_u`` on the axis with per-angle equatorial radii
    ``endo_radius`` / ``epi_radius`` ``(N_THETA,)`` and half-lengths ``endo_half_length`` /
    ``epi_half_length``. RV: ellipsoid centred at ``rv_centre`` ``(x, y, u)``, semi-axes
    ``rv_axes`` = (depth along ``rv_angle``, width across it, half-length along u), wall
    ``rv_wall``. Everything is cut at the base plane ``u = base_u``.
    """

    phase: str
    base_u: float
    lv_centre_u: float
    endo_half_length: float
    epi_half_length: float
    endo_radius: np.ndarray
    epi_radius: np.ndarray
    rv_centre: tuple
    rv_axes: tuple
    rv_angle: float
    rv_wall: float

    @property
    def apex_u(self) -> float:
        """u of the epicardial apex on the axis."""
        return self.lv_centre_u - self.epi_half_length

    def lv_volumes(self) -> tuple[float, float]:
        """Analytic (cavity, myocardium) volumes in mm^3."""
        h = self.base_u - self.lv_centre_u
        cav = float(cap_volume(self.endo_radius, self.endo_half_length, h))
        return cav, float(cap_volume(self.epi_radius, self.epi_half_length, h)) - cav

    def with_rv_scale(self, sigma: float) -> "PhaseGeometry":
        """RV with its in-plane semi-axes scaled by ``sigma`` about its centre."""
        d, w, c = self.rv_axes
        return replace(self, rv_axes=(d * sigma, w * sigma, c))


def ed_geometry(shape: HeartShape) -> PhaseGeometry:
    """End-diastolic geometry of ``shape``."""
    endo, epi = lv_tables(shape)
    s = np.deg2rad(shape.septal_angle)
    return PhaseGeometry(
        phase="ed", base_u=0.0, lv_centre_u=-shape.lv_base_offset,
        endo_half_length=shape.lv_half_length, epi_half_length=shape.lv_half_length + shape.apex_thickness,
        endo_radius=endo, epi_radius=epi,
        rv_centre=(shape.rv_offset * np.cos(s), shape.rv_offset * np.sin(s), -shape.rv_base_offset),
        rv_axes=(shape.rv_depth, shape.rv_width, shape.rv_half_length), rv_angle=float(s),
        rv_wall=shape.rv_wall_thickness,
    )


def _solve_monotone(f, target: float, lo: float, hi: float, n: int = 256) -> float:
    """x in [lo, hi] with f(x) ~= target for an increasing vectorised f (grid + interpolation)."""
    xs = np.linspace(lo, hi, n)
    return float(np.interp(target, f(xs), xs))


def es_geometry(shape: HeartShape, ed: PhaseGeometry | None = None) -> PhaseGeometry:
    """End-systolic geometry: ED contracted to the ejection fractions.

    The epicardial apex stays put and every u (relative to it) shrinks by ``1 - base_descent``
    (the base descends). The endocardium shrinks in-plane by ``s(theta) = s0 (1 - k w) + k w``
    (``w`` the infarct window, ``k`` the hypokinesis), ``s0`` solved for ``lv_ef``. The wall
    keeps its cross-sectional area per angle, ``R_epi'^2 = R_endo'^2 + m (R_epi^2 - R_endo^2)``,
    ``m`` solved so that the myocardial volume is conserved; the apical wall thickens by the
    mean in-plane thickening. The RV's long axis shrinks the same way, its in-plane
    semi-axes are scaled for ``rv_ef`` (volumes on a 1.5 mm grid) and its wall thickens 25 %.
    """
    ed = ed_geometry(shape) if ed is None else ed
    lam = 1.0 - shape.base_descent
    apex = ed.apex_u
    c_epi = lam * ed.epi_half_length
    centre = apex + c_epi
    base = apex + lam * (ed.base_u - apex)
    h = base - centre
    cav_ed, myo_ed = ed.lv_volumes()
    w = _infarct_window(shape) * shape.infarct_hypokinesis
    wall_area = ed.epi_radius**2 - ed.endo_radius**2
    t_ed = ed.epi_radius - ed.endo_radius

    s0, m, t_apex = 0.8, 1.0 / lam, ed.epi_half_length - ed.endo_half_length
    for _ in range(8):  # fixed point: s0 for the EF, m for the myocardial volume
        c_endo = c_epi - t_apex

        def cavity(s0s, c_endo=c_endo):
            s = s0s[:, None] * (1.0 - w) + w
            return cap_volume(s * ed.endo_radius, c_endo, h)

        s0 = _solve_monotone(cavity, (1.0 - shape.lv_ef) * cav_ed, 0.05, 1.0)
        endo = (s0 * (1.0 - w) + w) * ed.endo_radius

        def myo(ms, endo=endo, c_endo=c_endo):
            epi = np.sqrt(endo**2 + ms[:, None] * wall_area)
            return cap_volume(epi, c_epi, h) - cap_volume(endo, c_endo, h)

        m = _solve_monotone(myo, myo_ed, 0.5, 4.0)
        epi = np.sqrt(endo**2 + m * wall_area)
        t_apex = (ed.epi_half_length - ed.endo_half_length) * float(np.mean((epi - endo) / t_ed))

    cx, cy, cu = ed.rv_centre
    d, wd, cr = ed.rv_axes
    es = replace(
        ed, phase="es", base_u=float(base), lv_centre_u=float(centre), endo_half_length=float(c_epi - t_apex),
        epi_half_length=float(c_epi), endo_radius=endo, epi_radius=epi,
        rv_centre=(cx, cy, float(apex + lam * (cu - apex))), rv_axes=(d, wd, lam * cr),
        rv_wall=ed.rv_wall * 1.25,
    )
    rv_ed = rv_cavity_volume(ed)
    sigma = rv_scale_for_volume(es, (1.0 - shape.rv_ef) * rv_ed)
    return es.with_rv_scale(sigma)


def phase_geometry(shape: HeartShape, phase: str) -> PhaseGeometry:
    """Geometry of ``phase`` ("ed" or "es")."""
    if phase == "ed":
        return ed_geometry(shape)
    if phase == "es":
        return es_geometry(shape)
    raise ValueError(f"phase must be 'ed' or 'es', got {phase!r}")


# -- points in heart coordinates and their labels ----------------------------------------------
@dataclass(eq=False)
class HeartCoords:
    """Heart coordinates of a set of points (any array shape; float32 mm; ``tbin`` int32)."""

    x: np.ndarray
    y: np.ndarray
    u: np.ndarray
    r: np.ndarray
    tbin: np.ndarray

    @classmethod
    def from_xyu(cls, x, y, u) -> "HeartCoords":
        x, y, u = (np.asarray(v, dtype=np.float32) for v in (x, y, u))
        return cls(x, y, u, np.hypot(x, y), theta_bin(np.arctan2(y, x)))


@dataclass(frozen=True, eq=False)
class HeartFrame:
    """Heart pose: ``world = origin + rotation @ (x, y, u)``; rotation (3, 3), origin (3,) mm."""

    rotation: np.ndarray
    origin: np.ndarray

    def to_world(self, q) -> np.ndarray:
        """Heart ``(..., 3)`` ``(x, y, u)`` -> world ``(..., 3)`` RAS mm."""
        return np.asarray(q, dtype=np.float64) @ self.rotation.T + self.origin

    def to_heart(self, p) -> np.ndarray:
        """World ``(..., 3)`` RAS mm -> heart ``(..., 3)`` ``(x, y, u)``."""
        return (np.asarray(p, dtype=np.float64) - self.origin) @ self.rotation

    def coords_of_points(self, p) -> HeartCoords:
        """HeartCoords of world points ``(..., 3)``."""
        q = self.to_heart(p)
        return HeartCoords.from_xyu(q[..., 0], q[..., 1], q[..., 2])

    def coords_of_grid(self, affine: np.ndarray, shape: tuple) -> HeartCoords:
        """HeartCoords of every voxel of a ``(z, y, x)`` grid with NIfTI ``affine``."""
        m = self.rotation.T @ np.asarray(affine)[:3, :3]
        off = self.rotation.T @ (np.asarray(affine)[:3, 3] - self.origin)
        nz, ny, nx = shape
        k = np.arange(nz, dtype=np.float32)[:, None, None]
        j = np.arange(ny, dtype=np.float32)[None, :, None]
        i = np.arange(nx, dtype=np.float32)[None, None, :]
        x, y, u = (np.float32(m[c, 0]) * i + np.float32(m[c, 1]) * j + np.float32(m[c, 2]) * k
                   + np.float32(off[c]) for c in range(3))
        return HeartCoords.from_xyu(x, y, u)


def _rotation(tilt_deg: float, azimuth_deg: float, rotation_deg: float) -> np.ndarray:
    """Rotate by ``rotation`` about z, then tilt z by ``tilt`` towards the azimuth direction."""
    g = np.deg2rad(rotation_deg)
    rz = np.array([[np.cos(g), -np.sin(g), 0.0], [np.sin(g), np.cos(g), 0.0], [0.0, 0.0, 1.0]])
    t, a = np.deg2rad(tilt_deg), np.deg2rad(azimuth_deg)
    k = np.array([-np.sin(a), np.cos(a), 0.0])  # tilt axis, perpendicular to the azimuth
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    rt = np.eye(3) + np.sin(t) * kx + (1.0 - np.cos(t)) * kx @ kx
    return rt @ rz


def surface_points(geom: PhaseGeometry, *, n_theta: int = 90, n_polar: int = 60) -> np.ndarray:
    """Heart-frame points ``(n, 3)`` on the LV epicardium and the RV wall's outside, below the base."""
    tb = np.linspace(0, N_THETA - 1, n_theta).astype(int)
    psi = np.linspace(0.0, np.pi, n_polar)[:, None]
    th = THETA[tb][None, :]
    pts = []
    rr = geom.epi_radius[tb][None, :] * np.sin(psi)
    pts.append(np.stack(np.broadcast_arrays(rr * np.cos(th), rr * np.sin(th),
                                            geom.lv_centre_u - geom.epi_half_length * np.cos(psi)), -1))
    (cx, cy, cu), (d, w, c) = geom.rv_centre, geom.rv_axes
    t = geom.rv_wall
    n_, t_ = (d + t) * np.sin(psi) * np.cos(th), (w + t) * np.sin(psi) * np.sin(th)
    ca, sa = np.cos(geom.rv_angle), np.sin(geom.rv_angle)
    pts.append(np.stack(np.broadcast_arrays(cx + ca * n_ - sa * t_, cy + sa * n_ + ca * t_,
                                            cu - (c + t) * np.cos(psi)), -1))
    p = np.concatenate([q.reshape(-1, 3) for q in pts])
    return p[p[:, 2] <= geom.base_u]


def heart_frame(shape: HeartShape, ed: PhaseGeometry | None = None) -> HeartFrame:
    """Pose of ``shape``: its rotation, and the origin that centres the ED heart's world
    bounding box on ``shape.translation``."""
    ed = ed_geometry(shape) if ed is None else ed
    rot = _rotation(shape.tilt, shape.tilt_azimuth, shape.rotation)
    p = surface_points(ed) @ rot.T
    centre = 0.5 * (p.min(axis=0) + p.max(axis=0))
    return HeartFrame(rot, np.asarray(shape.translation, dtype=np.float64) - centre)


def _lv_inside(geom: PhaseGeometry, c: HeartCoords, *, margin: float = 0.0):
    """(inside endocardium, inside epicardium) ignoring the base plane; ``margin`` mm grows both."""
    v2 = np.square(c.u - np.float32(geom.lv_centre_u))
    endo = np.square(c.r / (geom.endo_radius.astype(np.float32)[c.tbin] + np.float32(margin)))
    endo += v2 / np.float32((geom.endo_half_length + margin) ** 2)
    epi = np.square(c.r / (geom.epi_radius.astype(np.float32)[c.tbin] + np.float32(margin)))
    epi += v2 / np.float32((geom.epi_half_length + margin) ** 2)
    return endo <= 1.0, epi <= 1.0


def _rv_quadratic(geom: PhaseGeometry, c: HeartCoords, grow: float = 0.0) -> np.ndarray:
    """Ellipsoid function of the RV (<= 1 inside) with all semi-axes grown by ``grow`` mm."""
    (cx, cy, cu), (d, w, h) = geom.rv_centre, geom.rv_axes
    ca, sa = np.float32(np.cos(geom.rv_angle)), np.float32(np.sin(geom.rv_angle))
    dx, dy = c.x - np.float32(cx), c.y - np.float32(cy)
    q = np.square((ca * dx + sa * dy) / np.float32(d + grow))
    q += np.square((ca * dy - sa * dx) / np.float32(w + grow))
    q += np.square((c.u - np.float32(cu)) / np.float32(h + grow))
    return q


def label_points(geom: PhaseGeometry, c: HeartCoords) -> np.ndarray:
    """Canonical labels (uint8, the shape of ``c.x``) of points in heart coordinates."""
    below = c.u <= np.float32(geom.base_u)
    endo, epi = _lv_inside(geom, c)
    epi &= below
    endo &= below
    q = _rv_quadratic(geom, c)
    rv = (q <= 1.0) & below & ~epi
    rvw = (_rv_quadratic(geom, c, geom.rv_wall) <= 1.0) & below & ~epi & ~rv
    labels = np.zeros(c.x.shape, dtype=np.uint8)
    labels[epi] = MYO
    labels[endo] = LV
    labels[rv] = RV
    labels[rvw] = RVW
    return labels


def heart_envelope(geom: PhaseGeometry, c: HeartCoords, margin: float) -> np.ndarray:
    """Bool mask of points within about ``margin`` mm of the heart (LV epicardium or RV wall),
    up to ``margin`` above the base plane."""
    _, epi = _lv_inside(geom, c, margin=margin)
    rv = _rv_quadratic(geom, c, geom.rv_wall + margin) <= 1.0
    return (epi | rv) & (c.u <= np.float32(geom.base_u + margin))


# -- RV volume on a coarse grid ------------------------------------------------------------------
_RV_STEP = 1.5  # mm, grid of the RV volume estimate


def _rv_candidates(geom: PhaseGeometry, sigma_max: float):
    """Points (step _RV_STEP) in the RV ellipsoid scaled by ``sigma_max``, outside the LV
    epicardium and below the base, with the smallest in-plane scale that contains each."""
    (cx, cy, cu), (d, w, h) = geom.rv_centre, geom.rv_axes
    n = np.arange(-sigma_max * d, sigma_max * d + _RV_STEP, _RV_STEP)
    t = np.arange(-sigma_max * w, sigma_max * w + _RV_STEP, _RV_STEP)
    v = np.arange(max(-h, geom.apex_u - cu - _RV_STEP), min(h, geom.base_u - cu) + 1e-9, _RV_STEP)
    nn, tt, vv = np.meshgrid(n, t, v, indexing="ij", sparse=True)
    q_long = (vv / h) ** 2
    sigma2 = ((nn / d) ** 2 + (tt / w) ** 2) / np.maximum(1.0 - q_long, 1e-12)
    keep = (q_long < 1.0) & (sigma2 <= sigma_max**2)
    nn, tt, vv = (np.broadcast_to(a, keep.shape)[keep] for a in (nn, tt, vv))
    ca, sa = np.cos(geom.rv_angle), np.sin(geom.rv_angle)
    c = HeartCoords.from_xyu(cx + ca * nn - sa * tt, cy + sa * nn + ca * tt, cu + vv)
    _, epi = _lv_inside(geom, c)
    outside = ~epi & (c.u <= np.float32(geom.base_u))
    return np.sqrt(np.broadcast_to(sigma2, keep.shape)[keep][outside])


def rv_cavity_volume(geom: PhaseGeometry) -> float:
    """RV cavity volume (mm^3) estimated on a 1.5 mm grid."""
    return float(np.count_nonzero(_rv_candidates(geom, 1.0) <= 1.0) * _RV_STEP**3)


def rv_scale_for_volume(geom: PhaseGeometry, target_mm3: float, sigma_max: float = 2.0) -> float:
    """In-plane RV scale (see :meth:`PhaseGeometry.with_rv_scale`) giving an RV cavity of
    ``target_mm3`` (clipped to ``sigma_max``)."""
    sig = np.sort(_rv_candidates(geom, sigma_max))
    k = int(round(target_mm3 / _RV_STEP**3))
    if k <= 0:
        return float(sig[0]) if sig.size else 1.0
    return float(sig[k - 1]) if k <= sig.size else float(sigma_max)


def scale_rv_to_volume(shape: HeartShape, rv_edv_ml: float) -> HeartShape:
    """``shape`` with ``rv_depth`` and ``rv_width`` scaled for an ED RV cavity of ``rv_edv_ml``."""
    sigma = rv_scale_for_volume(ed_geometry(shape), rv_edv_ml * 1000.0)
    return replace(shape, rv_depth=float(shape.rv_depth * sigma), rv_width=float(shape.rv_width * sigma))
