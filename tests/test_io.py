"""Geometry-exact reading and writing, and one clear error for each kind of bad input."""

import nibabel as nib
import numpy as np
import pytest

from napari_cardiac_priors.errors import InputError
from napari_cardiac_priors.io import is_labels_name, read_volume, write_volume


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz", ".mha", ".nrrd"])
def test_image_round_trip(tmp_path, image_volume, suffix):
    path = write_volume(image_volume, tmp_path / f"img{suffix}")
    back = read_volume(path)
    assert back.kind == "image"
    assert back.array.dtype == image_volume.array.dtype
    np.testing.assert_array_equal(back.array, image_volume.array)
    np.testing.assert_allclose(back.affine, image_volume.affine, atol=1e-5)


@pytest.mark.parametrize("suffix", [".nii.gz", ".mha", ".nrrd"])
def test_labels_round_trip(tmp_path, labels_volume, suffix):
    path = write_volume(labels_volume, tmp_path / f"case_seg{suffix}")
    back = read_volume(path)
    assert back.kind == "labels" and back.array.dtype == np.uint8
    np.testing.assert_array_equal(back.array, labels_volume.array)
    np.testing.assert_allclose(back.affine, labels_volume.affine, atol=1e-5)


def test_nifti_matches_nibabel_axes(tmp_path, oblique_affine):
    """Volume (z, y, x) is the transpose of nibabel's (x, y, z)."""
    data = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)  # x, y, z
    nib.save(nib.Nifti1Image(data, oblique_affine), tmp_path / "a.nii.gz")
    v = read_volume(tmp_path / "a.nii.gz")
    assert v.shape == (6, 5, 4)
    assert v.array[2, 3, 1] == data[1, 3, 2]
    np.testing.assert_allclose(v.index_to_world([2, 3, 1]), oblique_affine[:3, :3] @ [1, 3, 2] + oblique_affine[:3, 3])


def test_cine_xyzt_opens_as_tzyx(tmp_path):
    data = np.random.default_rng(1).integers(0, 500, (6, 5, 4, 3)).astype(np.int16)  # x, y, z, t
    img = nib.Nifti1Image(data, np.diag([1.5, 1.5, 10, 1]))
    img.header["pixdim"][4] = 0.03
    nib.save(img, tmp_path / "cine.nii.gz")
    v = read_volume(tmp_path / "cine.nii.gz")
    assert v.is_cine and v.shape == (3, 4, 5, 6)
    np.testing.assert_array_equal(v.array[2], data[..., 2].T)
    assert v.metadata["time_step"] == pytest.approx(0.03)
    out = write_volume(v, tmp_path / "cine_copy.nii.gz")
    np.testing.assert_array_equal(np.asanyarray(nib.load(out).dataobj), data)


def test_sform_voxel_size_disagreeing_with_pixdim_uses_pixdim(tmp_path):
    """ACDC files carry a unit sform beside the true pixdim; ITK and this reader use pixdim."""
    img = nib.Nifti1Image(np.zeros((8, 8, 4), np.int16), np.diag([-1.0, -1.0, 1.0, 1.0]))
    img.header.set_zooms((1.5625, 1.5625, 10.0))
    img.set_sform(np.diag([-1.0, -1.0, 1.0, 1.0]), code=2)
    nib.save(img, tmp_path / "acdc_like.nii.gz")
    v = read_volume(tmp_path / "acdc_like.nii.gz")
    assert v.spacing == pytest.approx((10.0, 1.5625, 1.5625))
    np.testing.assert_allclose(np.diag(v.affine)[:3], [-1.5625, -1.5625, 10.0])


def _write_dicom_series(folder, array, spacing, origin, *, uid="1.2.826.0.1.3680043.2.1125.1.424242", prefix="slice"):
    import SimpleITK as sitk

    folder.mkdir(exist_ok=True)
    sz, sy, sx = spacing
    for k in range(array.shape[0]):
        sl = sitk.GetImageFromArray(array[k : k + 1])
        sl.SetSpacing((sx, sy, sz))
        pos = (origin[0], origin[1], origin[2] + k * sz)
        for tag, value in {
            "0008|0060": "MR", "0020|000e": uid, "0020|000d": uid + ".1", "0020|0013": str(k + 1),
            "0020|0032": "\\".join(f"{p:.4f}" for p in pos), "0020|0037": "1\\0\\0\\0\\1\\0",
            "0028|0030": f"{sy}\\{sx}", "0018|0050": str(sz), "0008|0016": "1.2.840.10008.5.1.4.1.1.4",
        }.items():
            sl.SetMetaData(tag, value)
        sl.SetOrigin(pos)
        w = sitk.ImageFileWriter()
        w.KeepOriginalImageUIDOn()
        w.SetFileName(str(folder / f"{prefix}{k:03d}.dcm"))
        w.Execute(sl)


def test_dicom_series_folder(tmp_path):
    arr = np.random.default_rng(2).integers(0, 1000, (5, 16, 12)).astype(np.int16)
    _write_dicom_series(tmp_path / "series", arr, (8.0, 1.4, 1.4), (-10.0, 20.0, 30.0))
    v = read_volume(tmp_path / "series")
    np.testing.assert_array_equal(v.array, arr)
    assert v.spacing == pytest.approx((8.0, 1.4, 1.4), abs=1e-4)
    # DICOM (LPS) origin (-10, 20, 30) is RAS (10, -20, 30)
    np.testing.assert_allclose(v.affine[:3, 3], [10.0, -20.0, 30.0], atol=1e-4)
    assert v.orientation == "LPS"


# -- bad input: one clear InputError each --------------------------------------------------------
def test_truncated_nii_gz(tmp_path, image_volume):
    path = write_volume(image_volume, tmp_path / "full.nii.gz")
    raw = path.read_bytes()
    (tmp_path / "cut.nii.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputError, match=r"cut\.nii\.gz: .*(truncated|corrupt|not a readable)"):
        read_volume(tmp_path / "cut.nii.gz")


def test_text_renamed_nii(tmp_path):
    (tmp_path / "notes.nii").write_text("this is not an image\n" * 30)
    with pytest.raises(InputError, match="notes.nii: not a readable NIfTI"):
        read_volume(tmp_path / "notes.nii")


def test_2d_image(tmp_path):
    nib.save(nib.Nifti1Image(np.zeros((10, 12), np.int16), np.eye(4)), tmp_path / "flat.nii.gz")
    with pytest.raises(InputError, match="is 2D"):
        read_volume(tmp_path / "flat.nii.gz")


def test_5d_image(tmp_path):
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 3, 2, 2), np.int16), np.eye(4)), tmp_path / "five.nii.gz")
    with pytest.raises(InputError, match="is 5D"):
        read_volume(tmp_path / "five.nii.gz")


def test_nan_inf_voxels(tmp_path):
    data = np.zeros((4, 4, 3), np.float32)
    data[1, 1, 1], data[2, 2, 2] = np.nan, np.inf
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "nan.nii.gz")
    with pytest.raises(InputError, match="2 voxel\\(s\\) are NaN or Inf"):
        read_volume(tmp_path / "nan.nii.gz")


@pytest.mark.parametrize("zooms", [(0.0, 1.0, 1.0), (1.0, -2.0, 1.0)])
def test_zero_or_negative_spacing(tmp_path, zooms):
    img = nib.Nifti1Image(np.zeros((4, 4, 3), np.int16), None)
    img.header["pixdim"][1:4] = zooms
    img.header.set_sform(None, code=0)
    img.header.set_qform(None, code=0)
    nib.save(img, tmp_path / "zero.nii.gz")
    with pytest.raises(InputError, match="spacing must be positive"):
        read_volume(tmp_path / "zero.nii.gz")


def test_empty_dicom_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no DICOM series found"):
        read_volume(tmp_path / "empty")


def test_labels_with_unknown_values(tmp_path, labels_volume):
    data = labels_volume.array.copy()
    data[0, 0, 0] = 7
    nib.save(nib.Nifti1Image(data.T, labels_volume.affine), tmp_path / "bad_seg.nii.gz")
    with pytest.raises(InputError, match=r"bad_seg.nii.gz: unknown label values \[7\]"):
        read_volume(tmp_path / "bad_seg.nii.gz")


def test_missing_file_and_unknown_suffix(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_volume(tmp_path / "nothing.nii.gz")
    (tmp_path / "x.png").write_bytes(b"\x89PNG")
    with pytest.raises(InputError, match="unsupported file type .png"):
        read_volume(tmp_path / "x.png")


def test_failed_write_keeps_existing_file(tmp_path, labels_volume):
    path = write_volume(labels_volume, tmp_path / "keep_seg.nii.gz")
    before = path.read_bytes()
    bad = labels_volume.with_array(np.full(labels_volume.shape, 9, np.uint8))
    with pytest.raises(ValueError, match="unknown label values"):
        write_volume(bad, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep_seg.nii.gz"]  # no temporary left behind


def test_label_detection_by_name_and_content(tmp_path, labels_volume, image_volume):
    assert is_labels_name("patient001_frame01_gt.nii.gz") and is_labels_name("x_seg.nii") and not is_labels_name("x.nii")
    write_volume(labels_volume, tmp_path / "anon.nii.gz")  # labels content, neutral name
    assert read_volume(tmp_path / "anon.nii.gz").kind == "labels"
    write_volume(image_volume, tmp_path / "anon_img.nii.gz")
    assert read_volume(tmp_path / "anon_img.nii.gz").kind == "image"


def test_acdc_named_files_are_mapped(tmp_path, labels_volume):
    acdc = np.array([0, 3, 2, 1, 0], np.uint8)[labels_volume.array]  # canonical -> ACDC coding (no RVW)
    nib.save(nib.Nifti1Image(acdc.T, labels_volume.affine), tmp_path / "patient123_frame01_gt.nii.gz")
    v = read_volume(tmp_path / "patient123_frame01_gt.nii.gz")
    expected = labels_volume.array.copy()
    expected[expected == 4] = 0
    np.testing.assert_array_equal(v.array, expected)
    assert v.metadata["label_scheme_in_file"] == "acdc"
    out = write_volume(v, tmp_path / "again_gt.nii.gz", label_scheme="acdc")
    np.testing.assert_array_equal(np.asanyarray(nib.load(out).dataobj).T, acdc)
