"""Atlas selection: normalised mutual information between label maps (SSLLN Section II-C)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import InputError
from ..volume import Volume


def _entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-np.sum(p * np.log(p)))


def nmi(a_labels, b_labels, n_labels: int | None = None) -> float:
    """Normalised mutual information ``(H(A) + H(B)) / H(A, B)`` of two label maps.

    The joint histogram has one bin per label value (``n_labels`` bins per map, default the
    largest value + 1), over all voxels of the two maps (same shape, any dimensionality,
    non-negative integers). Natural logarithms; NMI is in ``[1, 2]``, 2 when each map
    determines the other (e.g. a map with itself), 1 when they are independent. Two constant
    maps (zero joint entropy) give 2.
    """
    a = np.asarray(a_labels)
    b = np.asarray(b_labels)
    if a.shape != b.shape:
        raise InputError(f"label maps must have the same shape, got {a.shape} and {b.shape}")
    if a.size == 0:
        raise InputError("label maps are empty")
    a = a.astype(np.int64).ravel()
    b = b.astype(np.int64).ravel()
    if a.min() < 0 or b.min() < 0:
        raise InputError("label maps must hold non-negative integer labels")
    n = int(max(a.max(), b.max())) + 1 if n_labels is None else int(n_labels)
    if max(a.max(), b.max()) >= n:
        raise InputError(f"a label value exceeds n_labels - 1 = {n - 1}")
    joint = np.bincount(a * n + b, minlength=n * n).reshape(n, n) / a.size
    h_ab = _entropy(joint.ravel())
    if h_ab <= 0:
        return 2.0
    return (_entropy(joint.sum(axis=1)) + _entropy(joint.sum(axis=0))) / h_ab


def select_atlases(target_labels: Volume, atlas_labels: Sequence[Volume], affines, *, top: int = 5,
                   n_labels: int | None = None, device="cpu") -> tuple[np.ndarray, np.ndarray]:
    """Rank atlases by NMI with the target after warping them affinely into its grid.

    Parameters
    ----------
    target_labels : Volume, 3D labels (the target segmentation, e.g. the LR segmentation
        resampled to the HR grid).
    atlas_labels : sequence of labels Volumes, each on its own grid.
    affines : sequence of (4, 4), atlas world -> target world (e.g. :func:`landmark_affine`).
    top : number of atlases to keep (L); all of them when there are fewer.

    Returns
    -------
    indices : (L,) int, into ``atlas_labels``, best first.
    scores : (L,) float, their NMI with the target (nearest-neighbour warp, one histogram bin
        per label value over the whole target grid).

    The atlases are sampled at the target's voxels directly (no atlas is copied or converted:
    ranking ~160 atlases costs about a second).
    """
    from .warp import check_labels

    check_labels(target_labels, "target_labels")
    if len(atlas_labels) == 0:
        raise InputError("no atlases given")
    for i, a in enumerate(atlas_labels):
        check_labels(a, f"atlas_labels[{i}]")
    if len(affines) != len(atlas_labels):
        raise InputError(f"got {len(affines)} affines for {len(atlas_labels)} atlases")
    if int(top) < 1:
        raise InputError(f"top must be at least 1, got {top}")
    target = np.asarray(target_labels.array)
    if n_labels is None:
        n_labels = int(max([target.max()] + [np.asarray(v.array).max() for v in atlas_labels])) + 1
    scores = np.empty(len(atlas_labels))
    zyx = np.indices(target.shape).reshape(3, -1).T
    world = target_labels.index_to_world(zyx)  # every target voxel, world RAS mm
    for n, (atlas, m) in enumerate(zip(atlas_labels, affines)):
        scores[n] = nmi(target.ravel(), _nearest_labels(atlas, world, m), n_labels)
    order = np.argsort(-scores, kind="stable")[: int(top)]
    return order, scores[order]


def _nearest_labels(atlas: Volume, world: np.ndarray, affine) -> np.ndarray:
    """The labels of ``atlas`` (nearest voxel, 0 outside) at target points ``world`` ``(N, 3)``
    RAS mm, the atlas placed by ``affine`` (atlas world -> target world)."""
    from scipy import ndimage

    inv = np.linalg.inv(np.asarray(affine, dtype=np.float64))
    idx = atlas.world_to_index(world @ inv[:3, :3].T + inv[:3, 3])
    return ndimage.map_coordinates(np.asarray(atlas.array), idx.T, order=0, mode="constant", cval=0)
