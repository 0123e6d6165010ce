"""napari writers: Labels layers as NIfTI/.mha/.nrrd with their geometry, Points as landmark files,
Surfaces as .vtk/.stl/.ply meshes (world RAS mm).

Writers receive the layer data and its attributes (``scale``, ``translate``, ``affine``,
``features``...). Files are written atomically: a failure leaves no partial file and does
not touch an existing one.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError


def _notify(message: str) -> list:
    from napari.utils.notifications import show_error

    show_error(message)
    return []


def write_labels(path: str, data, attributes: dict) -> list[str]:
    """Write a Labels layer (canonical labels) with the geometry of its layer."""
    from ..io import write_volume
    from .layers import layer_volume

    try:
        volume = layer_volume(
            data, scale=attributes.get("scale"), affine=attributes.get("affine"),
            translate=attributes.get("translate"), kind="labels",
        )
        if volume.is_cine:
            raise InputError("a cine (4D) labels layer cannot be written; write one frame")
        return [str(write_volume(volume, path))]
    except (InputError, ValueError) as e:
        return _notify(f"{path}: {e}" if str(path) not in str(e) else str(e))


def write_points(path: str, data, attributes: dict) -> list[str]:
    """Write a Points layer of landmarks as JSON, CSV or legacy VTK (world RAS mm)."""
    from ..io import write_landmarks
    from .layers import points_to_landmarks

    try:
        lm = points_to_landmarks(
            np.asarray(data), features=attributes.get("features"), scale=attributes.get("scale"),
            affine=attributes.get("affine"), translate=attributes.get("translate"),
        )
        return [str(write_landmarks(lm, path))]
    except (InputError, ValueError) as e:
        return _notify(f"cannot write landmarks to {path}: {e}")


def write_surface(path: str, data, attributes: dict) -> list[str]:
    """Write a Surface layer (vertices in napari world ``(S, A, R)`` mm) as a .vtk, .stl or .ply
    mesh in world RAS mm."""
    from ..io import write_mesh

    try:
        vertices, faces = np.asarray(data[0], float), np.asarray(data[1])
        if vertices.ndim != 2 or vertices.shape[1] != 3:
            raise InputError("only 3D surfaces can be written")
        return [str(write_mesh(vertices[:, ::-1], faces, path))]
    except (InputError, ValueError) as e:
        return _notify(f"cannot write the surface to {path}: {e}")
