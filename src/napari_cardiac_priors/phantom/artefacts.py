"""Low-resolution short-axis stacks simulated from an HR phantom (ACNN Sec. III, SSLLN Sec. III-F).

Through-plane Gaussian blur (sigma 4 mm) of the HR image and decimation to 10 mm slices;
independent in-plane shifts per slice (breath-hold misalignment); incomplete coverage of the
heart (missing apical/basal slices); zero-filled slices. Labels are the HR labels at the same
slices (nearest), shifted and zero-filled identically.

:func:`sample_lr_artefacts` draws an :class:`LRArtefacts`; :func:`simulate_lr` applies it
deterministically.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..volume import Volume


@dataclass(frozen=True)
class LRArtefacts:
    """Parameters of one simulated LR stack.

    hr_slices : HR slice indices (array axis 0, equally spaced) the LR slices are taken at;
        LR slice ``k`` lies at the world position of HR slice ``hr_slices[k]``.
    shifts_mm : per LR slice ``(dy, dx)`` mm: the slice content moves by ``+dy`` along array
        axis y and ``+dx`` along array axis x.
    zero_slices : LR slice indices whose image and labels are set to zero.
    sigma_mm : through-plane Gaussian blur of the HR image before decimation.
    """

    hr_slices: tuple
    shifts_mm: tuple
    zero_slices: tuple = ()
    sigma_mm: float = 4.0

    def __post_init__(self):
        s = np.asarray(self.hr_slices)
        if s.ndim != 1 or s.size < 1:
            raise ValueError("hr_slices must hold at least one slice index")
        if s.size > 1 and (np.any(np.diff(s) <= 0) or np.unique(np.diff(s)).size != 1):
            raise ValueError(f"hr_slices must be increasing and equally spaced, got {tuple(s)}")
        if np.shape(self.shifts_mm) != (s.size, 2):
            raise ValueError(f"shifts_mm must be one (dy, dx) per LR slice, {s.size} slices")
        if any(not 0 <= int(k) < s.size for k in self.zero_slices):
            raise ValueError(f"zero_slices must index the {s.size} LR slices, got {self.zero_slices}")
        if not self.sigma_mm >= 0:
            raise ValueError(f"sigma_mm must be >= 0, got {self.sigma_mm}")

    @property
    def step(self) -> int:
        """HR slices per LR slice."""
        return int(self.hr_slices[1] - self.hr_slices[0]) if len(self.hr_slices) > 1 else 1

    def as_dict(self) -> dict:
        """JSON-serialisable ``{name: value}``."""
        return {
            "hr_slices": [int(k) for k in self.hr_slices],
            "shifts_mm": [[float(dy), float(dx)] for dy, dx in self.shifts_mm],
            "zero_slices": [int(k) for k in self.zero_slices],
            "sigma_mm": float(self.sigma_mm),
        }


def sample_lr_artefacts(rng=None, *, n_hr_slices: int = 64, hr_slice_mm: float = 2.0,
                        lr_slice_mm: float = 10.0, heart_range: tuple | None = None,
                        shift_sd_mm: float = 2.0, max_shift_mm: float = 5.0) -> LRArtefacts:
    """Draw LR stack artefacts for an HR grid of ``n_hr_slices`` slices ``hr_slice_mm`` apart.

    ``heart_range``: ``(lowest, highest)`` HR slice index of the heart (LV); the stack starts
    2-18 mm above the lowest and ends 0-10 mm below the highest (incomplete coverage). Shifts:
    normal, ``shift_sd_mm`` per axis, clipped to ``max_shift_mm``. Zero-filled slices: none
    (60 %), one (30 %) or two (10 %) interior slices.
    """
    rng = np.random.default_rng(rng)
    step = int(round(lr_slice_mm / hr_slice_mm))
    if step < 1 or not np.isclose(step * hr_slice_mm, lr_slice_mm):
        raise ValueError(f"lr_slice_mm ({lr_slice_mm}) must be a multiple of hr_slice_mm ({hr_slice_mm})")
    lo, hi = (0, n_hr_slices - 1) if heart_range is None else (int(heart_range[0]), int(heart_range[1]))
    start = lo + int(round(rng.uniform(2.0, 18.0) / hr_slice_mm))
    stop = hi - int(round(rng.uniform(0.0, 10.0) / hr_slice_mm))
    start, stop = min(max(start, 0), n_hr_slices - 1), min(max(stop, 0), n_hr_slices - 1)
    slices = list(range(start, stop + 1, step))
    while len(slices) < 3 and slices[0] - step >= 0:  # keep a usable stack
        slices.insert(0, slices[0] - step)
    n = len(slices)
    shifts = np.clip(rng.normal(0.0, shift_sd_mm, size=(n, 2)), -max_shift_mm, max_shift_mm)
    n_zero = int(rng.choice([0, 1, 2], p=[0.6, 0.3, 0.1])) if n > 2 else 0
    zero = sorted(int(k) for k in rng.choice(np.arange(1, n - 1), size=min(n_zero, n - 2), replace=False))
    return LRArtefacts(tuple(slices), tuple((float(a), float(b)) for a, b in shifts), tuple(zero))


def simulate_lr(image: Volume, labels: Volume, artefacts: LRArtefacts) -> tuple[Volume, Volume]:
    """Apply ``artefacts`` to an HR ``image`` and its ``labels`` (same 3D grid).

    Returns the LR image (dtype of ``image``) and LR labels (uint8) with shape
    ``(len(hr_slices), y, x)``; their affine is the HR affine with the slice axis stretched by
    ``artefacts.step`` and its origin at HR slice ``hr_slices[0]`` (spacing ``(step * sz, sy, sx)``).
    """
    from scipy import ndimage

    if image.is_cine or labels.is_cine:
        raise ValueError("simulate_lr takes 3D volumes; pick a frame first")
    if image.spatial_shape != labels.spatial_shape or not np.allclose(image.affine, labels.affine):
        raise ValueError("image and labels must share the same grid")
    slices = np.asarray(artefacts.hr_slices)
    if slices[-1] >= image.shape[0]:
        raise ValueError(f"hr_slices reach {slices[-1]} but the image has {image.shape[0]} slices")
    sz, sy, sx = image.spacing
    hr = image.array.astype(np.float32)
    if artefacts.sigma_mm > 0:
        hr = ndimage.gaussian_filter1d(hr, artefacts.sigma_mm / sz, axis=0, mode="nearest", truncate=3.0)
    img = hr[slices]
    lab = labels.array[slices].astype(np.uint8)
    for k, (dy, dx) in enumerate(artefacts.shifts_mm):
        shift = (dy / sy, dx / sx)
        img[k] = ndimage.shift(img[k], shift, order=1, mode="nearest")
        lab[k] = ndimage.shift(lab[k], shift, order=0, mode="nearest")
    for k in artefacts.zero_slices:
        img[k] = 0
        lab[k] = 0
    if np.issubdtype(image.array.dtype, np.integer):
        info = np.iinfo(image.array.dtype)
        img = np.clip(np.rint(img), info.min, info.max)
    img = img.astype(image.array.dtype)

    affine = image.affine.copy()
    affine[:3, 2] *= artefacts.step
    affine[:3, 3] = image.affine[:3, 3] + image.affine[:3, 2] * slices[0]
    meta = {"lr_artefacts": artefacts.as_dict()}
    return (Volume(img, affine=affine, kind="image", metadata={**image.metadata, **meta}),
            Volume(lab, affine=affine, kind="labels", metadata={**labels.metadata, **meta}))
