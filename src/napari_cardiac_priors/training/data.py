"""Training cases and their sampling onto a model grid, with augmentation.

A :class:`Case` is an image with its canonical labels and landmarks (any grid). Sampling
(:func:`sample_case`) maps it onto the model grid of a contract slice by slice with an
in-plane affine (the SSLLN augmentation: rotation, isotropic scale, intensity, and
independent in-plane shifts of the slices, as misaligned breath-holds), following the
"sample parameters, then apply a deterministic function" pattern.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..contract import model_grid, normalise
from ..landmarks import Landmarks, landmark_target
from ..volume import Volume, resample


@dataclass
class Case:
    """One training volume: ``image`` and ``labels`` on the same grid, ``landmarks`` (world mm)."""

    id: str
    image: Volume
    labels: Volume
    landmarks: Landmarks
    group: str = ""


@dataclass(frozen=True)
class Augmentation:
    """In-plane augmentation parameters of one sample (deterministic once sampled)."""

    rotation_deg: float = 0.0
    scale: float = 1.0
    intensity: float = 1.0
    centre_shift_mm: tuple = (0.0, 0.0)
    slice_shifts_mm: np.ndarray | None = None  # (n_model_slices, 2) (dy, dx)


def sample_augmentation(rng, n_slices: int, *, rotation_sd=10.0, scale_sd=0.1, intensity_sd=0.1, centre_sd_mm=8.0,
                        slice_shift_sd_mm=1.5, slice_shift_prob=0.5) -> Augmentation:
    """SSLLN's augmentation: rotation N(0, 10 deg) clipped at 2 sd, scale 1 + N(0, 0.1) clipped at
    1.5 sd, intensity x (1 + N(0, 0.1)); plus a shift of the crop centre and, with probability
    ``slice_shift_prob``, independent in-plane slice shifts N(0, ``slice_shift_sd_mm``)."""
    rng = np.random.default_rng(rng)
    rot = float(np.clip(rng.normal(), -2, 2) * rotation_sd)
    scale = float(1.0 + np.clip(rng.normal(), -1.5, 1.5) * scale_sd)
    intensity = float(1.0 + rng.normal() * intensity_sd)
    centre = tuple(float(v) for v in rng.normal(0, centre_sd_mm, 2))
    shifts = rng.normal(0, slice_shift_sd_mm, (n_slices, 2)) if rng.random() < slice_shift_prob else None
    return Augmentation(rot, scale, intensity, centre, shifts)


def load_case_arrays(case: Case, contract: dict, *, landmark_radius_mm: float) -> dict:
    """Arrays of a case ready for sampling: normalised image, labels, landmark target (input grid)."""
    return {
        "image": normalise(case.image.array, contract.get("normalisation", "percentile_1_99")),
        "labels": case.labels.array.astype(np.uint8),
        "landmarks": landmark_target(case.landmarks, case.labels, radius_mm=landmark_radius_mm),
        "volume": case.image,
    }


def sample_case(arrays: dict, contract: dict, aug: Augmentation | None = None):
    """``(image, labels, landmark_labels)``, each ``(S, Y, X)``, on the (augmented) model grid.

    The model grid must keep the input's slices (contract spacing ``z`` null, or equal to the
    input's slice spacing with an integer offset); each model slice is resampled from one
    input slice with a 2D affine (linear for the image, nearest for labels).
    """
    from scipy import ndimage

    aug = aug or Augmentation()
    vol = arrays["volume"]
    grid = model_grid(vol, contract, shift_mm=aug.centre_shift_mm)
    m = np.linalg.inv(vol.affine) @ grid.affine  # model (x', y', z') -> input (x, y, z)
    kz, z0 = m[2, 2], m[2, 3]
    if abs(kz - 1.0) > 1e-6 or abs(z0 - round(z0)) > 1e-6:
        raise ValueError("sample_case needs a model grid that keeps the input's slices")
    S, Y, X = grid.shape
    b = np.array([[m[1, 1], m[1, 0]], [m[0, 1], m[0, 0]]])  # (y', x') -> (y, x)
    t = np.array([m[1, 3], m[0, 3]])
    a = np.deg2rad(aug.rotation_deg)
    rs = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) / aug.scale
    c = np.array([(Y - 1) / 2.0, (X - 1) / 2.0])
    mat = b @ rs
    spacing_model = np.array(contract["spacing"][1:], dtype=float)
    image = np.zeros((S, Y, X), np.float32)
    labels = np.zeros((S, Y, X), np.uint8)
    lmk = np.zeros((S, Y, X), np.uint8)
    nz = vol.spatial_shape[0]
    for k in range(S):
        zi = int(round(k * kz + z0))
        if not 0 <= zi < nz:
            continue
        shift = np.zeros(2) if aug.slice_shifts_mm is None else aug.slice_shifts_mm[k] / spacing_model
        off = b @ (c - rs @ c + shift) + t
        image[k] = ndimage.affine_transform(arrays["image"][zi], mat, off, output_shape=(Y, X), order=1, mode="constant")
        labels[k] = ndimage.affine_transform(arrays["labels"][zi], mat, off, output_shape=(Y, X), order=0, mode="constant")
        lmk[k] = ndimage.affine_transform(arrays["landmarks"][zi], mat, off, output_shape=(Y, X), order=0, mode="constant")
    return image * aug.intensity, labels, lmk


# -- case sources ---------------------------------------------------------------------------
def acdc_cases(root, ids, *, drop_rv_wall: bool = True) -> list[Case]:
    """ED and ES of ACDC patients ``ids``; landmarks derived from the manual labels."""

    from ..io.acdc import iter_patients
    from ..landmarks import derive_from_labels

    cases = []
    for p in iter_patients(root, ids=ids):
        for phase in ("ed", "es"):
            labels = p.labels(phase)
            lm = derive_from_labels(labels, notes=[])
            cases.append(Case(f"{p.id}_{phase}", p.image(phase), labels, lm, p.group or ""))
    return cases


def phantom_cases(seeds, *, lr: bool = False) -> list[Case]:
    """Phantom subjects (ED and ES): HR image + labels + exact landmarks, or with ``lr`` the
    artefact-corrupted LR stack as image and the HR labels sampled on its grid (unshifted) as target."""
    from ..phantom import PATHOLOGIES, make_subject

    cases = []
    for i, seed in enumerate(seeds):
        subject = make_subject(int(seed), pathology=PATHOLOGIES[i % len(PATHOLOGIES)], lr=lr)
        for phase, ph in subject.items():
            if lr:
                target = resample(ph.labels, ph.lr_image)
                cases.append(Case(f"phantom{seed}_{phase}_lr", ph.lr_image, target, ph.landmarks, ph.info["pathology"]))
            else:
                cases.append(Case(f"phantom{seed}_{phase}", ph.image, ph.labels, ph.landmarks, ph.info["pathology"]))
    return cases
