"""Smooth surfaces of label maps and mesh files (.vtk, .stl, .ply)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cardiac_priors.errors import InputError
from napari_cardiac_priors.io import read_mesh, write_mesh
from napari_cardiac_priors.surfaces import label_surfaces
from napari_cardiac_priors.volume import Volume, affine_from_spacing

SPACING = (2.0, 1.25, 1.25)


def _nested_spheres(affine=None):
    z, y, x = np.mgrid[:40, :60, :60]
    r = np.sqrt(((z - 20) * SPACING[0]) ** 2 + ((y - 30) * SPACING[1]) ** 2 + ((x - 30) * SPACING[2]) ** 2)
    lab = np.zeros(r.shape, np.uint8)
    lab[r <= 25] = 2
    lab[r <= 18] = 1
    return Volume(lab, affine=affine if affine is not None else affine_from_spacing(SPACING), kind="labels")


@pytest.mark.parametrize("mirrored", [False, True])
def test_surfaces_of_nested_spheres_enclose_their_volumes_in_world_space(mirrored):
    affine = np.diag([-1.25, 1.25, 2.0, 1.0]) if mirrored else affine_from_spacing(SPACING)
    vol = _nested_spheres(affine)
    meshes = {m.name: m for m in label_surfaces(vol)}
    assert set(meshes) == {"lv_endocardium", "lv_epicardium"}  # no RV in the map: no RV surface
    centre = vol.index_to_world([[20, 30, 30]])[0]
    for name, r in (("lv_endocardium", 18.0), ("lv_epicardium", 25.0)):
        m = meshes[name]
        assert m.volume_ml == pytest.approx(4 / 3 * np.pi * r**3 / 1000, rel=0.06)  # outward faces, mL
        dist = np.linalg.norm(m.vertices - centre, axis=1)
        assert abs(np.median(dist) - r) < 1.0  # world RAS mm, centred where the labels are


@pytest.mark.parametrize("suffix", [".vtk", ".stl", ".ply"])
def test_mesh_files_round_trip(tmp_path, suffix):
    m = label_surfaces(_nested_spheres())[0]
    path = write_mesh(m.vertices, m.faces, tmp_path / f"lv{suffix}")
    v, f = read_mesh(path)
    assert f.shape == m.faces.shape
    np.testing.assert_allclose(v[f], m.vertices[m.faces], atol=1e-3)  # the same triangles (STL re-indexes)


def test_mesh_bad_inputs(tmp_path):
    m = label_surfaces(_nested_spheres())[0]
    with pytest.raises(InputError, match="as .vtk, .stl, .ply"):
        write_mesh(m.vertices, m.faces, tmp_path / "lv.obj")
    bad = tmp_path / "bad.ply"
    bad.write_bytes(b"not a mesh")
    with pytest.raises(InputError, match="bad.ply: not a readable ply mesh"):
        read_mesh(bad)
    with pytest.raises(InputError, match="3D label map"):
        label_surfaces(Volume(np.zeros((4, 8, 8), np.float32), affine=affine_from_spacing(SPACING)))
    assert not list(tmp_path.glob("lv*"))
