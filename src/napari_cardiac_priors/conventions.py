"""Label scheme, landmark names and colours, axis order: the one source of truth.

Arrays are ``(z, y, x)`` for a 3D volume and ``(t, z, y, x)`` for cine, ``z`` along the
short-axis stack. Spacing is ``(sz, sy, sx)`` in mm. World coordinates are those of the
NIfTI affine as nibabel reads it (RAS+, mm); the affine maps voxel indices ``(x, y, z)``
(NIfTI order, the reverse of the array axes) to world ``(x, y, z)``.
"""

from __future__ import annotations

import numpy as np

#: The segmentation model for real scans that every entry point uses unless told otherwise: the
#: best measured on held-out patients (BENCHMARKS.md "Real scans"). sslln-acdc 2.2 segments as
#: unet-acdc 2.1 does (the same trunk) and adds SSLLN's landmark head; its six landmarks are
#: measured on its labels (the head's own points are in ``info["landmark_head"]``).
DEFAULT_MODEL = "sslln-acdc"

#: Canonical labels: value -> short name.
LABELS = {0: "background", 1: "LV", 2: "MYO", 3: "RV", 4: "RVW"}
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

#: File-name endings (before the suffix) that mark a label map: ``patient001_frame01_gt.nii.gz``,
#: ``case_seg.nii.gz``. A prediction and its reference share the name without them.
LABEL_FILE_ENDINGS = ("_segmentation", "_refined", "_labels", "_label", "_mask", "_seg", "_gt")
#: The cardiac phases of a subject, in file names as tokens (``patient001_ed_seg``).
PHASES = ("ed", "es")

#: One row per subject in a cohort's ``measures.csv`` (volumes mL, mass g, EF %).
MEASURE_COLUMNS = ("subject", "lv_edv_ml", "lv_esv_ml", "lv_ef", "lv_mass_g", "rv_edv_ml", "rv_esv_ml", "rv_ef",
                   "plausibility", "qc_flag")
#: The QC flag of a result without findings; any other non-empty text is a finding.
QC_OK = "ok"
#: A shape whose Mahalanobis distance lies beyond this percentile of the training shapes' is flagged.
IMPLAUSIBLE_PERCENTILE = 99.0


def is_flagged(qc_flag) -> bool:
    """True when a ``qc_flag`` text reports a finding (not empty, not :data:`QC_OK`)."""
    return qc_flag not in (None, "", QC_OK)


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
