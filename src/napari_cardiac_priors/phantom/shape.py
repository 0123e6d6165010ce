"""`HeartShape`: the parameters of one phantom heart at end-diastole, and their random sampling.

All lengths are millimetres, angles degrees, volumes millilitres, fractions in [0, 1].
The geometry lives in *heart coordinates* (see :mod:`.anatomy`): ``u`` along the LV long
axis (the base plane is ``u = 0``, the apex at negative ``u``), ``(x, y)`` in the short-axis
plane, in-plane angle ``theta`` measured from heart ``+x`` towards heart ``+y``. With no
rotation the heart axes are the world axes (RAS), so the RV, at ``septal_angle`` = 40 deg,
lies anterior (+y) and to the patient's right (+x) of the LV.

:func:`sample_shape` draws the parameters of a pathology from the ranges in
:data:`PATHOLOGY_RANGES` (uniform in each range), then solves the LV radius and length for the
sampled end-diastolic volume and sphericity, and scales the RV to its sampled volume.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

PATHOLOGIES = ("NOR", "DCM", "HCM", "MINF", "RV")

#: Sampling ranges per pathology (uniform). Targets are approximate, after ACDC (Bernard et
#: al., IEEE TMI 2018, its class definitions) and CMR reference values (Kawel-Boehm et al.,
#: JCMR 2020); kept inside the published ranges with a margin so that volumes measured on the
#: voxelised labels stay inside them too.
#:   lv_edv       LV end-diastolic volume, mL
#:   sphericity   LV endocardial radius / half-length (higher = rounder)
#:   wall         mean LV wall thickness at ED, mm
#:   apex_wall    LV wall thickness at the apex at ED, mm
#:   lv_ef, rv_ef ejection fractions
#:   rv_edv       RV end-diastolic volume, mL
#:   rv_wall      RV free wall thickness, mm
#:   descent      base-plane descent at ES as a fraction of the LV length
PATHOLOGY_RANGES = {
    # Normal: LV EDV ~110-170 mL, EF 55-70 %, wall ~8-10 mm; RV EDV ~110-190 mL, RV EF 50-65 %.
    "NOR": dict(lv_edv=(120, 160), sphericity=(0.30, 0.37), wall=(8.0, 10.0), apex_wall=(5.0, 7.0),
                lv_ef=(0.58, 0.68), rv_edv=(110, 150), rv_ef=(0.50, 0.60), rv_wall=(2.5, 3.5),
                descent=(0.10, 0.14)),
    # Dilated cardiomyopathy: LV EDV 220-350 mL, thin wall 5-7 mm, EF 15-35 %, rounder LV.
    "DCM": dict(lv_edv=(240, 330), sphericity=(0.42, 0.52), wall=(5.2, 6.8), apex_wall=(3.5, 5.0),
                lv_ef=(0.18, 0.32), rv_edv=(130, 190), rv_ef=(0.35, 0.50), rv_wall=(2.5, 3.5),
                descent=(0.04, 0.08)),
    # Hypertrophic cardiomyopathy: wall 14-25 mm (septum thickest), small cavity, EF 65-80 %.
    "HCM": dict(lv_edv=(80, 120), sphericity=(0.30, 0.38), wall=(15.0, 19.0), apex_wall=(9.0, 13.0),
                lv_ef=(0.67, 0.78), rv_edv=(100, 150), rv_ef=(0.50, 0.62), rv_wall=(2.5, 3.5),
                descent=(0.08, 0.12)),
    # Myocardial infarction: a thinned (4-6 mm), hypo-/akinetic sector; EF 30-45 %.
    "MINF": dict(lv_edv=(150, 210), sphericity=(0.33, 0.42), wall=(8.0, 10.0), apex_wall=(5.0, 7.0),
                 lv_ef=(0.32, 0.43), rv_edv=(120, 170), rv_ef=(0.45, 0.55), rv_wall=(2.5, 3.5),
                 descent=(0.05, 0.09)),
    # RV abnormality (e.g. pulmonary hypertension): RV EDV 200-300 mL, RV EF low, septum
    # flattened (LV D-shaped), LV normal or small.
    "RV": dict(lv_edv=(90, 135), sphericity=(0.30, 0.37), wall=(7.0, 9.0), apex_wall=(5.0, 6.5),
               lv_ef=(0.52, 0.65), rv_edv=(215, 285), rv_ef=(0.20, 0.35), rv_wall=(4.0, 5.5),
               descent=(0.06, 0.10)),
}

#: Direction of the RV (the septum) in the heart's short-axis plane, degrees.
SEPTAL_ANGLE_DEG = 40.0


@dataclass(frozen=True)
class HeartShape:
    """End-diastolic parameters of a bi-ventricular phantom heart (mm, degrees, fractions).

    LV: endocardium is the prolate half-spheroid ``(r / R(theta))**2 + ((u + lv_base_offset) /
    lv_half_length)**2 <= 1`` below the base plane ``u = 0``, with ``R(theta) = lv_radius * (1 +
    lv_eccentricity * cos 2(theta - lv_eccentricity_angle))``; the epicardium adds the wall
    thickness ``t(theta)`` in-plane and ``apex_thickness`` along the axis. ``t(theta) =
    wall_thickness * (1 + septal_asymmetry * cos(theta - septal_angle))``, reduced by
    ``infarct_thinning`` in an infarct sector of ``infarct_width`` degrees (0: none) centred at
    ``infarct_angle``. ``septal_flattening`` > 0 cuts the LV with a straight septum at
    ``(1 - septal_flattening) * lv_radius`` from the axis (a D-shaped cross-section).

    RV: an ellipsoid centred ``rv_offset`` from the LV axis towards ``septal_angle`` and
    ``rv_base_offset`` below the base, semi-axes ``rv_depth`` (towards the septal direction),
    ``rv_width`` (across it), ``rv_half_length`` (along u), minus the LV epicardium; its free
    wall ``rv_wall_thickness`` thick.

    Function: ``lv_ef``, ``rv_ef``; ``base_descent``: the base moves ``base_descent * LV length``
    towards the apex at ES; ``infarct_hypokinesis`` (1: akinetic) of the infarct sector.

    Pose: the long axis tilted ``tilt`` degrees from world +z towards the in-plane direction
    ``tilt_azimuth``; the heart rotated ``rotation`` degrees about its own axis; the heart's
    bounding box centred at ``translation`` (world x, y, z mm).
    """

    pathology: str = "NOR"
    lv_radius: float = 26.0
    lv_half_length: float = 78.0
    lv_base_offset: float = 12.0
    lv_eccentricity: float = 0.0
    lv_eccentricity_angle: float = 0.0
    wall_thickness: float = 9.0
    apex_thickness: float = 6.0
    septal_asymmetry: float = 0.0
    septal_flattening: float = 0.0
    septal_angle: float = SEPTAL_ANGLE_DEG
    infarct_angle: float = 0.0
    infarct_width: float = 0.0
    infarct_thinning: float = 0.0
    infarct_hypokinesis: float = 0.0
    rv_offset: float = 20.0
    rv_depth: float = 34.0
    rv_width: float = 46.0
    rv_half_length: float = 62.0
    rv_base_offset: float = 8.0
    rv_wall_thickness: float = 3.0
    lv_ef: float = 0.62
    rv_ef: float = 0.55
    base_descent: float = 0.12
    tilt: float = 0.0
    tilt_azimuth: float = 0.0
    rotation: float = 0.0
    translation: tuple = (0.0, 0.0, 0.0)

    def __post_init__(self):
        if self.pathology not in PATHOLOGIES:
            raise ValueError(f"pathology must be one of {PATHOLOGIES}, got {self.pathology!r}")
        positive = ("lv_radius", "lv_half_length", "wall_thickness", "apex_thickness", "rv_depth",
                    "rv_width", "rv_half_length", "rv_wall_thickness")
        for name in positive:
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"{name} must be > 0 mm, got {getattr(self, name)}")
        for name in ("lv_ef", "rv_ef", "base_descent", "septal_flattening", "infarct_thinning",
                     "infarct_hypokinesis"):
            v = float(getattr(self, name))
            if not 0.0 <= v < 1.0 and not (name == "infarct_hypokinesis" and v == 1.0):
                raise ValueError(f"{name} must be in [0, 1), got {v}")
        if not 0.0 <= self.lv_base_offset < self.lv_half_length:
            raise ValueError("lv_base_offset must be in [0, lv_half_length)")
        if len(self.translation) != 3:
            raise ValueError(f"translation must be (x, y, z) mm, got {self.translation!r}")

    def as_dict(self) -> dict:
        """JSON-serialisable ``{name: value}``."""
        d = asdict(self)
        d["translation"] = [float(v) for v in self.translation]
        return {k: (v if isinstance(v, (str, list)) else float(v)) for k, v in d.items()}


def _u(rng, lo_hi) -> float:
    return float(rng.uniform(*lo_hi))


def sample_shape(pathology: str = "NOR", *, rng=None) -> HeartShape:
    """Draw a random ED heart of ``pathology`` (one of :data:`PATHOLOGIES`).

    Volumes, wall thicknesses and function are drawn from :data:`PATHOLOGY_RANGES`; shape
    (eccentricity up to 0.06, base offset), pose (tilt up to 10 deg, in-plane rotation up to
    +-15 deg, translation up to +-4 mm) and pathology details (infarct sector, septal
    flattening) from fixed ranges. ``rng``: anything ``np.random.default_rng`` accepts.
    """
    from .anatomy import lv_cavity_volume_factor, scale_rv_to_volume

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
