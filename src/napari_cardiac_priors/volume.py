"""`Volume`: an array with its voxel spacing, world affine and kind; resampling between grids.

Array axes are ``(z, y, x)`` (3D) or ``(t, z, y, x)`` (cine). ``spacing`` is ``(sz, sy, sx)``
in mm. ``affine`` is the 4x4 NIfTI affine as nibabel reads it: it maps voxel indices
``(i, j, k) = (x, y, z)`` to RAS+ world millimetres. Use :meth:`Volume.index_to_world` and
:meth:`Volume.world_to_index` for points given in array order ``(z, y, x)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

Kind = Literal["image", "labels"]

#: Reverses (x, y, z) <-> (z, y, x) in homogeneous coordinates.
_FLIP = np.eye(4)[[2, 1, 0, 3]]


def _as_affine(affine, *, name: str = "affine") -> np.ndarray:
    try:
        a = np.asarray(affine, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be a 4x4 numeric matrix") from e
    if a.shape != (4, 4):
        raise ValueError(f"{name} must be 4x4, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} holds NaN or Inf")
    if abs(np.linalg.det(a[:3, :3])) < 1e-12:
        raise ValueError(f"{name} is singular (a zero or degenerate voxel axis)")
    return a


def _as_spacing(spacing, *, name: str = "spacing") -> tuple[float, float, float]:
    try:
        s = tuple(float(v) for v in spacing)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be three numbers (sz, sy, sx) in mm, got {spacing!r}") from e
    if len(s) != 3:
        raise ValueError(f"{name} must be three numbers (sz, sy, sx) in mm, got {len(s)}")
    if not all(np.isfinite(v) and v > 0 for v in s):
        raise ValueError(f"{name} must be positive and finite, got {s}")
    return s


def affine_from_spacing(spacing, origin=(0.0, 0.0, 0.0)) -> np.ndarray:
    """NIfTI affine of an axis-aligned grid.

    ``spacing`` is ``(sz, sy, sx)`` mm; ``origin`` is the world position ``(x, y, z)`` mm of
    voxel ``(0, 0, 0)``.
    """
    sz, sy, sx = _as_spacing(spacing)
    a = np.diag([sx, sy, sz, 1.0])
    a[:3, 3] = np.asarray(origin, dtype=np.float64)
    return a


def spacing_from_affine(affine) -> tuple[float, float, float]:
    """Voxel spacing ``(sz, sy, sx)`` mm: the lengths of the affine's columns."""
    a = _as_affine(affine)
    sx, sy, sz = np.linalg.norm(a[:3, :3], axis=0)
    return (float(sz), float(sy), float(sx))


@dataclass(frozen=True, eq=False)
class Volume:
    """An array with its geometry.

    Parameters
    ----------
    array : ndarray, shape (z, y, x) or (t, z, y, x)
    spacing : (sz, sy, sx) mm, optional
        Derived from ``affine`` when omitted; when both are given they must agree.
    affine : (4, 4) ndarray, optional
        NIfTI voxel ``(x, y, z)`` -> RAS+ world mm. Defaults to an axis-aligned grid with
        ``spacing`` and its origin at the world origin.
    kind : {"image", "labels"}
        Labels are resampled with nearest neighbour and hold canonical label values.
    metadata : dict
        Free-form provenance (source path, time step, frame numbers, ...).
    """

    array: np.ndarray
    spacing: tuple[float, float, float] | None = None
    affine: np.ndarray | None = None
    kind: Kind = "image"
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        array = np.asarray(self.array)
        if array.ndim not in (3, 4):
            raise ValueError(
                f"array must be 3D (z, y, x) or 4D (t, z, y, x), got {array.ndim}D with shape {array.shape}"
            )
        if min(array.shape) < 1:
            raise ValueError(f"array is empty (shape {array.shape})")
        if self.kind not in ("image", "labels"):
            raise ValueError(f"kind must be 'image' or 'labels', got {self.kind!r}")
        if self.spacing is None and self.affine is None:
            raise ValueError("give spacing, affine or both")
        if self.affine is None:
            spacing = _as_spacing(self.spacing)
            affine = affine_from_spacing(spacing)
        else:
            affine = _as_affine(self.affine)
            spacing = spacing_from_affine(affine)
            if self.spacing is not None:
                given = _as_spacing(self.spacing)
                if not np.allclose(given, spacing, rtol=1e-4, atol=1e-6):
                    raise ValueError(f"spacing {given} disagrees with the affine's voxel size {spacing}")
        object.__setattr__(self, "array", array)
        object.__setattr__(self, "spacing", spacing)
        object.__setattr__(self, "affine", affine)

    # -- shape --------------------------------------------------------------------------
    @property
    def is_cine(self) -> bool:
        """True for a ``(t, z, y, x)`` stack."""
        return self.array.ndim == 4

    @property
    def shape(self) -> tuple[int, ...]:
        return self.array.shape

    @property
    def spatial_shape(self) -> tuple[int, int, int]:
        """``(z, y, x)`` size of one frame."""
        return tuple(self.array.shape[-3:])

    def frame(self, t: int) -> "Volume":
        """Frame ``t`` of a cine stack as a 3D volume (a 3D volume returns itself for t=0)."""
        if not self.is_cine:
            if t != 0:
                raise IndexError(f"a 3D volume has only frame 0, asked for {t}")
            return self
        n = self.array.shape[0]
        if not -n <= t < n:
            raise IndexError(f"frame {t} out of range for a cine stack of {n} frames")
        return replace(self, array=self.array[t], metadata={**self.metadata, "frame": int(t) % n})

    def slice(self, k: int) -> "Volume":
        """Slice ``k`` (z index of a 3D volume) as a 1-slice Volume, in place in world space."""
        if self.is_cine:
            raise ValueError("pick a frame of the cine stack first")
        n = self.spatial_shape[0]
        if not 0 <= k < n:
            raise IndexError(f"slice {k} out of range for a stack of {n} slices")
        shift = np.eye(4)
        shift[2, 3] = k  # the affine maps (x, y, z) indices
        return replace(self, array=self.array[k : k + 1], affine=self.affine @ shift)

    def with_array(self, array: np.ndarray, *, kind: Kind | None = None) -> "Volume":
        """Same geometry, new array (same spatial shape)."""
        array = np.asarray(array)
        if array.shape[-3:] != self.spatial_shape:
            raise ValueError(f"array shape {array.shape} does not match the grid {self.spatial_shape}")
        return replace(self, array=array, kind=kind or self.kind)

    # -- geometry -----------------------------------------------------------------------
    @property
    def direction(self) -> np.ndarray:
        """(3, 3) unit direction cosines of the voxel axes (columns in x, y, z order)."""
        sz, sy, sx = self.spacing
        return self.affine[:3, :3] / np.array([sx, sy, sz])

    @property
    def orientation(self) -> str:
        """Axis codes of the voxel axes ``(x, y, z)``, e.g. ``"RAS"`` or ``"LPS"``."""
        import nibabel as nib

        return "".join(nib.aff2axcodes(self.affine))

    def index_to_world(self, points) -> np.ndarray:
        """Array indices ``(..., 3)`` in ``(z, y, x)`` order -> world ``(..., 3)`` RAS mm."""
        p = np.asarray(points, dtype=np.float64)[..., ::-1]
        return p @ self.affine[:3, :3].T + self.affine[:3, 3]

    def world_to_index(self, points) -> np.ndarray:
        """World ``(..., 3)`` RAS mm -> fractional array indices ``(..., 3)`` ``(z, y, x)``."""
        p = np.asarray(points, dtype=np.float64)
        inv = np.linalg.inv(self.affine)
        return (p @ inv[:3, :3].T + inv[:3, 3])[..., ::-1]

    @property
    def zyx_affine(self) -> np.ndarray:
        """4x4 map from array indices ``(z, y, x)`` to world ``(z, y, x)`` (reversed RAS)."""
        return _FLIP @ self.affine @ _FLIP

    def layer_geometry(self) -> dict:
        """napari layer keywords: ``scale`` (the spacing) and ``affine`` (rotation + origin).

        napari's world axes are the reversed RAS axes ``(S, A, R)`` so that an axis-aligned
        stack shows as usual; layers of different grids of the same subject overlay.
        """
        direction = self.zyx_affine.copy()
        direction[:3, :3] = direction[:3, :3] / np.asarray(self.spacing)  # columns / (sz, sy, sx)
        ndim = self.array.ndim
        scale = tuple(self.spacing)
        if ndim == 4:
            full = np.eye(5)
            full[1:, 1:] = direction
            direction = full
            scale = (1.0, *scale)
        return {"scale": scale, "affine": direction}


def affine_from_layer_geometry(scale, affine=None, translate=None) -> np.ndarray:
    """Inverse of :meth:`Volume.layer_geometry` for the last three (spatial) axes.

    ``scale`` and ``translate`` are in layer axis order; ``affine`` is the layer's
    (D+1, D+1) matrix (identity when omitted). Returns the NIfTI affine.
    """
    scale = np.asarray(scale, dtype=np.float64)[-3:]
    a = np.eye(4) if affine is None else np.asarray(affine, dtype=np.float64)
    a = a[-4:, -4:] if a.shape[0] > 4 else a
    t = np.zeros(3) if translate is None else np.asarray(translate, dtype=np.float64)[-3:]
    data2phys = np.eye(4)
    data2phys[:3, :3] = np.diag(scale)
    data2phys[:3, 3] = t
    zyx = a @ data2phys
    return _FLIP @ zyx @ _FLIP


def resample(volume: Volume, reference: Volume | None = None, *, affine=None, shape=None, order=None, cval=0.0) -> Volume:
    """Resample a 3D ``volume`` onto another grid, in world space.

    Give either a ``reference`` volume (its grid is used) or ``affine`` + ``shape``
    ``(z, y, x)``. ``order`` defaults to 0 (nearest) for labels and 1 (linear) for images;
    points outside the source take ``cval``.
    """
    from scipy import ndimage

    if volume.is_cine:
        raise ValueError("resample takes a 3D volume; pick a frame of the cine stack first")
    if reference is not None:
        affine, shape = reference.affine, reference.spatial_shape
    if affine is None or shape is None:
        raise ValueError("give a reference volume or both affine and shape")
    affine = _as_affine(affine)
    shape = tuple(int(s) for s in shape)
    if order is None:
        order = 0 if volume.kind == "labels" else 1
    target = _FLIP @ affine @ _FLIP
    source = volume.zyx_affine
    m = np.linalg.inv(source) @ target
    data = volume.array
    if order > 0 and not np.issubdtype(data.dtype, np.floating):
        data = data.astype(np.float32)
    out = ndimage.affine_transform(
        data, m[:3, :3], offset=m[:3, 3], output_shape=shape, order=order, mode="constant", cval=cval,
        prefilter=order > 1,
    )
    if volume.kind == "labels":
        out = out.astype(volume.array.dtype)
    return Volume(out, affine=affine, kind=volume.kind, metadata=dict(volume.metadata))


def restored(volume: Volume, *, flip=(), swap_xy: bool = False) -> Volume:
    """The same world content stored in another voxel order: the array axes in ``flip``
    (``"z"``, ``"y"``, ``"x"``) reversed and, with ``swap_xy``, the in-plane axes swapped, the
    affine changed so that every voxel keeps its world position. Models must give the same
    answer on it (up to resampling); tests and benchmarks use it to check that."""
    a = volume.array
    m = np.eye(4)  # new voxel index (x', y', z') -> old voxel index (x, y, z)
    nz, ny, nx = volume.spatial_shape
    axis = {"z": (-3, 2, nz), "y": (-2, 1, ny), "x": (-1, 0, nx)}
    for name in flip:
        if name not in axis:
            raise ValueError(f"flip takes 'z', 'y' or 'x', got {name!r}")
        ax, col, n = axis[name]
        a = np.flip(a, axis=ax)
        f = np.eye(4)
        f[col, col], f[col, 3] = -1.0, n - 1
        m = m @ f
    if swap_xy:
        a = np.swapaxes(a, -1, -2)
        m = m @ np.eye(4)[[1, 0, 2, 3]]
    return replace(volume, array=np.ascontiguousarray(a), affine=volume.affine @ m, spacing=None)
