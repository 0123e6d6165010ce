"""Refine one subject's segmentation: the landmarks to use (a fallback measured on the labels
when fewer than four are known), the atlas set that fits the target, refinement, and
optionally the smooth surfaces of the result."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from ..landmarks import Landmarks
from ..volume import Volume


@dataclass
class RefinedSubject:
    """The outcome of :func:`refine_subject`: the refinement (``result.labels`` on the HR grid,
    the selected atlases, timings), the atlas set used, the landmarks used, the surfaces (when
    asked for) and notes for the user."""

    result: object  # registration.refine.RefineResult
    atlas_set: str
    landmarks: Landmarks
    surfaces: list = field(default_factory=list)
    notes: list = field(default_factory=list)


def cached_atlases(source: str) -> tuple:
    """The atlases of a set name or folder, loaded once per process while the set is unchanged
    (a cohort run's workers refine many subjects with the same set; a set re-installed under
    the same name, or a folder whose files changed, is loaded again)."""
    from pathlib import Path

    from ..registry import get_model

    path = Path(str(source))
    if path.is_dir():
        version = max([p.stat().st_mtime_ns for p in path.iterdir()] + [path.stat().st_mtime_ns])
    else:
        version = get_model(str(source)).sha256
    return _load_atlases(str(source), version)


@lru_cache(maxsize=4)
def _load_atlases(source: str, version) -> tuple:
    from ..registry.atlases import load_atlas_source

    return tuple(load_atlas_source(source))


def landmarks_for_refinement(labels: Volume, landmarks: Landmarks | None) -> tuple[Landmarks, list]:
    """``landmarks`` when at least four are known, else those measured on ``labels``; and notes."""
    from ..landmarks import derive_from_labels

    if landmarks is not None and int(np.sum(landmarks.valid)) >= 4:
        return landmarks, []
    missing: list = []
    derived = derive_from_labels(labels, notes=missing)
    why = "no landmarks were given" if landmarks is None else f"only {int(np.sum(landmarks.valid))} landmarks are known"
    return derived, [f"{why}: refined from the landmarks measured on the labels"] + missing


def refine_subject(labels: Volume, landmarks: Landmarks | None = None, *, atlases: str = "auto", n_atlases: int = 5,
                   fusion: str = "majority", init: str = "landmarks", image: Volume | None = None,
                   surfaces: bool = False, device: str = "cpu", progress=None) -> RefinedSubject:
    """Refine ``labels`` (a target segmentation) by atlas propagation.

    ``atlases``: a set name or folder, or "auto" (the set that fits the target, see
    :func:`~napari_cardiac_priors.registry.atlases.atlas_set_for`). ``landmarks``: the
    target's (corrected) landmarks; with fewer than four known, those measured on the labels.
    ``surfaces``: also the smooth surfaces of the refined labels
    (:func:`~napari_cardiac_priors.surfaces.label_surfaces`). Other options as
    :func:`~napari_cardiac_priors.registration.refine.refine`.
    """
    from ..registration.refine import refine
    from ..registry.atlases import resolve_atlas_set

    use, notes = landmarks_for_refinement(labels, landmarks)
    name = resolve_atlas_set(atlases, labels)
    result = refine(labels, use, list(cached_atlases(name)), n_atlases=n_atlases, fusion=fusion, init=init,
                    image=image, device=device, progress=progress)
    result.info["atlas_set"] = name
    meshes = []
    if surfaces:
        from ..surfaces import label_surfaces

        meshes = label_surfaces(result.labels)
    return RefinedSubject(result, name, use, meshes, notes)
