"""Parametric bi-ventricular cardiac phantom: anatomy, MR appearance, LR stack artefacts.

::

    shape = sample_shape("DCM", rng=0)              # HeartShape: ED parameters (mm, deg)
    ph = make_phantom(shape, phase="es")            # Phantom: image, labels, landmarks, info
    subject = make_subject(7, lr=True)              # {"ed": Phantom, "es": Phantom}
    write_subject(subject, "out", 0)                # phantom_000_ed_image.nii.gz, ...

Modules: :mod:`.shape` (parameters, pathology ranges, sampling), :mod:`.anatomy` (geometry,
labels, ES contraction), :mod:`.landmark_rules` (the six landmarks and their rules),
:mod:`.appearance` (bSSFP-like image), :mod:`.artefacts` (LR stacks), :mod:`.generate`.
"""

from __future__ import annotations

from .appearance import Appearance, render_image, sample_appearance
from .artefacts import LRArtefacts, sample_lr_artefacts, simulate_lr
from .generate import GRID_SHAPE, Phantom, add_lr, grid_affine, make_phantom, make_subject, subject_seed, write_subject
from .landmark_rules import phantom_landmarks
from .sampling import sample_shape
from .shape import PATHOLOGIES, PATHOLOGY_RANGES, HeartShape

__all__ = [
    "GRID_SHAPE",
    "PATHOLOGIES",
    "PATHOLOGY_RANGES",
    "Appearance",
    "HeartShape",
    "LRArtefacts",
    "Phantom",
    "add_lr",
    "grid_affine",
    "make_phantom",
    "make_subject",
    "phantom_landmarks",
    "render_image",
    "sample_appearance",
    "sample_lr_artefacts",
    "sample_shape",
    "simulate_lr",
    "subject_seed",
    "write_subject",
]
