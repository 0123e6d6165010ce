"""Landmarks derived from label maps against the phantom's exact landmarks, and edge cases."""

import warnings

import numpy as np
import pytest

from napari_cardiac_priors.conventions import LANDMARK_NAMES
from napari_cardiac_priors.landmarks import derive_from_labels, longest_run
from napari_cardiac_priors.metrics import landmark_errors
from napari_cardiac_priors.phantom import PATHOLOGIES, make_subject
from napari_cardiac_priors.volume import Volume


def test_derived_landmarks_match_phantom_geometry():
    """Median error <= 5 mm per landmark over 10 subjects x 2 phases, all pathologies."""
    errors = []
    for i in range(10):
        for ph in make_subject(500 + i, pathology=PATHOLOGIES[i % 5]).values():
            errors.append(landmark_errors(derive_from_labels(ph.labels), ph.landmarks))
    errors = np.array(errors)
    assert not np.isnan(errors).any()
    median = np.median(errors, axis=0)
    assert np.all(median <= 5.0), dict(zip(LANDMARK_NAMES, median.round(2)))


def test_derive_from_array_and_flipped_stack():
    """The rule finds the apex whichever way the slices run (ACDC stacks vary)."""
    ph = make_subject(7, pathology="NOR")["ed"]
    lab = ph.labels
    flipped_affine = lab.affine @ np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, -1, lab.shape[0] - 1], [0, 0, 0, 1.0]])
    flipped = Volume(lab.array[::-1].copy(), affine=flipped_affine, kind="labels")
    a, b = derive_from_labels(lab), derive_from_labels(flipped)
    np.testing.assert_allclose(a.positions, b.positions, atol=0.5)
    c = derive_from_labels(lab.array, lab.spacing, affine=lab.affine)
    np.testing.assert_allclose(a.positions, c.positions)
    assert a.source == ("derived",) * 6


def test_no_heart_gives_nan_and_warning():
    with pytest.warns(UserWarning, match="no LV"):
        lm = derive_from_labels(np.zeros((5, 10, 10), np.uint8), (2, 1, 1))
    assert np.isnan(lm.positions).all()


def test_no_rv_gives_nan_rv_landmarks():
    lab = make_subject(3, pathology="NOR")["ed"].labels
    no_rv = lab.with_array(np.where(lab.array >= 3, 0, lab.array).astype(np.uint8))
    with pytest.warns(UserWarning, match="no RV cavity"):
        lm = derive_from_labels(no_rv)
    assert lm.valid.tolist() == [False, False, False, False, True, True]  # lv_lateral needs the RV direction


def test_longest_run_is_circular():
    assert longest_run(np.array([1, 1, 0, 0, 1, 1, 1], bool)) == (4, 1)
    assert longest_run(np.zeros(4, bool)) is None
    assert longest_run(np.array([0, 1, 1, 0, 1], bool)) == (1, 2)


def test_acdc_labels_give_landmarks(acdc_root):
    from napari_cardiac_priors.io.acdc import iter_patients

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = [derive_from_labels(p.labels("ed")).valid.all() for p in iter_patients(acdc_root, ids=range(1, 101, 9))]
    assert all(found)


def test_target_and_extraction_round_trip():
    """Balls around known landmarks, turned into probabilities, give the landmarks back."""
    from napari_cardiac_priors.landmarks import from_probabilities, landmark_target

    ph = make_subject(11, pathology="NOR")["ed"]
    target = landmark_target(ph.landmarks, ph.labels, radius_mm=4.0)
    assert set(np.unique(target)) == set(range(7))
    # a ball of 4 mm on a 2 x 1.25 x 1.25 grid holds roughly 4/3 pi 64 / 3.125 ~ 86 voxels
    assert 40 < np.count_nonzero(target == 5) < 130
    prob = np.zeros((7, *target.shape), np.float32)
    prob[0] = 0.6
    for k in range(1, 7):
        prob[k][target == k] = 0.9
    lm = from_probabilities(prob, ph.labels)
    err = landmark_errors(lm, ph.landmarks)
    assert np.all(err < 1.0), err  # voxel-centre centroid of a ball: sub-voxel
    assert lm.source == ("model",) * 6 and np.allclose(lm.confidence, 0.9)


def test_extraction_keeps_largest_cluster_and_nans_missing():
    from napari_cardiac_priors.landmarks import from_probabilities

    ref = Volume(np.zeros((10, 20, 20)), spacing=(2, 1, 1))
    prob = np.zeros((7, 10, 20, 20), np.float32)
    prob[0] = 0.5
    prob[1, 4:6, 4:7, 4:7] = 0.8  # the true cluster (18 voxels)
    prob[1, 8, 15, 15] = 0.99  # a stray voxel
    with pytest.warns(UserWarning, match="rv_lateral, rv_insert_inferior, lv_lateral, apex, mitral_valve"):
        lm = from_probabilities(prob, ref)
    np.testing.assert_allclose(ref.world_to_index(lm.positions[0]), [4.5, 5, 5])
    assert lm.valid.tolist() == [True] + [False] * 5 and lm.confidence[0] == pytest.approx(0.8)
