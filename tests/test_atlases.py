"""Atlases from labelled LR stacks: slice-shift correction and shape-based interpolation on
known shapes, and an atlas from a real ACDC label map."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cardiac_priors.atlases.from_labels import apex_side, atlas_from_labels, shape_interpolate, slice_shifts
from napari_cardiac_priors.errors import InputError
from napari_cardiac_priors.metrics import dice
from napari_cardiac_priors.volume import Volume, affine_from_spacing

SPACING = (10.0, 1.5, 1.5)


def _discs(centres_mm, *, r_cavity=15.0, r_epi=22.0, size=100):
    """A stack of LV discs (cavity + myocardial ring), slice k centred at ``centres_mm[k]`` (y, x)."""
    yy, xx = np.mgrid[:size, :size] * SPACING[1]
    out = np.zeros((len(centres_mm), size, size), np.uint8)
    for k, (cy, cx) in enumerate(centres_mm):
        r = np.hypot(yy - cy, xx - cx)
        out[k][r <= r_epi] = 2
        out[k][r <= r_cavity] = 1
    return Volume(out, affine=affine_from_spacing(SPACING), kind="labels")


def test_a_shifted_stack_of_discs_becomes_a_cylinder():
    rng = np.random.default_rng(1)
    true = np.array([75.0, 72.0])
    shifts = rng.uniform(-4, 4, (10, 2))
    stack = _discs(true + shifts)
    found = slice_shifts(stack)
    residual = (true + shifts - found) - np.mean(true + shifts - found, axis=0)
    # what is left after the correction is a straight line (the fitted axis), nothing slice by slice
    k = np.arange(10)[:, None]
    slope = np.polyfit(np.arange(10), residual, 1)
    assert np.abs(residual - (np.polyval(slope[:, 0], k[:, 0])[:, None] * [1, 0]
                              + np.polyval(slope[:, 1], k[:, 0])[:, None] * [0, 1])).max() < 0.3
    hr = shape_interpolate(stack, shifts_mm=found, caps=("flat", "flat"))
    arr = hr.array
    sz, sy, sx = hr.spacing
    area = (arr == 1).sum(axis=(1, 2)) * sy * sx
    held = area > 0
    inner = np.flatnonzero(held)[2:-2]  # away from the flat ends
    assert np.allclose(area[inner], np.pi * 15.0**2, rtol=0.04)
    cent = np.array([np.argwhere(arr[j] == 1).mean(axis=0) * (sy, sx) for j in inner])
    fit = np.polyfit(inner, cent, 1)
    assert np.abs(cent - (np.outer(inner, fit[0]) + fit[1])).max() < 0.4  # one straight axis: a cylinder
    # the length: ten slices of 10 mm, closed half a slice beyond the first and last
    assert held.sum() * sz == pytest.approx(100.0, abs=2 * sz)
    without = shape_interpolate(stack, caps=("flat", "flat"))  # uncorrected: the centres wander slice by slice
    cw = np.array([np.argwhere(without.array[j] == 1).mean(axis=0) * (sy, sx) for j in inner])
    fw = np.polyfit(inner, cw, 1)
    assert np.abs(cw - (np.outer(inner, fw[0]) + fw[1])).max() > 1.5


def test_a_sphere_sampled_every_10_mm_is_interpolated_back_to_a_sphere():
    size, r = 80, 30.0
    yy, xx = np.mgrid[:size, :size] * SPACING[1]
    c = (size - 1) * SPACING[1] / 2
    zs = np.arange(-25.0, 26.0, 10.0)  # slice centres; the poles lie 5 mm beyond the outer slices
    stack = np.zeros((zs.size, size, size), np.uint8)
    for k, z in enumerate(zs):
        stack[k][np.hypot(yy - c, xx - c) <= np.sqrt(r**2 - z**2)] = 1
    lr = Volume(stack, affine=affine_from_spacing(SPACING, origin=(0.0, 0.0, zs[0])), kind="labels")
    hr = shape_interpolate(lr, caps=("dome", "dome"))
    zyx = np.stack(np.meshgrid(*[np.arange(n) for n in hr.spatial_shape], indexing="ij"), -1).reshape(-1, 3)
    world = hr.index_to_world(zyx)
    truth = (np.linalg.norm(world - [c, c, 0.0], axis=1) <= r).reshape(hr.spatial_shape)
    assert dice(hr.array == 1, truth) > 0.96
    stairs = shape_interpolate(lr, caps=("flat", "flat"))
    assert dice(hr.array == 1, truth) > dice(stairs.array == 1, truth)  # the dome closes it like a sphere
    vol = (hr.array == 1).sum() * np.prod(hr.spacing)
    assert vol == pytest.approx(4 / 3 * np.pi * r**3, rel=0.06)


def test_apex_side_is_the_narrow_end_and_caps_follow_it():
    radii = [24, 24, 23, 21, 18, 14, 9]
    yy, xx = np.mgrid[:60, :60] * SPACING[1]
    stack = np.zeros((len(radii), 60, 60), np.uint8)
    for k, rr in enumerate(radii):
        d = np.hypot(yy - 45, xx - 45)
        stack[k][d <= rr] = 2
        stack[k][d <= rr - 7] = 1
    vol = Volume(stack, affine=affine_from_spacing(SPACING), kind="labels")
    assert apex_side(vol) == 1
    assert apex_side(Volume(stack[::-1].copy(), affine=affine_from_spacing(SPACING), kind="labels")) == -1


def test_an_atlas_from_an_acdc_label_map_keeps_volumes_and_gets_six_landmarks(acdc_root):
    from napari_cardiac_priors.conventions import HR_SPACING
    from napari_cardiac_priors.training.data import acdc_cases

    case = acdc_cases(acdc_root, (1,))[0]  # ED
    atlas = atlas_from_labels(case.labels, case.id)
    assert atlas.labels.spacing == pytest.approx(HR_SPACING)
    for v in (1, 2, 3):  # shape-based interpolation keeps each structure's volume
        before = (case.labels.array == v).sum() * np.prod(case.labels.spacing)
        after = (atlas.labels.array == v).sum() * np.prod(atlas.labels.spacing)
        assert after == pytest.approx(before, rel=0.05)
    assert not (atlas.labels.array == 4).any()  # no RV wall where the labels have none
    assert atlas.landmarks.valid.all()
    apex, mv = atlas.landmarks.positions[[4, 5]]  # conventions.LANDMARK_NAMES order
    assert np.linalg.norm(apex - mv) > 60.0  # a long axis of a real heart


def test_atlas_from_labels_refuses_what_is_not_a_heart():
    empty = Volume(np.zeros((8, 40, 40), np.uint8), affine=affine_from_spacing(SPACING), kind="labels")
    with pytest.raises(InputError, match="LV cavity"):
        atlas_from_labels(empty, "empty")
    with pytest.raises(InputError, match="3D label map"):
        atlas_from_labels(Volume(np.zeros((8, 40, 40), np.float32), affine=affine_from_spacing(SPACING)), "image")


def test_the_atlas_set_fits_the_target():
    from napari_cardiac_priors.registry.atlases import AUTO, atlas_set_for, resolve_atlas_set

    acdc_like = np.zeros((4, 8, 8), np.uint8)
    acdc_like[:, 2:6, 2:6] = [[1, 2, 3, 0]] * 4
    phantom_like = acdc_like.copy()
    phantom_like[0, 0, 0] = 4  # an RV wall
    assert atlas_set_for(acdc_like) == "atlases-acdc"
    assert atlas_set_for(phantom_like) == "atlases-phantom"
    assert resolve_atlas_set(AUTO, acdc_like) == "atlases-acdc"
    assert resolve_atlas_set("my-atlases", acdc_like) == "my-atlases"  # a user's choice stands


def test_cli_builds_an_atlas_set_from_label_files(tmp_path, acdc_root, capsys):
    import shutil

    from napari_cardiac_priors import registry
    from napari_cardiac_priors.cli import main
    from napari_cardiac_priors.io.acdc import iter_patients
    from napari_cardiac_priors.registry.atlases import load_atlases

    folder = tmp_path / "mine"
    folder.mkdir()
    (p,) = iter_patients(acdc_root, ids=[1])
    shutil.copy(p.labels_path("ed"), folder / "p1_ed.nii.gz")  # ACDC values: 1 RV, 2 MYO, 3 LV
    (folder / "broken.nii.gz").write_bytes(b"not a nifti")
    before = sorted(x.name for x in folder.iterdir())
    rc = main(["atlases", "build", str(folder), "--from-labels", "--label-values", "acdc", "--name", "mine"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "broken.nii.gz" in err[0]  # one line for the bad file, the rest built
    (atlas,) = load_atlases("mine")
    assert atlas.id == "p1_ed" and atlas.landmarks.valid.all()
    lv = (atlas.labels.array == 1).sum() * np.prod(atlas.labels.spacing) / 1000
    assert 250 < lv < 340  # the LV cavity of patient001 ED (~295 mL): ACDC values were mapped
    assert registry.get_model("mine").training["skipped"] == ["broken.nii.gz"]
    assert sorted(x.name for x in folder.iterdir()) == before  # the source folder is left as it was
    rc = main(["atlases", "build", str(folder), "--from-labels", "--name", "mine"])
    assert rc == 2 and "--overwrite" in capsys.readouterr().err


def test_refinement_of_a_real_acdc_case_with_the_real_atlases(acdc_root):
    """A validation patient's manual labels thinned to every other slice (held-back slices
    scored): refinement with atlases-acdc fills them in better than the nearest kept slice."""
    import warnings

    from napari_cardiac_priors.landmarks import derive_from_labels
    from napari_cardiac_priors.registration.refine import refine
    from napari_cardiac_priors.registry.atlases import load_atlases, resolve_atlas_set
    from napari_cardiac_priors.training.data import acdc_cases
    from napari_cardiac_priors.volume import resample

    ref = acdc_cases(acdc_root, (5,))[0].labels  # patient005 ED: a validation patient, in no atlas
    m = np.eye(4)
    m[2, 2] = 2.0
    thick = Volume(np.ascontiguousarray(ref.array[::2]), affine=ref.affine @ m, kind="labels")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        landmarks = derive_from_labels(thick)
    name = resolve_atlas_set("auto", thick)
    assert name == "atlases-acdc"
    result = refine(thick, landmarks, load_atlases(name), n_atlases=3)
    assert not (result.labels.array == 4).any()  # no RV wall added to a target without one
    held = np.arange(1, ref.spatial_shape[0], 2)
    nearest = resample(thick, ref).array[held]
    refined = resample(result.labels, ref).array[held]
    for v in (1, 2, 3):
        assert dice(refined == v, ref.array[held] == v) > dice(nearest == v, ref.array[held] == v)
    assert dice(refined == 1, ref.array[held] == 1) > 0.9


def test_refinement_bad_inputs_get_one_clear_message(acdc_root, tmp_path):
    import warnings

    from napari_cardiac_priors.io import write_landmarks, write_volume
    from napari_cardiac_priors.landmarks import Landmarks, derive_from_labels
    from napari_cardiac_priors.registration.refine import refine
    from napari_cardiac_priors.registry.atlases import load_atlas_source, load_atlases
    from napari_cardiac_priors.training.data import acdc_cases

    ref = acdc_cases(acdc_root, (5,))[0].labels
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        landmarks = derive_from_labels(ref)
    atlases = load_atlases("atlases-acdc")[:3]
    gap = ref.with_array(ref.array.copy())
    gap.array[4] = 0  # a slice missing in the middle
    with pytest.raises(InputError, match="empty on slice"):
        refine(gap, landmarks, atlases)
    # the landmarks point 14 slices beyond where they were, past the labelled slices (still inside the taller stack)
    tall = Volume(np.concatenate([ref.array, np.zeros((20, *ref.spatial_shape[1:]), ref.array.dtype)]),
                  affine=ref.affine, kind="labels")
    away = ref.index_to_world([[ref.spatial_shape[0] + 4, 0, 0]])[0] - ref.index_to_world([[0, 0, 0]])[0]
    moved = Landmarks(landmarks.positions + away, source=landmarks.source)
    with pytest.raises(InputError, match="no atlas reaches the target"):
        refine(tall, moved, atlases)
    folder = tmp_path / "mine"
    folder.mkdir()
    for i, a in enumerate(atlases[:2]):
        write_volume(a.labels, folder / f"a{i}_labels.nii.gz")
        if i == 0:
            write_landmarks(a.landmarks, folder / f"a{i}_landmarks.json")
    with pytest.raises(InputError, match="a1_labels.nii.gz has no landmark file a1_landmarks.json"):
        load_atlas_source(folder)
