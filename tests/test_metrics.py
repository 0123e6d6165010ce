import numpy as np
import pytest

from napari_cardiac_priors import metrics
from napari_cardiac_priors.landmarks import Landmarks


def cube(shape=(20, 20, 20), lo=(5, 5, 5), size=10):
    m = np.zeros(shape, bool)
    m[lo[0] : lo[0] + size, lo[1] : lo[1] + size, lo[2] : lo[2] + size] = True
    return m


def test_dice_known_overlap():
    a, b = cube(), cube(lo=(5, 5, 10))  # half of each cube overlaps
    assert metrics.dice(a, b) == pytest.approx(0.5)
    assert metrics.dice(a, a) == 1.0
    assert metrics.dice(np.zeros(3, bool), np.zeros(3, bool)) == 1.0
    assert metrics.dice(a, np.zeros_like(a)) == 0.0


def test_hausdorff_of_shifted_cube_in_mm():
    a, b = cube(), cube(lo=(5, 5, 8))  # shifted 3 voxels along x
    spacing = (2.0, 1.0, 1.5)
    assert metrics.hausdorff(a, b, spacing) == pytest.approx(4.5)
    assert metrics.hd95(a, b, spacing) <= 4.5 + 1e-9
    assert metrics.hausdorff(a, a, spacing) == 0.0
    # a shift along z with 2 mm slices
    c = cube(lo=(7, 5, 5))
    assert metrics.hausdorff(a, c, spacing) == pytest.approx(4.0)
    assert metrics.mean_surface_distance(a, c, spacing) > 0
    assert np.isnan(metrics.hausdorff(a, np.zeros_like(a), spacing))


def test_evaluate_labels_per_structure():
    ref = np.zeros((10, 10, 10), np.uint8)
    ref[2:8, 2:8, 2:5] = 1
    ref[2:8, 2:8, 5:7] = 2
    pred = ref.copy()
    pred[2:8, 2:8, 6] = 0
    out = metrics.evaluate_labels(pred, ref, (1, 1, 1))
    assert set(out) == {"LV", "MYO"}
    assert out["LV"]["dice"] == 1.0 and out["LV"]["hd95"] == 0.0
    assert out["MYO"]["dice"] == pytest.approx(2 * 36 / (36 + 72))


def test_volumes_mass_ef():
    lab = np.zeros((10, 10, 10), np.uint8)
    lab[:5, :10, :10] = 1  # 500 voxels
    lab[5:7] = 2  # 200 voxels
    lab[7, :5] = 4  # 50 voxels
    m = metrics.cardiac_measures(lab, (2.0, 1.25, 1.25))  # 3.125 mm^3 per voxel
    assert m["lv_ml"] == pytest.approx(500 * 3.125 / 1000)
    assert m["myo_ml"] == pytest.approx(0.625)
    assert m["lv_mass_g"] == pytest.approx(0.625 * 1.05)
    assert m["rv_mass_g"] == pytest.approx(50 * 3.125 / 1000 * 1.05)
    assert np.isnan(metrics.cardiac_measures(lab * (lab < 4), (1, 1, 1))["rv_mass_g"])
    assert metrics.ejection_fraction(150.0, 60.0) == pytest.approx(60.0)
    assert np.isnan(metrics.ejection_fraction(0.0, 0.0))


def test_landmark_errors():
    a = Landmarks.from_dict({"apex": (0, 0, 0), "mitral_valve": (1, 1, 1)})
    b = Landmarks.from_dict({"apex": (3, 4, 0), "mitral_valve": (1, 1, 1), "rv_lateral": (0, 0, 0)})
    e = metrics.landmark_errors(a, b)
    assert e[4] == pytest.approx(5.0) and e[5] == 0.0
    assert np.isnan(e[1]) and np.isnan(e[0])
