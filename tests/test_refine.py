"""The refinement pipeline on a phantom: it improves the LR segmentation; bad input is refused."""

import numpy as np
import pytest
import torch

from napari_cardiac_priors.errors import InputError
from napari_cardiac_priors.landmarks import Landmarks
from napari_cardiac_priors.metrics import evaluate_labels
from napari_cardiac_priors.phantom import make_subject
from napari_cardiac_priors.registration.refine import hr_grid, refine
from napari_cardiac_priors.registry.atlases import load_atlases
from napari_cardiac_priors.volume import Volume, resample


@pytest.fixture(scope="module")
def case():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    ph = make_subject(9800, pathology="NOR", lr=True)["ed"]
    yield ph, resample(ph.labels, ph.lr_image), load_atlases("atlases-phantom")[:8]
    torch.set_num_threads(threads)


def test_hr_grid_covers_the_stack(case):
    ph, target, _ = case
    affine, shape = hr_grid(target, z_margin_mm=0.0)
    grid = Volume(np.zeros(shape), affine=affine)
    assert grid.spacing == pytest.approx((2.0, 1.25, 1.25))
    assert shape[0] * 2.0 == pytest.approx(target.shape[0] * 10.0, abs=2.0)
    # the first HR voxel centre lies half an HR voxel inside the first LR voxel's edge
    lr_edge = target.index_to_world([-0.5, -0.5, -0.5])
    np.testing.assert_allclose(grid.index_to_world([-0.5, -0.5, -0.5]), lr_edge, atol=1e-6)


def test_refinement_improves_the_lr_segmentation(case):
    ph, target, atlases = case
    before = evaluate_labels(resample(target, ph.labels).array, ph.labels.array, ph.labels.spacing, structures=[1, 2, 3])
    steps = []
    result = refine(target, ph.landmarks, atlases, n_atlases=3, progress=lambda s, f: steps.append(s))
    assert result.labels.spacing == pytest.approx((2.0, 1.25, 1.25)) and len(result.selected) == 3
    assert steps[0] == "affine" and steps[-1] == "done" and {"registration", "fusion"} <= set(steps)
    assert set(result.timings) >= {"affine", "selection", "registration", "warping", "fusion", "total"}
    after = evaluate_labels(resample(result.labels, ph.labels).array, ph.labels.array, ph.labels.spacing, structures=[1, 2, 3])
    for k in ("LV", "MYO", "RV"):
        assert after[k]["dice"] > before[k]["dice"], (k, before[k], after[k])
    assert 4 in np.unique(result.labels.array)  # the RV wall comes from the atlases


def test_bad_input(case):
    ph, target, atlases = case
    with pytest.raises(InputError, match="no LV cavity"):
        refine(target.with_array(np.where(target.array == 1, 0, target.array).astype(np.uint8)), ph.landmarks, atlases)
    far = ph.landmarks.positions.copy()
    far[4] += [0, 0, 500.0]
    with pytest.raises(InputError, match="apex lies outside the image"):
        refine(target, Landmarks(far), atlases)
    line = np.array([[0, 0, 0], [1, 1, 1], [2, 2, 2], [3, 3, 3], [4, 4, 4], [5, 5, 5]], float)
    with pytest.raises(InputError, match="(collinear|coplanar|degenerate)"):
        refine(target, Landmarks(line), atlases)
    rv_only = [type(a)(a.id, a.labels.with_array((a.labels.array == 4).astype(np.uint8) * 4), a.landmarks) for a in atlases[:2]]
    with pytest.raises(InputError, match="share no structure"):
        refine(target.with_array(np.isin(target.array, (1, 2)).astype(np.uint8)), ph.landmarks, rv_only)
    with pytest.raises(InputError, match="different grids"):
        refine(target, ph.landmarks, atlases, image=ph.image)
