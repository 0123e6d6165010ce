"""Drawing a random heart of a pathology: :func:`sample_shape` (the ranges are
:data:`.shape.PATHOLOGY_RANGES`; volumes are matched with :mod:`.anatomy`)."""

from __future__ import annotations

import numpy as np

from .anatomy import lv_cavity_volume_factor, scale_rv_to_volume
from .shape import PATHOLOGIES, PATHOLOGY_RANGES, SEPTAL_ANGLE_DEG, HeartShape


def _u(rng, lo_hi) -> float:
    return float(rng.uniform(*lo_hi))


def sample_shape(pathology: str = "NOR", *, rng=None) -> HeartShape:
    """Draw a random ED heart of ``pathology`` (one of :data:`PATHOLOGIES`).

    Volumes, wall thicknesses and function are drawn from :data:`PATHOLOGY_RANGES`; shape
    (eccentricity up to 0.06, base offset), pose (tilt up to 10 deg, in-plane rotation up to
    +-15 deg, translation up to +-4 mm) and pathology details (infarct sector, septal
    flattening) from fixed ranges. ``rng``: anything ``np.random.default_rng`` accepts.
    """
    if pathology not in PATHOLOGIES:
        raise ValueError(f"pathology must be one of {PATHOLOGIES}, got {pathology!r}")
    rng = np.random.default_rng(rng)
    p = PATHOLOGY_RANGES[pathology]

    wall = _u(rng, p["wall"])
    asym = 0.0
    if pathology == "HCM":  # asymmetric septal hypertrophy; keep 14 <= t(theta) <= 25 mm
        asym = _u(rng, (0.05, min(0.3, 24.0 / wall - 1.0, 1.0 - 14.0 / wall)))
    flattening = _u(rng, (0.25, 0.40)) if pathology == "RV" else 0.0
    infarct = dict(infarct_angle=0.0, infarct_width=0.0, infarct_thinning=0.0, infarct_hypokinesis=0.0)
    if pathology == "MINF":
        # Coronary territories relative to the septal direction (40 deg, the RV side):
        # LAD anterior (+50 -> 90 deg, world +y), LCx lateral (+180), RCA inferior (-100 -> -60 deg).
        territory = SEPTAL_ANGLE_DEG + float(rng.choice([50.0, 180.0, -100.0]))
        infarct = dict(
            infarct_angle=(territory + _u(rng, (-20, 20))) % 360.0,
            infarct_width=_u(rng, (60.0, 110.0)),
            infarct_thinning=_u(rng, (0.40, 0.55)),  # 8-10 mm -> about 4-6 mm
            infarct_hypokinesis=_u(rng, (0.7, 1.0)),
        )
    shape = dict(
        pathology=pathology,
        lv_eccentricity=_u(rng, (0.0, 0.06)),
        lv_eccentricity_angle=_u(rng, (0.0, 180.0)),
        wall_thickness=wall,
        apex_thickness=_u(rng, p["apex_wall"]),
        septal_asymmetry=asym,
        septal_flattening=flattening,
        septal_angle=SEPTAL_ANGLE_DEG,
        **infarct,
        rv_wall_thickness=_u(rng, p["rv_wall"]),
        lv_ef=_u(rng, p["lv_ef"]),
        rv_ef=_u(rng, p["rv_ef"]),
        base_descent=_u(rng, p["descent"]),
        tilt=_u(rng, (0.0, 10.0)),
        tilt_azimuth=_u(rng, (0.0, 360.0)),
        rotation=_u(rng, (-15.0, 15.0)),
        translation=tuple(float(v) for v in rng.uniform(-4.0, 4.0, size=3)),
    )
    # LV size from volume and sphericity: V = g(beta) * pi * kappa * a**2 * c, c = a / s.
    edv_mm3 = _u(rng, p["lv_edv"]) * 1000.0
    sphericity = _u(rng, p["sphericity"])
    beta = _u(rng, (0.12, 0.22))  # base plane above the spheroid's centre, fraction of c
    kappa = lv_cavity_volume_factor(HeartShape(**shape))  # mean (R(theta) / a)**2
    g = (1.0 + beta) - (1.0 + beta**3) / 3.0
    a = (edv_mm3 * sphericity / (g * np.pi * kappa)) ** (1.0 / 3.0)
    c = a / sphericity
    shape.update(lv_radius=float(a), lv_half_length=float(c), lv_base_offset=float(beta * c))

    # RV relative to the mean LV epicardial radius; scaled to its volume afterwards.
    r_epi = a + wall
    lv_length = beta * c + c + shape["apex_thickness"]
    rv_beta = _u(rng, (0.05, 0.20))
    rv_half_length = _u(rng, (0.75, 0.88)) * lv_length / (1.0 + rv_beta)
    # A dilated RV sits further out so that it does not close around the LV.
    offset = (0.50, 0.60) if pathology == "RV" else (0.35, 0.45)
    shape.update(
        rv_offset=float(_u(rng, offset) * r_epi),
        rv_depth=float(_u(rng, (1.10, 1.20)) * r_epi),
        rv_width=float(_u(rng, (1.35, 1.50)) * r_epi),
        rv_half_length=float(rv_half_length),
        rv_base_offset=float(rv_beta * rv_half_length),
    )
    draft = HeartShape(**shape)
    return scale_rv_to_volume(draft, _u(rng, p["rv_edv"]))
