"""Registration core of SSLLN's shape refinement: landmark/label affines, atlas selection by
NMI, label-consistency B-spline FFD (all atlases in one torch batch) and label fusion.

Arrays are ``(z, y, x)``; world coordinates are RAS mm ``(x, y, z)``; a world affine maps an
atlas' world onto the target's world (``landmark_affine(atlas_landmarks, target_landmarks)``).
torch is imported by the submodules (the package's top level does not import this one).

Typical use::

    affines = [landmark_affine(a.landmarks, target_landmarks) for a in atlases]
    idx, scores = select_atlases(target_labels, [a.labels for a in atlases], affines, top=5)
    chosen = [atlases[i].labels for i in idx]
    transform = register_ffd(target_labels, chosen, [affines[i] for i in idx])
    warped = transform.warp(chosen)                       # (L, Z, Y, X) on the target grid
    fused = patch_fusion(target_labels.array, warped)     # or majority_vote(warped)
"""

from __future__ import annotations

from .affine import label_affine, landmark_affine
from .ffd import DEFAULT_LEVELS, FFDTransform, Lattice, Level, bending_energy, register_ffd
from .fusion import majority_vote, patch_fusion
from .select import nmi, select_atlases
from .warp import index_to_normalised, warp_stack, warp_volume

__all__ = [
    "DEFAULT_LEVELS",
    "FFDTransform",
    "index_to_normalised",
    "Lattice",
    "Level",
    "bending_energy",
    "label_affine",
    "landmark_affine",
    "majority_vote",
    "nmi",
    "patch_fusion",
    "register_ffd",
    "select_atlases",
    "warp_stack",
    "warp_volume",
]
