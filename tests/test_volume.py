import numpy as np
import pytest

from napari_cardiac_priors.volume import Volume, affine_from_layer_geometry, affine_from_spacing, resample


def test_spacing_from_affine_and_back(oblique_affine):
    v = Volume(np.zeros((3, 4, 5)), affine=oblique_affine)
    assert v.spacing == pytest.approx((8.0, 1.5, 1.25), abs=1e-5)
    v2 = Volume(np.zeros((3, 4, 5)), spacing=(2.0, 1.25, 1.25))
    np.testing.assert_allclose(v2.affine, np.diag([1.25, 1.25, 2.0, 1.0]))


@pytest.mark.parametrize("spacing", [(0, 1, 1), (1, -1, 1), (1, 1, np.nan), (1, 1)])
def test_bad_spacing_is_refused(spacing):
    with pytest.raises(ValueError, match="spacing"):
        Volume(np.zeros((2, 3, 4)), spacing=spacing)


@pytest.mark.parametrize("shape", [(4, 5), (1, 2, 3, 4, 5)])
def test_bad_ndim_is_refused(shape):
    with pytest.raises(ValueError, match="3D .* or 4D"):
        Volume(np.zeros(shape), spacing=(1, 1, 1))


def test_spacing_must_agree_with_affine(oblique_affine):
    with pytest.raises(ValueError, match="disagrees"):
        Volume(np.zeros((2, 3, 4)), spacing=(1, 1, 1), affine=oblique_affine)


def test_index_world_round_trip(oblique_affine):
    v = Volume(np.zeros((7, 20, 24)), affine=oblique_affine)
    idx = np.array([[0, 0, 0], [6, 19, 23], [3.5, 2.25, 10]])
    w = v.index_to_world(idx)
    np.testing.assert_allclose(w[0], oblique_affine[:3, 3])
    # index (z, y, x) = (0, 0, 1) moves along the affine's first column
    np.testing.assert_allclose(v.index_to_world([0, 0, 1]) - w[0], oblique_affine[:3, 0])
    np.testing.assert_allclose(v.world_to_index(w), idx, atol=1e-9)


def test_one_slice_keeps_its_place_in_world_space(oblique_affine):
    arr = np.arange(7 * 4 * 5, dtype=float).reshape(7, 4, 5)
    v = Volume(arr, affine=oblique_affine, kind="labels")
    s = v.slice(3)
    np.testing.assert_array_equal(s.array, arr[3:4])
    assert s.kind == "labels" and s.spacing == pytest.approx(v.spacing)
    np.testing.assert_allclose(s.index_to_world([0, 2, 1]), v.index_to_world([3, 2, 1]))
    with pytest.raises(IndexError, match="out of range"):
        v.slice(7)
    with pytest.raises(ValueError, match="frame"):
        Volume(np.zeros((2, 3, 4, 5)), spacing=(1, 1, 1)).slice(0)


def test_layer_geometry_round_trip(oblique_affine):
    v = Volume(np.zeros((7, 20, 24)), affine=oblique_affine)
    g = v.layer_geometry()
    assert g["scale"] == pytest.approx(v.spacing)
    # napari world = affine @ diag(scale) @ index, in (S, A, R) order = reversed RAS
    idx = np.array([3.0, 5.0, 7.0])
    napari_world = g["affine"][:3, :3] @ (np.asarray(g["scale"]) * idx) + g["affine"][:3, 3]
    np.testing.assert_allclose(napari_world[::-1], v.index_to_world(idx))
    np.testing.assert_allclose(affine_from_layer_geometry(g["scale"], g["affine"]), oblique_affine, atol=1e-12)


def test_cine_frames_and_4d_geometry():
    arr = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)
    v = Volume(arr, spacing=(10, 1.5, 1.5))
    assert v.is_cine and v.spatial_shape == (3, 4, 5)
    np.testing.assert_array_equal(v.frame(1).array, arr[1])
    assert v.frame(-1).metadata["frame"] == 1
    with pytest.raises(IndexError):
        v.frame(2)
    g = v.layer_geometry()
    assert g["scale"] == (1.0, 10.0, 1.5, 1.5) and g["affine"].shape == (5, 5)


def test_resample_labels_nearest_and_identity():
    lab = np.zeros((4, 6, 6), np.uint8)
    lab[1:3, 2:4, 2:4] = 3
    v = Volume(lab, spacing=(2, 1, 1), kind="labels")
    same = resample(v, v)
    np.testing.assert_array_equal(same.array, lab)
    fine = resample(v, affine=affine_from_spacing((1, 1, 1)), shape=(8, 6, 6))
    assert fine.array.dtype == np.uint8 and set(np.unique(fine.array)) == {0, 3}
    # the fine grid's z = 2..5 mm lies inside the coarse block at z index 1..2 (2..4 mm)
    assert fine.array[3, 2, 2] == 3 and fine.array[0, 2, 2] == 0


def test_resample_shifted_image_linear():
    img = np.zeros((3, 5, 5), np.float32)
    img[:, :, 2] = 1.0
    v = Volume(img, spacing=(1, 1, 1))
    shifted = affine_from_spacing((1, 1, 1), origin=(0.5, 0, 0))  # half a voxel along x
    out = resample(v, affine=shifted, shape=(3, 5, 5))
    np.testing.assert_allclose(out.array[1, 2, 1:3], [0.5, 0.5])
