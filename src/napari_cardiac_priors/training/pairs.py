"""LR/HR training pairs from phantoms for the ACNN models (segmentation and super-resolution).

A :class:`Pair` holds, for one phantom phase, the HR image and labels on the *LR-aligned HR
grid* (``factor`` HR slices per LR slice, centred on it: HR slice ``factor * k + j`` lies
``(j - (factor - 1) / 2)`` HR slice spacings from LR slice ``k``), cropped in-plane to
``crop`` about the grid centre, and the LR stack simulated from the HR image by through-plane
Gaussian blur (sigma 4 mm) and decimation. :func:`sample_pair` then applies the training
augmentation of the ACNN paper: independent in-plane rigid shifts of the LR slices (motion:
the HR target is untouched) and Gaussian noise, and optionally interior LR slices set to zero
(a lost slice; the HR target is again untouched). Intensities are mapped with the LR stack's
1st-99th percentiles to [0, 1], the same mapping for the HR image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..contract import hr_affine
from ..volume import Volume


@dataclass
class Pair:
    """One LR/HR pair: ``lr_image (Zl, Y, X)``; ``hr_image``, ``hr_labels (factor * Zl, Y, X)``."""

    id: str
    lr_image: np.ndarray
    hr_image: np.ndarray
    hr_labels: np.ndarray
    lr_volume: Volume
    hr_volume: Volume
    group: str = ""
    motion_px: np.ndarray | None = None  # (Zl, 2) the phantom's own breath-hold shifts (dy, dx), pixels

    def test_stack(self) -> np.ndarray:
        """The LR stack with the phantom's own breath-hold shifts: the held-out input with motion."""
        return self.lr_image if self.motion_px is None else apply_motion(self.lr_image, self.motion_px)


def _crop_box(n: int, size: int) -> tuple[int, int]:
    start = (n - size) // 2
    return start, start + size


def phantom_pair(phantom, artefacts, *, crop=(120, 120), factor: int = 5, pathology: str = "", name: str = "") -> Pair:
    """The pair of one phantom phase (a :class:`~napari_cardiac_priors.phantom.generate.Phantom`)
    for the LR slice positions of ``artefacts`` (their shifts and zero-filled slices are *not*
    applied here: the LR stack is the clean blurred decimation; motion comes from :func:`sample_pair`
    or from a test stack)."""
    from ..contract import normalise
    from ..phantom.artefacts import LRArtefacts, simulate_lr

    hr_slices = np.asarray(artefacts.hr_slices)
    if artefacts.step != factor:
        raise ValueError(f"the LR slice step is {artefacts.step} HR slices; the model needs {factor}")
    clean = LRArtefacts(tuple(int(s) for s in hr_slices), tuple((0.0, 0.0) for _ in hr_slices), (), artefacts.sigma_mm)
    lr_image, _ = simulate_lr(phantom.image, phantom.labels, clean)
    nz = phantom.image.spatial_shape[0]
    idx = (hr_slices[:, None] + np.arange(factor)[None, :] - (factor - 1) // 2).ravel()
    inside = (idx >= 0) & (idx < nz)
    (y0, y1), (x0, x1) = (_crop_box(n, c) for n, c in zip(phantom.image.spatial_shape[1:], crop))

    def hr(array, fill=0):
        out = np.full((idx.size, y1 - y0, x1 - x0), fill, dtype=array.dtype)
        out[inside] = array[idx[inside], y0:y1, x0:x1]
        return out

    lr = lr_image.array[:, y0:y1, x0:x1].astype(np.float32)
    lo, hi = np.percentile(lr, [1, 99])
    scale = max(float(hi - lo), 1e-6)
    lr_n = normalise(lr)
    hr_img = np.clip((hr(phantom.image.array.astype(np.float32)) - lo) / scale, 0.0, 1.0).astype(np.float32)
    crop_shift = np.eye(4)
    crop_shift[:3, 3] = [x0, y0, 0]
    lr_aff = lr_image.affine @ crop_shift
    motion = np.asarray(artefacts.shifts_mm, float) / np.asarray(lr_image.spacing[1:])
    return Pair(name, lr_n, hr_img, hr(phantom.labels.array.astype(np.uint8)),
                Volume(lr_n, affine=lr_aff, kind="image"),
                Volume(hr_img, affine=hr_affine(lr_aff, factor), kind="image"), pathology, motion)


def phantom_pairs(seeds, *, crop=(120, 120), factor: int = 5) -> list[Pair]:
    """ED and ES pairs of the phantom subjects ``seeds`` (pathologies cycling as in the SSLLN recipes)."""
    from ..phantom import PATHOLOGIES, make_subject
    from ..phantom.artefacts import LRArtefacts

    pairs = []
    for i, seed in enumerate(seeds):
        subject = make_subject(int(seed), pathology=PATHOLOGIES[i % len(PATHOLOGIES)], lr=True)
        for phase, ph in subject.items():
            lr = ph.info["lr"]
            art = LRArtefacts(tuple(lr["hr_slices"]), tuple(map(tuple, lr["shifts_mm"])), tuple(lr["zero_slices"]), lr["sigma_mm"])
            pairs.append(phantom_pair(ph, art, crop=crop, factor=factor, pathology=ph.info["pathology"],
                                      name=f"phantom{seed}_{phase}"))
    return pairs


def apply_motion(lr: np.ndarray, shifts_px: np.ndarray) -> np.ndarray:
    """Shift each LR slice ``k`` in-plane by ``shifts_px[k] = (dy, dx)`` pixels (linear, zero fill)."""
    from scipy import ndimage

    out = np.empty_like(lr)
    for k in range(lr.shape[0]):
        out[k] = ndimage.shift(lr[k], shifts_px[k], order=1, mode="constant")
    return out


def sample_pair(pair: Pair, rng, *, motion: bool = True, shift_sd_mm: float = 2.0, max_shift_mm: float = 5.0,
                noise_sd: float = 0.02, zero_slices_p: float = 0.0,
                max_zero_slices: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(lr (Zl, Y, X), hr_labels, hr_image)`` with motion (per-slice in-plane shifts of the LR
    stack only) and Gaussian noise on the LR stack; with probability ``zero_slices_p``, 1 to
    ``max_zero_slices`` interior LR slices (never the first or last) are then set to exactly 0."""
    lr = pair.lr_image
    if motion:
        spacing = np.asarray(pair.lr_volume.spacing[1:])
        shifts = np.clip(rng.normal(0.0, shift_sd_mm, (lr.shape[0], 2)), -max_shift_mm, max_shift_mm) / spacing
        lr = apply_motion(lr, shifts)
    if noise_sd:
        lr = lr + rng.normal(0.0, noise_sd, lr.shape).astype(np.float32)
    interior = np.arange(1, lr.shape[0] - 1)
    if zero_slices_p and interior.size and rng.random() < zero_slices_p:
        k = int(rng.integers(1, min(int(max_zero_slices), interior.size) + 1))
        lr = zero_slices(lr, rng.choice(interior, size=k, replace=False))
    return lr.astype(np.float32), pair.hr_labels, pair.hr_image


def zero_slices(lr: np.ndarray, slices) -> np.ndarray:
    """A float32 copy of the ``(Zl, Y, X)`` LR stack with the slices ``slices`` set to 0 (lost slices)."""
    out = np.array(lr, np.float32)
    out[np.asarray(slices, int)] = 0.0
    return out
