"""LR/HR phantom pairs for ACNN: the LR-aligned HR grid, crop, intensities, motion augmentation."""

import numpy as np

from napari_cardiac_priors.phantom import make_subject
from napari_cardiac_priors.phantom.artefacts import LRArtefacts
from napari_cardiac_priors.contract import hr_affine
from napari_cardiac_priors.training.pairs import apply_motion, phantom_pair, sample_pair


def test_hr_affine_centres_factor_slices_on_each_lr_slice():
    lr = np.diag([1.25, 1.25, 10.0, 1.0])
    lr[:3, 3] = [5, 6, 7]
    hr = hr_affine(lr, 5)
    for k in range(3):
        np.testing.assert_allclose(hr @ [0, 0, 5 * k + 2, 1], lr @ [0, 0, k, 1])
    np.testing.assert_allclose(np.linalg.norm(hr[:3, 2]), 2.0)


def test_phantom_pair_grid_labels_and_intensities():
    ph = make_subject(9720, lr=True)["ed"]
    art = LRArtefacts((17, 22, 27, 32), ((1.0, 2.0),) * 4, (1,), 4.0)
    pair = phantom_pair(ph, art, crop=(96, 96), factor=5)
    assert pair.lr_image.shape == (4, 96, 96) and pair.hr_labels.shape == pair.hr_image.shape == (20, 96, 96)
    # HR slice 5k+2 is the phantom's HR slice hr_slices[k], cropped about the centre (144 -> 96)
    np.testing.assert_array_equal(pair.hr_labels[5 * 2 + 2], ph.labels.array[27, 24:120, 24:120])
    np.testing.assert_array_equal(pair.hr_labels[0], ph.labels.array[15, 24:120, 24:120])
    # the LR stack is clean (no shift, no zero-filled slice) and in [0, 1]
    assert pair.lr_image[1].std() > 0.05 and 0.0 <= pair.lr_image.min() and pair.lr_image.max() <= 1.0
    world_hr = pair.hr_volume.affine @ [10, 20, 12, 1]
    world_ph = ph.labels.affine @ [34, 44, 27, 1]
    np.testing.assert_allclose(world_hr, world_ph, atol=1e-6)


def test_motion_moves_lr_slices_only():
    ph = make_subject(9721, lr=True)["es"]
    pair = phantom_pair(ph, LRArtefacts((20, 25, 30), ((0, 0),) * 3, (), 4.0), crop=(96, 96))
    lr, labels, hr = sample_pair(pair, np.random.default_rng(1), motion=True, noise_sd=0.0)
    assert not np.allclose(lr, pair.lr_image)
    assert labels is pair.hr_labels and hr is pair.hr_image
    shifted = apply_motion(pair.lr_image, np.array([[0, 3], [0, 0], [-2, 0]], float))
    np.testing.assert_allclose(shifted[0, :, 3:], pair.lr_image[0, :, :-3], atol=1e-6)
    np.testing.assert_array_equal(shifted[1], pair.lr_image[1])


def test_zero_filled_slices_are_interior_and_leave_the_target():
    ph = make_subject(9721, lr=True)["es"]
    pair = phantom_pair(ph, LRArtefacts((15, 20, 25, 30, 35), ((0, 0),) * 5, (), 4.0), crop=(96, 96))
    counts = []
    for seed in range(40):
        lr, labels, hr = sample_pair(pair, np.random.default_rng(seed), motion=False, noise_sd=0.0,
                                     zero_slices_p=1.0, max_zero_slices=2)
        zero = [k for k in range(lr.shape[0]) if not lr[k].any()]
        assert 1 <= len(zero) <= 2 and 0 not in zero and lr.shape[0] - 1 not in zero
        kept = [k for k in range(lr.shape[0]) if k not in zero]
        np.testing.assert_array_equal(lr[kept], pair.lr_image[kept])
        assert labels is pair.hr_labels and hr is pair.hr_image
        counts.append(len(zero))
    assert set(counts) == {1, 2}
    assert pair.lr_image.any(axis=(1, 2)).all()  # the pair itself is untouched
    lr, _, _ = sample_pair(pair, np.random.default_rng(0), motion=False, noise_sd=0.0, zero_slices_p=0.0)
    assert lr.any(axis=(1, 2)).all()
