"""Phantom subjects: HR image + labels + landmarks per phase, optional LR stacks, files.

The HR grid is ``(z, y, x)`` = ``grid_shape`` (default (64, 144, 144)) with spacing
:data:`~napari_cardiac_priors.conventions.HR_SPACING` (2.0, 1.25, 1.25) mm, axis-aligned
(RAS), voxel ``n // 2`` of every axis at the world origin (origins are multiples of 1.25 mm,
exact in float32). z is the short-axis stack axis: base towards +z, apex towards -z.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..conventions import HR_SPACING, LR_SLICE_SPACING, LV, MYO
from ..landmarks import Landmarks
from ..volume import Volume, affine_from_spacing
from .anatomy import ed_geometry, es_geometry, heart_frame, label_points
from .appearance import Appearance, render_image, sample_appearance
from .artefacts import LRArtefacts, sample_lr_artefacts, simulate_lr
from .landmark_rules import phantom_landmarks
from .sampling import sample_shape
from .shape import PATHOLOGIES, HeartShape

GRID_SHAPE = (64, 144, 144)
PHASES = ("ed", "es")


@dataclass(eq=False)
class Phantom:
    """One phase of a phantom subject.

    image : Volume, int16 ``(z, y, x)``, bSSFP-like intensities (~0-1500)
    labels : Volume, uint8 canonical labels on the same grid
    landmarks : Landmarks, world RAS mm, source "phantom"
    info : JSON-serialisable dict (pathology, phase, seed, shape parameters, volumes in mL
        measured on the labels, LR artefact parameters when there is an LR stack)
    lr_image, lr_labels : the artefact-corrupted 10 mm stack, or None
    """

    image: Volume
    labels: Volume
    landmarks: Landmarks
    info: dict
    lr_image: Volume | None = None
    lr_labels: Volume | None = None


def grid_affine(grid_shape: tuple = GRID_SHAPE) -> np.ndarray:
    """NIfTI affine of the phantom's HR grid (axis-aligned, voxel ``n // 2`` at the origin)."""
    nz, ny, nx = (int(v) for v in grid_shape)
    sz, sy, sx = HR_SPACING
    return affine_from_spacing(HR_SPACING, origin=(-(nx // 2) * sx, -(ny // 2) * sy, -(nz // 2) * sz))


def subject_seed(seed: int, index: int) -> int:
    """Seed of subject ``index`` of the set seeded ``seed`` (distinct, reproducible)."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


def _volumes_ml(labels: np.ndarray) -> dict:
    from ..metrics import volumes_ml

    return {f"{name.lower()}_volume_ml": v for name, v in volumes_ml(labels, HR_SPACING).items()}


def _render(shape: HeartShape, appearances: dict, grid_shape: tuple, seed) -> dict:
    """``{phase: Phantom}`` for the phases (keys of ``appearances``), sharing the heart pose."""
    grid_shape = tuple(int(v) for v in grid_shape)
    if len(grid_shape) != 3 or min(grid_shape) < 1:
        raise ValueError(f"grid_shape must be three positive sizes (z, y, x), got {grid_shape}")
    ed = ed_geometry(shape)
    frame = heart_frame(shape, ed)
    affine = grid_affine(grid_shape)
    coords = frame.coords_of_grid(affine, grid_shape)
    out = {}
    for phase, appearance in appearances.items():
        geom = ed if phase == "ed" else es_geometry(shape, ed)
        labels = label_points(geom, coords)
        image = render_image(labels, affine, HR_SPACING, coords, geom, appearance)
        meta = {"source": "phantom", "pathology": shape.pathology, "phase": phase}
        info = {
            "pathology": shape.pathology, "phase": phase, "seed": seed,
            **_volumes_ml(labels),
            "shape": shape.as_dict(),
            "heart_frame": {"rotation": frame.rotation.tolist(), "origin_mm": frame.origin.tolist()},
            "appearance": appearance.as_dict(),
            "grid": {"shape": list(grid_shape), "spacing_mm": list(HR_SPACING)},
        }
        out[phase] = Phantom(
            image=Volume(image, affine=affine, kind="image", metadata=dict(meta)),
            labels=Volume(labels, affine=affine, kind="labels", metadata=dict(meta)),
            landmarks=phantom_landmarks(geom, frame),
            info=info,
        )
    return out


def make_phantom(shape: HeartShape, *, phase: str = "ed", appearance: Appearance | None = None, rng=None,
                 grid_shape: tuple = GRID_SHAPE) -> Phantom:
    """One phase (``"ed"`` or ``"es"``) of the heart ``shape`` on the HR grid.

    ``appearance`` defaults to :func:`sample_appearance` with ``rng``. No LR stack (see
    :func:`make_subject` or :func:`~.artefacts.simulate_lr`).
    """
    if phase not in PHASES:
        raise ValueError(f"phase must be 'ed' or 'es', got {phase!r}")
    if not isinstance(shape, HeartShape):
        raise TypeError(f"shape must be a HeartShape (see sample_shape), got {type(shape).__name__}")
    appearance = sample_appearance(np.random.default_rng(rng)) if appearance is None else appearance
    return _render(shape, {phase: appearance}, grid_shape, None)[phase]


def make_subject(seed: int, *, pathology: str | None = None, lr: bool = False,
                 grid_shape: tuple = GRID_SHAPE) -> dict[str, Phantom]:
    """ED and ES phantoms of one subject: ``{"ed": Phantom, "es": Phantom}``.

    Everything follows from ``seed`` (a non-negative int): the pathology when ``pathology`` is
    None, the shape, the appearance (shared by both phases, noise drawn anew for ES) and, with
    ``lr``, the LR artefacts (shared by both phases: the same slices and breath-hold shifts).
    Same seed, same arrays. Each ``info`` also gets ``lv_ef`` / ``rv_ef`` measured on the labels.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if pathology is not None and pathology not in PATHOLOGIES:
        raise ValueError(f"pathology must be one of {PATHOLOGIES} or None, got {pathology!r}")
    streams = np.random.SeedSequence(int(seed)).spawn(5)  # independent: lr does not change the HR arrays
    r_path, r_shape, r_app, r_noise, r_lr = (np.random.default_rng(s) for s in streams)
    if pathology is None:
        pathology = PATHOLOGIES[int(r_path.integers(len(PATHOLOGIES)))]
    shape = sample_shape(pathology, rng=r_shape)
    appearance = sample_appearance(r_app)
    appearances = {"ed": appearance, "es": replace(appearance, noise_seed=int(r_noise.integers(2**31)))}
    subject = _render(shape, appearances, grid_shape, int(seed))

    ed, es = subject["ed"].info, subject["es"].info
    for key in ("lv", "rv"):
        edv = ed[f"{key}_volume_ml"]
        ef = (edv - es[f"{key}_volume_ml"]) / edv if edv > 0 else float("nan")
        ed[f"{key}_ef"] = es[f"{key}_ef"] = float(ef)
    if lr:
        heart = np.nonzero(np.isin(subject["ed"].labels.array, (LV, MYO)).any(axis=(1, 2)))[0]
        artefacts = sample_lr_artefacts(
            r_lr, n_hr_slices=grid_shape[0], hr_slice_mm=HR_SPACING[0], lr_slice_mm=LR_SLICE_SPACING,
            heart_range=(int(heart.min()), int(heart.max())),
        )
        for ph in subject.values():
            add_lr(ph, artefacts)
    return subject


def add_lr(phantom: Phantom, artefacts: LRArtefacts) -> Phantom:
    """Attach the LR stack simulated with ``artefacts`` to ``phantom`` (in place; returns it)."""
    phantom.lr_image, phantom.lr_labels = simulate_lr(phantom.image, phantom.labels, artefacts)
    phantom.info["lr"] = artefacts.as_dict()
    return phantom


def write_subject(subject: dict, out_dir, index: int) -> list[Path]:
    """Write a subject from :func:`make_subject` into ``out_dir``; returns the paths written.

    For each phase ``p`` (ed, es): ``phantom_{index:03d}_{p}_image.nii.gz``, ``..._labels.nii.gz``,
    ``..._landmarks.json``, ``..._info.json`` and, with an LR stack, ``..._lr_image.nii.gz`` and
    ``..._lr_labels.nii.gz``. Every file is written atomically.
    """
    from ..io import atomic_path, write_landmarks, write_volume

    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
        raise ValueError(f"index must be a non-negative int, got {index!r}")
    unknown = sorted(set(subject) - set(PHASES))
    if unknown:
        raise ValueError(f"subject phases must be 'ed' and/or 'es', got {unknown[0]!r}")
    out = Path(out_dir)
    paths = []
    for phase, ph in subject.items():
        stem = out / f"phantom_{int(index):03d}_{phase}"
        paths.append(write_volume(ph.image, f"{stem}_image.nii.gz"))
        paths.append(write_volume(ph.labels, f"{stem}_labels.nii.gz"))
        paths.append(write_landmarks(ph.landmarks, f"{stem}_landmarks.json"))
        info_path = Path(f"{stem}_info.json")
        with atomic_path(info_path) as tmp:
            tmp.write_text(json.dumps(ph.info, indent=2) + "\n", encoding="utf-8")
        paths.append(info_path)
        if ph.lr_image is not None:
            paths.append(write_volume(ph.lr_image, f"{stem}_lr_image.nii.gz"))
            paths.append(write_volume(ph.lr_labels, f"{stem}_lr_labels.nii.gz"))
    return [Path(p) for p in paths]
