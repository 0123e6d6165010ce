"""Shape refinement by multi-atlas propagation (SSLLN section II-C), the whole pipeline.

``refine(labels, landmarks, atlases)`` takes a (typically low-resolution, artefact-corrupted)
segmentation with its six landmarks and returns a smooth label map on a high-resolution grid
(1.25 x 1.25 x 2 mm) covering it, in the same world space:

1. landmark affine (12 DOF) from every atlas to the target (or a label-moment affine with
   ``init="labels"``, the baseline of SSLLN Fig. 12);
2. atlas selection: the ``n_atlases`` atlases with the highest NMI after the affine;
3. label-consistency B-spline FFD of the selected atlases, all in one batch, on the structures
   target and atlas share, evaluated on the target's own grid: on an LR stack only the
   acquired slices constrain the shape, the B-splines fill in between;
4. the atlases warped onto the HR grid (an atlas' RV wall comes along even when the target
   has none), then fused by non-local patch fusion (eq. 5) or majority vote.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..conventions import HR_SPACING, LANDMARK_NAMES, LV, RVW
from ..errors import InputError
from ..landmarks import Landmarks
from ..volume import Volume, resample


@dataclass
class RefineResult:
    """Refined labels on the HR grid and what produced them."""

    labels: Volume
    selected: list
    nmi: list
    timings: dict
    landmarks: Landmarks
    info: dict = field(default_factory=dict)


def hr_grid(target: Volume, *, spacing=HR_SPACING, z_margin_mm: float = 20.0,
            margin_mm: float | None = None) -> tuple[np.ndarray, tuple]:
    """NIfTI affine and ``(z, y, x)`` shape of a grid with ``spacing`` mm covering ``target``'s
    voxels (the same orientation), extended by ``z_margin_mm`` beyond the first and last slice
    so that the atlases can complete a heart whose base or apex the stack missed. With
    ``margin_mm``, in-plane it covers only the target's foreground (labels > 0) plus that margin:
    the heart, not the whole field of view (a tenth of the voxels on an ACDC stack)."""
    sz, sy, sx = (float(v) for v in spacing)
    tz, ty, tx = target.spacing
    k = np.array([sx / tx, sy / ty, sz / tz])  # HR voxel in target voxels, (x, y, z)
    n_xyz = np.array(target.spatial_shape[::-1], float)
    lo = np.array([-0.5, -0.5, -0.5 - z_margin_mm / tz])  # voxel edges, in target voxels (x, y, z)
    hi = np.array([n_xyz[0] - 0.5, n_xyz[1] - 0.5, n_xyz[2] - 0.5 + z_margin_mm / tz])
    if margin_mm is not None:
        fg = np.argwhere(np.asarray(target.array) > 0)[:, ::-1]  # (x, y, z)
        if fg.size:
            extra = np.array([margin_mm / tx, margin_mm / ty])
            lo[:2] = fg[:, :2].min(axis=0) - 0.5 - extra
            hi[:2] = fg[:, :2].max(axis=0) + 0.5 + extra
    shape_xyz = np.ceil((hi - lo) / k - 1e-6).astype(int)
    m = np.diag([*k, 1.0])
    m[:3, 3] = lo + 0.5 * k  # HR voxel 0 starts at the (extended) edge
    return target.affine @ m, tuple(int(v) for v in shape_xyz[::-1])


def _heart_crop(labels: Volume, margin_mm: float | None) -> Volume:
    """``labels`` cropped in-plane to its foreground plus ``margin_mm`` (all slices kept)."""
    if margin_mm is None:
        return labels
    arr = np.asarray(labels.array)
    fg = np.argwhere(arr > 0)
    if fg.size == 0:
        return labels
    _, sy, sx = labels.spacing
    pad = np.array([0, int(np.ceil(margin_mm / sy)), int(np.ceil(margin_mm / sx))])
    lo = np.maximum(fg.min(axis=0) - pad, 0)
    hi = np.minimum(fg.max(axis=0) + pad + 1, arr.shape)
    lo[0], hi[0] = 0, arr.shape[0]
    shift = np.eye(4)
    shift[:3, 3] = lo[::-1]  # (x, y, z) index of the crop's first voxel
    return Volume(arr[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]], affine=labels.affine @ shift, kind="labels")


def _check_overlap(labels: Volume, atlases, affines) -> None:
    """One clear error when no atlas, aligned by its affine, reaches the target's labelled slices."""
    fg = np.argwhere(np.asarray(labels.array) > 0)
    z_lo, z_hi = fg[:, 0].min() - 0.5, fg[:, 0].max() + 0.5
    for atlas, m in zip(atlases, affines):
        box = np.argwhere(np.asarray(atlas.labels.array) > 0)
        lo, hi = box.min(axis=0), box.max(axis=0)
        corners = np.array([[z, y, x] for z in (lo[0], hi[0]) for y in (lo[1], hi[1]) for x in (lo[2], hi[2])], float)
        world = atlas.labels.index_to_world(corners)
        world = world @ np.asarray(m)[:3, :3].T + np.asarray(m)[:3, 3]
        z = labels.world_to_index(world)[:, 0]
        if z.max() >= z_lo and z.min() <= z_hi:
            return
    raise InputError("no atlas reaches the target's labelled slices after the landmark alignment: check the landmarks "
                     "(apex and mitral valve) and that the stack covers the heart")


def _check_inputs(labels: Volume, landmarks: Landmarks, atlases, image: Volume | None) -> None:
    if labels.kind != "labels" or labels.is_cine:
        raise InputError("refine needs a 3D label map of the target")
    if not np.any(labels.array == LV):
        raise InputError("the target labels have no LV cavity (label 1); there is nothing to refine")
    if image is not None and (image.spatial_shape != labels.spatial_shape or not np.allclose(image.affine, labels.affine, atol=1e-3)):
        raise InputError("the image and the labels are on different grids; give the segmentation of this image")
    if not atlases:
        raise InputError("the atlas set is empty")
    held = np.flatnonzero(np.any(labels.array > 0, axis=(1, 2)))
    gaps = sorted(set(range(int(held[0]), int(held[-1]) + 1)) - set(held.tolist()))
    if gaps:
        raise InputError(f"the target labels are empty on slice(s) {', '.join(map(str, gaps))} between labelled slices; "
                         "refinement needs every slice of the heart labelled (segment them, or crop the stack)")
    shared = set(np.unique(labels.array).tolist()) - {0}
    if not any(shared & set(np.unique(a.labels.array).tolist()) for a in atlases):
        raise InputError("the atlases share no structure with the target labels")
    # landmarks must lie within (a margin around) the image
    idx = labels.world_to_index(landmarks.positions[landmarks.valid])
    margin = 20.0 / np.asarray(labels.spacing)
    outside = np.any((idx < -margin) | (idx > np.asarray(labels.spatial_shape) - 1 + margin), axis=1)
    if outside.any():
        name = np.asarray(LANDMARK_NAMES)[landmarks.valid][outside][0]
        raise InputError(f"landmark {name} lies outside the image (more than 20 mm beyond its edge)")


def refine(labels: Volume, landmarks: Landmarks, atlases, *, n_atlases: int = 5, fusion: str = "majority",
           init: str = "landmarks", image: Volume | None = None, bending: float = 1e-3, levels=None,
           margin_mm: float | None = 20.0, rv_wall: bool | None = None, device: str = "cpu",
           progress=None) -> RefineResult:
    """Refine a segmentation by atlas propagation (see the module docstring).

    Parameters
    ----------
    labels : target segmentation (canonical labels; e.g. SSLLN-LR output on the LR grid).
    landmarks : the target's six landmarks (world mm; the user's corrections included). NaN
        landmarks are dropped; at least 4 are needed.
    atlases : sequence of :class:`~napari_cardiac_priors.registry.atlases.Atlas`.
    n_atlases : how many atlases to keep after NMI ranking (L).
    fusion : "majority" (default: the better of the two on label-only targets, see BENCHMARKS.md)
        or "patch" (eq. 5, patch similarity on the target's upsampled labels).
    init : "landmarks" (the paper) or "labels" (label-moment affine, the Fig. 12 baseline).
    image : the target image, only to check that it matches the labels' grid.
    margin_mm : the HR grid and the atlas selection cover the target's heart plus this margin
        in-plane (None: its whole field of view; slower, the same labels).
    rv_wall : keep the atlases' RV wall (label 4). Default: when the target has one.
    progress : ``progress(step, fraction)`` callback, or None.

    Returns
    -------
    RefineResult with ``labels`` on the HR grid (1.25 x 1.25 x 2 mm), the selected atlases,
    their NMI, per-step timings (s) and the landmarks used.
    """
    from .affine import label_affine, landmark_affine
    from .ffd import DEFAULT_LEVELS, register_ffd
    from .fusion import majority_vote, patch_fusion
    from .select import select_atlases
    from .warp import warp_stack

    if fusion not in ("patch", "majority"):
        raise InputError(f"fusion must be 'patch' or 'majority', got {fusion!r}")
    if init not in ("landmarks", "labels"):
        raise InputError(f"init must be 'landmarks' or 'labels', got {init!r}")
    atlases = list(atlases)
    _check_inputs(labels, landmarks, atlases, image)
    report = progress or (lambda step, fraction: None)
    timings = {}
    t = time.perf_counter()

    report("affine", 0.0)
    if init == "landmarks":
        affines = [landmark_affine(a.landmarks, landmarks) for a in atlases]
    else:
        affines = [label_affine(a.labels, labels) for a in atlases]
    _check_overlap(labels, atlases, affines)
    timings["affine"] = time.perf_counter() - t

    t = time.perf_counter()
    report("selection", 0.1)
    top = max(1, min(int(n_atlases), len(atlases)))
    chosen, scores = select_atlases(_heart_crop(labels, margin_mm), [a.labels for a in atlases], affines, top=top,
                                    device=device)
    chosen = [int(i) for i in chosen]
    timings["selection"] = time.perf_counter() - t

    t = time.perf_counter()
    report("registration", 0.2)
    n_levels = len(levels or DEFAULT_LEVELS)
    ffd = register_ffd(
        labels, [atlases[i].labels for i in chosen], [affines[i] for i in chosen], bending=bending,
        levels=levels or DEFAULT_LEVELS, device=device,
        callback=lambda level, it, loss: report("registration", 0.2 + 0.6 * (level + 1) / (n_levels + 1)),
    )
    timings["registration"] = time.perf_counter() - t

    t = time.perf_counter()
    report("warping", 0.8)
    hr_affine, hr_shape = hr_grid(labels, margin_mm=margin_mm)
    reference = Volume(np.zeros(hr_shape, np.uint8), affine=hr_affine, kind="labels")
    to_target = np.linalg.inv(labels.affine) @ hr_affine  # HR index (x, y, z) -> target index
    start = to_target[:3, 3][::-1]
    step = np.diag(to_target[:3, :3])[::-1]
    warped = warp_stack(
        [atlases[i].labels for i in chosen], reference, affines=[affines[i] for i in chosen], mode="linear",
        device=device, displacement=lambda n: ffd.displacement(n, start=start, shape=hr_shape, step=step, device=device),
    )
    timings["warping"] = time.perf_counter() - t

    if rv_wall is None:
        rv_wall = bool(np.any(labels.array == RVW))
    if not rv_wall:  # a structure the target does not have is not added (ACDC-style labels have no RV wall)
        warped = np.where(warped == RVW, 0, warped).astype(warped.dtype)
    t = time.perf_counter()
    report("fusion", 0.9)
    if fusion == "majority":
        fused = majority_vote(warped)
    else:
        upsampled = resample(labels, reference).array
        fused = patch_fusion(upsampled, warped, device=device)
    timings["fusion"] = time.perf_counter() - t
    timings["total"] = float(sum(timings.values()))
    report("done", 1.0)
    out = Volume(np.asarray(fused, dtype=np.uint8), affine=hr_affine, kind="labels", metadata={"refined": True})
    return RefineResult(
        labels=out,
        selected=[atlases[i].id for i in chosen],
        nmi=[float(s) for s in scores],
        timings=timings,
        landmarks=landmarks,
        info={"n_atlases": top, "fusion": fusion, "init": init, "bending": bending, "hr_shape": list(hr_shape),
              "rv_wall": rv_wall},
    )
