"""The reader opens every ACDC training file, maps its labels, and the round trip holds on each."""

import nibabel as nib
import numpy as np

from napari_cardiac_priors.io import read_volume, write_volume
from napari_cardiac_priors.io.acdc import ACDC_GROUPS, iter_patients


def test_patients_and_info(acdc_root):
    patients = list(iter_patients(acdc_root))
    assert len(patients) == 100
    assert {p.group for p in patients} == set(ACDC_GROUPS)
    p1 = patients[0]
    assert (p1.id, p1.group, p1.ed_frame, p1.es_frame, p1.height_cm, p1.weight_kg) == ("patient001", "DCM", 1, 12, 184.0, 95.0)
    assert [p.id for p in iter_patients(acdc_root, ids=[3, "patient100"])] == ["patient003", "patient100"]


def test_every_file_opens_and_round_trips(acdc_root, tmp_path):
    """200 images and 200 label maps: geometry from pixdim, canonical labels, exact round trip."""
    for patient in iter_patients(acdc_root):
        for phase in ("ed", "es"):
            img_path, lab_path = patient.image_path(phase), patient.labels_path(phase)
            raw = nib.load(img_path)
            img = patient.image(phase)
            assert img.kind == "image" and img.array.ndim == 3
            np.testing.assert_allclose(img.spacing[::-1], raw.header.get_zooms()[:3], rtol=1e-6)
            np.testing.assert_array_equal(img.array, np.asanyarray(raw.dataobj).T)
            lab = patient.labels(phase)
            raw_lab = np.asanyarray(nib.load(lab_path).dataobj).T
            assert lab.kind == "labels" and lab.array.shape == img.array.shape
            # ACDC 1 RV, 2 MYO, 3 LV -> canonical 3 RV, 2 MYO, 1 LV
            for acdc_value, canonical in ((1, 3), (2, 2), (3, 1), (0, 0)):
                np.testing.assert_array_equal(lab.array == canonical, raw_lab == acdc_value)
            for vol, name in ((img, "img.nii"), (lab, "lab_seg.nii")):
                back = read_volume(write_volume(vol, tmp_path / name))
                np.testing.assert_array_equal(back.array, vol.array)
                np.testing.assert_allclose(back.affine, vol.affine, atol=1e-5)


def test_auto_detection_maps_acdc_names(acdc_root):
    p = next(iter_patients(acdc_root, ids=[1]))
    auto = read_volume(p.labels_path("ed"))
    assert auto.kind == "labels" and auto.metadata["label_scheme_in_file"] == "acdc"
    np.testing.assert_array_equal(auto.array, p.labels("ed").array)
    assert read_volume(p.image_path("ed")).kind == "image"
