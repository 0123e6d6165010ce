"""`HeartShape`: the parameters of one phantom heart at end-diastole.

All lengths are millimetres, angles degrees, volumes millilitres, fractions in [0, 1].
The geometry lives in *heart coordinates* (see :mod:`.anatomy`): ``u`` along the LV long
axis (the base plane is ``u = 0``, the apex at negative ``u``), ``(x, y)`` in the short-axis
plane, in-plane angle ``theta`` measured from heart ``+x`` towards heart ``+y``. With no
rotation the heart axes are the world axes (RAS), so the RV, at ``septal_angle`` = 40 deg,
lies anterior (+y) and to the patient's right (+x) of the LV.

:func:`.sampling.sample_shape` draws the parameters of a pathology from the ranges in
:data:`PATHOLOGY_RANGES` (uniform in each range), then solves the LV radius and length for the
sampled end-diastolic volume and sphericity, and scales the RV to its sampled volume.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


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
