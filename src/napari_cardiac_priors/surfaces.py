"""Smooth surface meshes of a label map: LV endocardium, LV epicardium and RV.

Each structure's binary mask is smoothed with a Gaussian (``sigma_mm``) and its 0.5
iso-surface extracted by marching cubes (scikit-image); vertices are world RAS mm (the
label map's affine), faces index them with outward normals. Meshes go to .vtk, .stl and
.ply files through meshio (:func:`~napari_cardiac_priors.io.write_mesh`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .conventions import LV, MYO, RV
from .volume import Volume

#: the surfaces of a bi-ventricular label map: name -> (labels inside, colour label)
SURFACES = {
    "lv_endocardium": ((LV,), LV),
    "lv_epicardium": ((LV, MYO), MYO),
    "rv": ((RV,), RV),
}


@dataclass
class Mesh:
    """A triangle mesh: ``vertices`` ``(n, 3)`` world RAS mm, ``faces`` ``(m, 3)`` int."""

    name: str
    vertices: np.ndarray
    faces: np.ndarray
    label: int

    @property
    def area_mm2(self) -> float:
        a, b, c = (self.vertices[self.faces[:, i]] for i in range(3))
        return float(0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1).sum())

    @property
    def volume_ml(self) -> float:
        """Enclosed volume (divergence theorem; positive for outward faces), mL."""
        a, b, c = (self.vertices[self.faces[:, i]] for i in range(3))
        return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0 / 1000.0)


def label_surfaces(labels: Volume, *, sigma_mm: float = 1.5, structures=None) -> list[Mesh]:
    """The smooth surfaces of ``labels`` (a 3D labels Volume), one :class:`Mesh` per structure
    of :data:`SURFACES` it holds (``structures``: a subset of their names)."""
    from scipy import ndimage
    from skimage.measure import marching_cubes

    from .errors import InputError

    if labels.kind != "labels" or labels.is_cine:
        raise InputError("surfaces are made from a 3D label map")
    arr = np.asarray(labels.array)
    spacing = np.asarray(labels.spacing, float)
    out = []
    for name, (values, colour) in SURFACES.items():
        if structures is not None and name not in structures:
            continue
        mask = np.isin(arr, values)
        if not mask.any():
            continue
        pad = int(np.ceil(3 * sigma_mm / spacing.min())) + 2
        box = [slice(max(int(i.min()) - pad, 0), int(i.max()) + pad + 1) for i in np.nonzero(mask)]
        start = np.array([s.start for s in box], float)
        field = ndimage.gaussian_filter(np.pad(mask[tuple(box)].astype(np.float32), 1), sigma_mm / spacing)
        if field.max() <= 0.5:
            continue
        verts, faces, _, _ = marching_cubes(field, level=0.5)
        world = labels.index_to_world(verts - 1.0 + start)  # (z, y, x) voxel indices -> world RAS mm
        mesh = Mesh(name, world, np.ascontiguousarray(faces, dtype=np.int64), colour)
        if mesh.volume_ml < 0:  # the affine may mirror the voxel axes: faces outward in world space
            mesh.faces = np.ascontiguousarray(mesh.faces[:, ::-1])
        out.append(mesh)
    return out
