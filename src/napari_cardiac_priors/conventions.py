"""Label scheme, landmark names and colours, axis order: the one source of truth.

Arrays are ``(z, y, x)`` for a 3D volume and ``(t, z, y, x)`` for cine, ``z`` along the
short-axis stack. Spacing is ``(sz, sy, sx)`` in mm. World coordinates are those of the
NIfTI affine as nibabel reads it (RAS+, mm); the affine maps voxel indices ``(x, y, z)``
(NIfTI order, the reverse of the array axes) to world ``(x, y, z)``.
"""

from __future__ import annotations

import numpy as np

#: Axis names of a 3D volume and of a cine stack, in array order.
AXES_3D = ("z", "y", "x")
AXES_4D = ("t", "z", "y", "x")

#: The segmentation model for real scans that every entry point uses unless told otherwise: the
#: best measured on held-out patients (BENCHMARKS.md "Real scans"). sslln-acdc 2.2 segments as
#: unet-acdc 2.1 does (the same trunk) and adds SSLLN's landmark head; its six landmarks are
#: measured on its labels (the head's own points are in ``info["landmark_head"]``).
DEFAULT_MODEL = "sslln-acdc"

#: Canonical labels: value -> short name.
LABELS = {0: "background", 1: "LV", 2: "MYO", 3: "RV", 4: "RVW"}
#: Canonical labels: value -> description.
LABEL_DESCRIPTIONS = {
    0: "background",
    1: "left ventricular cavity",
    2: "left ventricular wall (myocardium)",
    3: "right ventricular cavity",
    4: "right ventricular wall",
}
BACKGROUND, LV, MYO, RV, RVW = 0, 1, 2, 3, 4
#: Canonical label colours (RGBA, 0-1), shared by napari layers and screenshots.
LABEL_COLORS = {
    0: (0.0, 0.0, 0.0, 0.0),
    1: (0.90, 0.16, 0.16, 1.0),  # LV cavity: red (as SSLLN Fig. 3)
    2: (0.20, 0.75, 0.25, 1.0),  # myocardium: green
    3: (0.98, 0.85, 0.10, 1.0),  # RV cavity: yellow
    4: (0.20, 0.40, 0.95, 1.0),  # RV wall: blue
}

#: ACDC ground truth uses 1=RV, 2=MYO, 3=LV. Lookup table ACDC value -> canonical value.
ACDC_TO_CANONICAL = np.array([BACKGROUND, RV, MYO, LV], dtype=np.uint8)
#: Inverse mapping, for writing ACDC-coded files on request.
CANONICAL_TO_ACDC = np.array([0, 3, 2, 1], dtype=np.uint8)

#: The six landmarks, in order (SSLLN Fig. 3 and Table II).
LANDMARK_NAMES = (
    "rv_insert_anterior",
    "rv_lateral",
    "rv_insert_inferior",
    "lv_lateral",
    "apex",
    "mitral_valve",
)
LANDMARK_DESCRIPTIONS = {
    "rv_insert_anterior": "Landmark-I: anterior RV insertion point",
    "rv_lateral": "Landmark-II: RV lateral wall turning point",
    "rv_insert_inferior": "Landmark-III: inferior RV insertion point",
    "lv_lateral": "Landmark-IV: LV lateral wall mid-point",
    "apex": "Landmark-V: apex",
    "mitral_valve": "Landmark-VI: centre of the mitral valve",
}
#: Landmark colours by name (napari colour names).
LANDMARK_COLORS = {
    "rv_insert_anterior": "blue",
    "rv_lateral": "green",
    "rv_insert_inferior": "red",
    "lv_lateral": "yellow",
    "apex": "pink",
    "mitral_valve": "cyan",
}

#: Landmark JSON ``space`` value (positions are world millimetres, RAS+).
LANDMARK_SPACE = "world_mm_ras"
#: Allowed landmark sources.
LANDMARK_SOURCES = ("model", "user", "phantom", "derived", "file")

#: Myocardial tissue density used for mass (g/mL).
MYOCARDIAL_DENSITY_G_PER_ML = 1.05

#: Grid of the high-resolution data of SSLLN/ACNN: spacing (sz, sy, sx) in mm.
HR_SPACING = (2.0, 1.25, 1.25)
#: Slice thickness of the simulated low-resolution stacks (mm).
LR_SLICE_SPACING = 10.0


def label_name(value: int) -> str:
    """Short name of canonical label ``value``; raises ``ValueError`` if unknown."""
    try:
        return LABELS[int(value)]
    except KeyError as e:
        raise ValueError(f"unknown label value {value}; canonical labels are {sorted(LABELS)}") from e


def check_labels(array: np.ndarray, *, name: str = "labels") -> None:
    """Raise ``ValueError`` if ``array`` holds values outside the canonical labels."""
    values = np.unique(array)
    unknown = [v for v in values.tolist() if v not in LABELS]
    if unknown:
        shown = ", ".join(str(v) for v in unknown[:8])
        raise ValueError(
            f"{name} holds unknown label values [{shown}]; canonical labels are "
            f"0 background, 1 LV, 2 MYO, 3 RV, 4 RVW"
        )
