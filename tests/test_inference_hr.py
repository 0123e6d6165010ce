"""LR -> HR models (ACNN-Seg, ACNN-SR): output grid and geometry, intensity units, bad input, CLI."""

import numpy as np
import pytest

from helpers import install_tiny_acnn
from napari_cardiac_priors.contract import hr_affine, lr_model_grid
from napari_cardiac_priors.errors import InputError
from napari_cardiac_priors.inference import enhance, segment
from napari_cardiac_priors.phantom import make_subject
from napari_cardiac_priors.volume import Volume


@pytest.fixture(scope="module")
def lr_stack():
    return make_subject(9730, lr=True)["ed"].lr_image


def test_lr_model_grid_keeps_slices_and_pads_to_multiple_of_8(oblique_affine):
    vol = Volume(np.random.default_rng(0).random((7, 20, 30)).astype(np.float32), affine=oblique_affine)
    grid = lr_model_grid(vol, {"spacing": [10.0, 1.25, 1.25]})
    sz, sy, sx = vol.spacing
    assert grid.shape == (7, int(np.ceil(20 * sy / 1.25 / 8) * 8), int(np.ceil(30 * sx / 1.25 / 8) * 8))
    # slice k of the grid is input slice k; the in-plane centre is the input's centre
    centre_in = vol.affine @ [(30 - 1) / 2, (20 - 1) / 2, 3, 1]
    centre_grid = grid.affine @ [(grid.shape[2] - 1) / 2, (grid.shape[1] - 1) / 2, 3, 1]
    np.testing.assert_allclose(centre_grid, centre_in, atol=1e-6)


def test_sr_output_grid_geometry_and_units(tmp_path, lr_stack):
    name = install_tiny_acnn(tmp_path, name="tiny-sr", task="super-resolution")
    hr = enhance(lr_stack, name)
    z, y, x = lr_stack.spatial_shape
    assert hr.kind == "image" and hr.spatial_shape == (5 * z, y, x)  # 144 x 144 at 1.25 mm: already /8
    assert hr.spacing == pytest.approx((2.0, 1.25, 1.25))
    np.testing.assert_allclose(hr.affine, hr_affine(lr_stack.affine, 5), atol=1e-6)
    # HR slice 5k+2 lies on LR slice k, in world mm
    np.testing.assert_allclose(hr.affine @ [0, 0, 5 * 3 + 2, 1], lr_stack.affine @ [0, 0, 3, 1], atol=1e-6)
    lo, hi = np.percentile(lr_stack.array, [1, 99])
    assert lo - (hi - lo) < hr.array.mean() < hi + (hi - lo)  # the input's intensity units, not [0, 1]


def test_acnn_segmentation_on_the_hr_grid(tmp_path, lr_stack):
    name = install_tiny_acnn(tmp_path, name="tiny-seg")
    result = segment(lr_stack, name)
    assert result.labels.kind == "labels" and result.labels.spatial_shape == (5 * lr_stack.spatial_shape[0], 144, 144)
    assert result.landmarks is None and result.info["output_grid"] == "hr"
    assert set(np.unique(result.labels.array)) <= {0, 1, 2, 3, 4}
    with pytest.raises(InputError, match="super-resolution"):
        segment(lr_stack, install_tiny_acnn(tmp_path, name="tiny-sr2", task="super-resolution"))
    with pytest.raises(InputError, match="not a super-resolution model"):
        enhance(lr_stack, name)


def test_bad_input_nan_and_slice_spacing(tmp_path, lr_stack):
    name = install_tiny_acnn(tmp_path, name="tiny-sr3", task="super-resolution")
    bad = lr_stack.array.astype(np.float32).copy()
    bad[2, 5, 5] = np.nan
    with pytest.raises(InputError, match="1 NaN or infinite voxel"):
        enhance(lr_stack.with_array(bad), name)
    hr_like = make_subject(9731)["ed"].image
    with pytest.raises(InputError, match="slice spacing 2 mm is outside"):
        enhance(hr_like, name)


def test_cli_enhance(tmp_path, lr_stack, capsys):
    from napari_cardiac_priors.cli import main
    from napari_cardiac_priors.io import read_volume, write_volume

    name = install_tiny_acnn(tmp_path, name="tiny-sr4", task="super-resolution")
    write_volume(lr_stack, tmp_path / "case.nii.gz")
    assert main(["enhance", str(tmp_path / "case.nii.gz"), "--model", name, "--out", str(tmp_path / "o"), "--device", "cpu"]) == 0
    hr = read_volume(tmp_path / "o" / "case_sr.nii.gz")
    assert hr.spatial_shape == (5 * lr_stack.spatial_shape[0], 144, 144)
    assert main(["enhance", str(tmp_path / "case.nii.gz"), "--model", name, "--out", str(tmp_path / "o")]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_bundled_acnn_seg_survives_a_lost_slice():
    """acnn-seg-phantom 1.3 was trained with zero-filled LR slices: a held-out phantom stack with
    one interior slice lost still gives the heart (1.2 lost the whole volume, Dice LV ~0.7 on
    average and down to 0.2 with two slices; measured here 0.949 / 0.854 in 2026-12)."""
    from napari_cardiac_priors.metrics import dice
    from napari_cardiac_priors.training.pairs import phantom_pairs

    pair = phantom_pairs([9301])[0]  # a held-out seed, ED
    lost = pair.test_stack().copy()
    lost[4] = 0.0
    notes = []
    result = segment(pair.lr_volume.with_array(lost), "acnn-seg-phantom", notes=notes)
    assert any("slice 4 of" in n and "no signal" in n for n in notes)
    labels = result.labels.array
    assert labels.shape == pair.hr_labels.shape
    assert dice(labels == 1, pair.hr_labels == 1) >= 0.90 and dice(labels == 2, pair.hr_labels == 2) >= 0.80
