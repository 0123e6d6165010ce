"""Surface meshes as files: legacy VTK (.vtk), STL (.stl) and PLY (.ply), through meshio.

Vertices are world RAS millimetres; files are written atomically (a failure leaves no partial
file and does not touch an existing one).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from ._atomic import atomic_path, full_suffix

#: suffix -> meshio format name
MESH_FORMATS = {".vtk": "vtk", ".stl": "stl", ".ply": "ply"}


def _format(path: Path) -> str:
    suffix = full_suffix(path).lower()
    if suffix not in MESH_FORMATS:
        raise InputError(f"{path.name}: a mesh is written as {', '.join(MESH_FORMATS)}, not {suffix or 'no suffix'}")
    return MESH_FORMATS[suffix]


def write_mesh(vertices, faces, path: str | os.PathLike) -> Path:
    """Write a triangle mesh (``vertices`` ``(n, 3)`` mm, ``faces`` ``(m, 3)`` int) to ``path``."""
    import meshio

    path = Path(path)
    fmt = _format(path)
    vertices = np.asarray(vertices, np.float64)
    faces = np.asarray(faces, np.int64)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3:
        raise InputError(f"{path.name}: a mesh needs (n, 3) vertices and (m, 3) triangles")
    mesh = meshio.Mesh(vertices, [("triangle", faces)])
    with atomic_path(path) as tmp:
        meshio.write(tmp, mesh, file_format=fmt, **({"binary": True} if fmt in ("stl", "ply") else {}))
    return path


def read_mesh(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``(vertices (n, 3), faces (m, 3))`` of a triangle mesh file (.vtk, .stl, .ply)."""
    import meshio

    path = Path(path)
    fmt = _format(path)
    import contextlib
    import io

    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            mesh = meshio.read(path, file_format=fmt)  # (it prints, and may exit, on a broken file)
    except (Exception, SystemExit) as e:  # noqa: BLE001 - meshio raises many types (and exits) on a broken file
        raise InputError(f"{path.name}: not a readable {fmt} mesh ({type(e).__name__})") from e
    triangles = [c.data for c in mesh.cells if c.type == "triangle"]
    if not triangles:
        raise InputError(f"{path.name}: holds no triangles")
    return np.asarray(mesh.points, np.float64), np.concatenate(triangles).astype(np.int64)
