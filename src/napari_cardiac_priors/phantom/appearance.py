"""MR appearance of a phantom: a bSSFP-cine-like image from labels and geometry.

Bright blood (LV, RV, atria, aorta), dark myocardium and RV wall, bright fat (subcutaneous,
epicardial patches, AV groove), mid-grey textured soft tissue, chest-wall muscle, a liver
below the heart on the right, dark lungs either side, air (~0) outside the body. Then a
slight partial-volume blur, a smooth multiplicative bias field (2nd-order polynomial, about
+-20 %), and Rician noise (magnitude of complex Gaussian noise). Output int16, scanner-like
units (blood ~900-1200).

:func:`sample_appearance` draws the parameters; :func:`render_image` is deterministic given
them (its random texture and noise come from the seeds in :class:`Appearance`, so ED and ES of
a subject share the texture when they share ``texture_seed``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..conventions import LV, MYO, RV, RVW
from .anatomy import HeartCoords, PhaseGeometry, heart_envelope


@dataclass(frozen=True)
class Appearance:
    """Intensity model. ``blood`` is absolute (scanner units); the other tissue intensities
    are relative to it. ``bias`` holds 9 coefficients of the log bias field (x, y, z, x^2, y^2,
    z^2, xy, xz, yz in coordinates normalised to [-1, 1] over the grid), scaled so that its
    extreme is ``bias_strength`` (fraction). ``body`` is the body ellipse ``(cx, cy, ax, ay)``
    (world x/y mm); ``lungs`` the two lung ellipsoids and ``liver_ellipsoid`` the liver,
    ``(cx, cy, cz, ax, ay, az)`` world mm each; ``aorta`` the descending aorta ``(x, y,
    radius)`` mm; ``blur_mm`` the partial-volume Gaussian sigma ``(z, y, x)`` mm; ``noise``
    the Rician noise sigma relative to ``blood``; ``texture`` the relative amplitude of the
    soft-tissue texture. ``texture_seed`` / ``noise_seed`` seed the random texture and noise.
    """

    blood: float = 1050.0
    myocardium: float = 0.27
    fat: float = 0.9
    tissue: float = 0.42
    muscle: float = 0.3
    liver: float = 0.4
    lung: float = 0.05
    atria: float = 0.9
    texture: float = 0.12
    noise: float = 0.025
    bias_strength: float = 0.15
    bias: tuple = (0.0,) * 9
    blur_mm: tuple = (0.8, 0.6, 0.6)
    body: tuple = (0.0, -40.0, 170.0, 115.0)
    subcutaneous_fat_mm: float = 8.0
    chest_muscle_mm: float = 10.0
    lungs: tuple = ((-75.0, -15.0, 10.0, 45.0, 65.0, 110.0), (75.0, -15.0, 20.0, 45.0, 65.0, 100.0))
    liver_ellipsoid: tuple = (45.0, -10.0, -108.0, 85.0, 75.0, 50.0)
    aorta: tuple = (-25.0, -72.0, 11.0)
    epicardial_fat_mm: float = 3.0
    texture_seed: int = 0
    noise_seed: int = 1

    def as_dict(self) -> dict:
        """JSON-serialisable ``{name: value}``."""
        def conv(v):
            if isinstance(v, (tuple, list)):
                return [conv(x) for x in v]
            return int(v) if isinstance(v, (int, np.integer)) else float(v)
        return {k: conv(v) for k, v in asdict(self).items()}


def sample_appearance(rng=None) -> Appearance:
    """Random :class:`Appearance` (contrast, texture, bias, noise, body layout)."""
    rng = np.random.default_rng(rng)

    def u(lo, hi):
        return float(rng.uniform(lo, hi))

    def j():  # position jitter, mm
        return u(-8.0, 8.0)

    return Appearance(
        blood=u(900, 1200), myocardium=u(0.22, 0.32), fat=u(0.75, 0.95), tissue=u(0.35, 0.5),
        muscle=u(0.25, 0.33), liver=u(0.35, 0.45), lung=u(0.03, 0.07), atria=u(0.85, 0.95),
        texture=u(0.08, 0.18), noise=u(0.015, 0.035), bias_strength=u(0.10, 0.20),
        bias=tuple(float(v) for v in rng.normal(size=9)),
        body=(j(), -40.0 + j(), u(150, 190), u(105, 125)),
        subcutaneous_fat_mm=u(5, 12), chest_muscle_mm=u(7, 13),
        lungs=((-75.0 + j(), -15.0 + j(), 10.0, u(40, 50), u(58, 72), 110.0),
               (75.0 + j(), -15.0 + j(), 20.0, u(40, 50), u(58, 72), 100.0)),
        liver_ellipsoid=(45.0 + j(), -10.0 + j(), -108.0 + j(), u(75, 95), u(65, 85), 50.0),
        aorta=(-25.0 + j(), -72.0 + j() / 2, u(9.0, 12.0)),
        epicardial_fat_mm=u(3.0, 6.0),
        texture_seed=int(rng.integers(2**31)), noise_seed=int(rng.integers(2**31)),
    )


# -- helpers ---------------------------------------------------------------------------------
def _world_axes(affine: np.ndarray, shape: tuple):
    """World x, y, z of every voxel as broadcastable float32 arrays (full 3D for oblique grids)."""
    nz, ny, nx = shape
    idx = (np.arange(nx, dtype=np.float32)[None, None, :], np.arange(ny, dtype=np.float32)[None, :, None],
           np.arange(nz, dtype=np.float32)[:, None, None])
    out = []
    for c in range(3):
        terms = [np.float32(affine[c, a]) * idx[a] for a in range(3) if affine[c, a] != 0]
        v = np.float32(affine[c, 3]) + (terms[0] if terms else np.float32(0))
        for t in terms[1:]:
            v = v + t
        out.append(v)
    return out


def _ellipsoid(x, y, z, e) -> np.ndarray:
    cx, cy, cz, ax, ay, az = e
    return ((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2 + ((z - cz) / az) ** 2 <= 1.0


def _smooth_fields(rng, shape: tuple, spacing: tuple, n: int, node_mm: float = 7.0) -> np.ndarray:
    """``n`` smooth random fields ``(n, z, y, x)``, zero mean, about unit std, correlation
    length ~``node_mm``: Gaussian-weighted interpolation of white noise on a coarse lattice."""
    mats = []
    for size, sp in zip(shape, spacing):
        pos = np.arange(size) * sp
        nodes = np.arange(-node_mm, pos[-1] + 2 * node_mm, node_mm)
        w = np.exp(-0.5 * ((pos[:, None] - nodes[None, :]) / node_mm) ** 2)
        mats.append((w / np.sqrt((w**2).sum(axis=1, keepdims=True))).astype(np.float32))
    mz, my, mx = mats
    coarse = rng.standard_normal((n, mz.shape[1], my.shape[1], mx.shape[1]), dtype=np.float32)
    f = np.einsum("nabc,xc->nabx", coarse, mx)
    f = np.einsum("nabx,yb->nayx", f, my)
    return np.einsum("nayx,za->nzyx", f, mz)


def _bias_field(xs, ys, zs, coefs, strength: float) -> np.ndarray:
    """Multiplicative field ``exp(p)``, ``p`` a 2nd-order polynomial in the normalised
    coordinates ``xs, ys, zs`` (about [-1, 1]) scaled so that max |p| = log(1 + strength)."""
    c = np.asarray(coefs, dtype=np.float32)
    p = (c[0] * xs + c[3] * xs**2) + (c[1] * ys + c[4] * ys**2) + (c[2] * zs + c[5] * zs**2)
    p = p + c[6] * xs * ys + c[7] * xs * zs + c[8] * ys * zs
    p = p * np.float32(np.log1p(strength) / max(float(np.abs(p).max()), 1e-6))
    return np.exp(p)


# -- rendering ---------------------------------------------------------------------------------
def render_image(labels: np.ndarray, affine: np.ndarray, spacing: tuple, coords: HeartCoords,
                 geom: PhaseGeometry, appearance: Appearance) -> np.ndarray:
    """bSSFP-like image (int16, shape of ``labels`` ``(z, y, x)``) of one phase.

    ``labels``: canonical labels on the grid; ``affine``: its NIfTI affine; ``spacing``
    ``(sz, sy, sx)`` mm; ``coords``: heart coordinates of the grid's voxels; ``geom``: the
    phase geometry (for epicardial fat and atria).
    """
    from scipy import ndimage

    a = appearance
    shape = labels.shape
    x, y, z = _world_axes(np.asarray(affine, dtype=np.float64), shape)
    tex = _smooth_fields(np.random.default_rng(a.texture_seed), shape, spacing, 3)

    # Body: tissue, subcutaneous fat, chest-wall muscle; depth below the body surface ~ (1-e)/|grad e|.
    bx, by, bax, bay = a.body
    dx, dy = (x - np.float32(bx)) / np.float32(bax), (y - np.float32(by)) / np.float32(bay)
    e = dx**2 + dy**2
    depth = (1.0 - e) / (2.0 * np.sqrt((dx / np.float32(bax)) ** 2 + (dy / np.float32(bay)) ** 2) + 1e-6)
    img = np.zeros(shape, dtype=np.float32)
    img[...] = np.where(e <= 1.0, np.float32(a.tissue), np.float32(0.0))
    img *= 1.0 + np.float32(a.texture) * tex[0]
    body = np.broadcast_to(e <= 1.0, shape)
    wall = np.broadcast_to(depth < a.subcutaneous_fat_mm + a.chest_muscle_mm, shape) & body
    img[wall] = a.muscle
    img[np.broadcast_to(depth < a.subcutaneous_fat_mm, shape) & body] = a.fat

    # Organs, kept a few mm away from the heart and inside the chest wall.
    near_heart = heart_envelope(geom, coords, 4.0)
    inner = body & ~np.broadcast_to(depth < a.subcutaneous_fat_mm + a.chest_muscle_mm + 3.0, shape)
    liver = _ellipsoid(x, y, z, a.liver_ellipsoid) & inner & ~near_heart
    img[liver] = a.liver * (1.0 + 0.05 * tex[1][liver])
    lungs = (_ellipsoid(x, y, z, a.lungs[0]) | _ellipsoid(x, y, z, a.lungs[1])) & inner & ~near_heart & ~liver
    img[lungs] = a.lung * (1.0 + 0.5 * tex[1][lungs])
    ax_, ay_, ar = a.aorta
    aorta = np.broadcast_to((x - np.float32(ax_)) ** 2 + (y - np.float32(ay_)) ** 2 <= ar**2, shape)
    aorta = aorta & inner & ~near_heart
    img[aorta] = a.atria  # blood outside the ventricles (same as the atria)

    # Atria above the base (image only), with a thin dark wall; epicardial fat.
    _atria(img, coords, geom, a)
    heart = labels > 0
    fat = heart_envelope(geom, coords, a.epicardial_fat_mm) & ~heart & (tex[2] > -0.3)
    groove = (coords.u > np.float32(geom.base_u - 12.0)) & (coords.u <= np.float32(geom.base_u))
    groove &= heart_envelope(geom, coords, a.epicardial_fat_mm + 4.0)  # AV groove
    img[(fat | groove) & ~heart & body] = a.fat

    img[(labels == LV) | (labels == RV)] = 1.0
    img[heart] *= 1.0 + 0.04 * tex[1][heart]
    img[(labels == MYO) | (labels == RVW)] = a.myocardium

    img *= np.float32(a.blood)
    img = ndimage.gaussian_filter(img, [b / s for b, s in zip(a.blur_mm, spacing)], mode="nearest", truncate=3.0)
    size = np.array(shape[::-1], dtype=float)  # (x, y, z) voxels
    centre = np.asarray(affine)[:3, :3] @ ((size - 1.0) / 2.0) + np.asarray(affine)[:3, 3]
    half = 0.5 * np.abs(np.asarray(affine)[:3, :3]) @ size
    xs, ys, zs = ((v - np.float32(c)) / np.float32(h) for v, c, h in zip((x, y, z), centre, half))
    img *= _bias_field(xs, ys, zs, a.bias, a.bias_strength)
    noise = np.random.default_rng(a.noise_seed).standard_normal((2, *shape), dtype=np.float32)
    noise *= np.float32(a.noise * a.blood)
    img = np.sqrt((img + noise[0]) ** 2 + noise[1] ** 2)
    return np.clip(np.rint(img), 0, np.iinfo(np.int16).max).astype(np.int16)


def _atria(img: np.ndarray, c: HeartCoords, geom: PhaseGeometry, a: Appearance) -> None:
    """Paint the left and right atria (ellipsoids just above the base) into ``img``."""
    base = np.float32(geom.base_u)
    above = c.u > base + np.float32(3.0)
    if not above.any():
        return
    r_lv = float(np.mean(geom.endo_radius))
    (cx, cy, _), (d, w, _) = geom.rv_centre, geom.rv_axes
    ca, sa = np.cos(geom.rv_angle), np.sin(geom.rv_angle)
    rv_mid = (cx + 0.5 * d * ca, cy + 0.5 * d * sa)
    for (px, py), rad, half in (((-0.2 * r_lv * ca, -0.2 * r_lv * sa), 0.9 * r_lv, 22.0),
                                (rv_mid, 0.45 * (d + w), 20.0)):
        for grow, value in ((2.0, a.myocardium), (0.0, a.atria)):
            q = ((c.x - np.float32(px)) ** 2 + (c.y - np.float32(py)) ** 2) / np.float32((rad + grow) ** 2)
            q += ((c.u - base - np.float32(3.0 + half)) / np.float32(half + grow)) ** 2
            img[(q <= 1.0) & above] = value
