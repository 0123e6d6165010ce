"""Tests of the parametric cardiac phantom (napari_cardiac_priors.phantom)."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import numpy as np
import pytest

from napari_cardiac_priors.conventions import HR_SPACING, LANDMARK_NAMES, LV, MYO, RV, RVW
from napari_cardiac_priors.phantom import (
    PATHOLOGIES,
    HeartShape,
    LRArtefacts,
    Phantom,
    grid_affine,
    make_phantom,
    make_subject,
    sample_lr_artefacts,
    sample_shape,
    simulate_lr,
    subject_seed,
    write_subject,
)
from napari_cardiac_priors.phantom.anatomy import (
    ed_geometry,
    es_geometry,
    heart_frame,
    label_points,
)

VOXEL_ML = float(np.prod(HR_SPACING)) / 1000.0


@pytest.fixture(scope="module")
def subjects() -> dict:
    """One ED/ES subject per pathology."""
    return {p: make_subject(100 + i, pathology=p) for i, p in enumerate(PATHOLOGIES)}


def _labels(shape: HeartShape, phase: str = "ed", grid_shape=(64, 144, 144)) -> np.ndarray:
    """Labels only (no image) on the HR grid: the fast path for volume checks."""
    ed = ed_geometry(shape)
    geom = ed if phase == "ed" else es_geometry(shape, ed)
    return label_points(geom, heart_frame(shape, ed).coords_of_grid(grid_affine(grid_shape), grid_shape))


def _volume_ml(labels: np.ndarray, value: int) -> float:
    return float(np.count_nonzero(labels == value) * VOXEL_ML)


def _world_of(volume, mask: np.ndarray) -> np.ndarray:
    return volume.index_to_world(np.argwhere(mask))


def _dist(points: np.ndarray, p: np.ndarray) -> float:
    return float(np.min(np.linalg.norm(points - p, axis=1)))


# -- determinism and API -----------------------------------------------------------------------
def test_same_seed_same_arrays_different_seed_differs():
    a, b, c = make_subject(7), make_subject(7), make_subject(8)
    for phase in ("ed", "es"):
        assert np.array_equal(a[phase].image.array, b[phase].image.array)
        assert np.array_equal(a[phase].labels.array, b[phase].labels.array)
        assert np.array_equal(a[phase].landmarks.positions, b[phase].landmarks.positions)
        assert a[phase].info == b[phase].info
        assert not np.array_equal(a[phase].image.array, c[phase].image.array)
    assert a["ed"].info["pathology"] in PATHOLOGIES
    assert not np.array_equal(a["ed"].image.array, a["es"].image.array)


def test_subject_seed_distinct_and_reproducible():
    seeds = [subject_seed(0, i) for i in range(20)] + [subject_seed(1, i) for i in range(20)]
    assert len(set(seeds)) == 40
    assert subject_seed(3, 4) == subject_seed(3, 4)


def test_sample_shape_reproducible_and_checks_input():
    assert sample_shape("DCM", rng=5) == sample_shape("DCM", rng=5)
    assert sample_shape("DCM", rng=5) != sample_shape("DCM", rng=6)
    with pytest.raises(ValueError, match="pathology"):
        sample_shape("XYZ")
    with pytest.raises(ValueError, match="lv_radius"):
        HeartShape(lv_radius=-1.0)
    with pytest.raises(ValueError, match="seed"):
        make_subject(-1)
    with pytest.raises(ValueError, match="pathology"):
        make_subject(0, pathology="nor")


def test_make_phantom_api(subjects):
    shape = sample_shape("NOR", rng=1)
    ph = make_phantom(shape, phase="es", rng=2)
    assert isinstance(ph, Phantom) and ph.lr_image is None
    assert ph.image.array.shape == (64, 144, 144) and ph.image.array.dtype == np.int16
    assert ph.labels.array.dtype == np.uint8 and ph.labels.kind == "labels"
    assert ph.image.spacing == HR_SPACING and ph.landmarks.source == ("phantom",) * 6
    assert np.array_equal(ph.image.array, make_phantom(shape, phase="es", rng=2).image.array)
    small = make_phantom(shape, rng=0, grid_shape=(48, 96, 112))
    assert small.image.array.shape == (48, 96, 112)
    with pytest.raises(ValueError, match="phase"):
        make_phantom(shape, phase="mid")
    info = subjects["NOR"]["ed"].info
    json.dumps(info)
    assert info["phase"] == "ed" and info["pathology"] == "NOR" and info["seed"] == 100
    assert info["shape"]["lv_radius"] > 0 and "lv_volume_ml" in info and "rv_ef" in info


def test_grid_is_centred_with_exact_origin():
    a = grid_affine((64, 144, 144))
    assert np.allclose(np.diag(a)[:3], HR_SPACING[::-1])
    assert np.all(np.mod(a[:3, 3], 0.25) == 0)
    assert np.array_equal(a[:3, 3].astype(np.float32).astype(np.float64), a[:3, 3])
    centre = a @ np.array([72, 72, 32, 1.0])
    assert np.allclose(centre[:3], 0.0)


# -- anatomy -----------------------------------------------------------------------------------
def test_labels_canonical_and_all_present(subjects):
    for p, sub in subjects.items():
        for phase in ("ed", "es"):
            values = set(np.unique(sub[phase].labels.array).tolist())
            assert values == {0, LV, MYO, RV, RVW}, (p, phase, values)
            lab = sub[phase].labels.array
            edges = [lab[0], lab[-1], lab[:, 0], lab[:, -1], lab[:, :, 0], lab[:, :, -1]]
            assert not any(e.any() for e in edges), f"{p} {phase}: the heart touches the grid border"


RANGES = {  # LV EDV (mL), LV EF, from the task's physiological targets
    "NOR": ((110, 170), (0.55, 0.70)),
    "DCM": ((220, 350), (0.15, 0.35)),
    "HCM": ((60, 140), (0.65, 0.80)),
    "MINF": ((120, 240), (0.30, 0.45)),
    "RV": ((70, 160), (0.50, 0.70)),
}


@pytest.mark.parametrize("pathology", PATHOLOGIES)
def test_volumes_and_ef_in_pathology_ranges(pathology):
    (lo, hi), (ef_lo, ef_hi) = RANGES[pathology]
    for seed in range(3):
        shape = sample_shape(pathology, rng=seed)
        ed, es = _labels(shape, "ed"), _labels(shape, "es")
        edv, esv = _volume_ml(ed, LV), _volume_ml(es, LV)
        assert lo <= edv <= hi, (pathology, seed, edv)
        assert ef_lo <= (edv - esv) / edv <= ef_hi, (pathology, seed, edv, esv)
        # ES: the myocardium keeps its volume, the RV contracts, the base descends.
        assert _volume_ml(es, MYO) == pytest.approx(_volume_ml(ed, MYO), rel=0.04)
        assert _volume_ml(es, RV) < _volume_ml(ed, RV)
        top = lambda lab: np.nonzero((lab == LV).any(axis=(1, 2)))[0].max()  # noqa: E731
        assert top(es) < top(ed)
        if pathology == "RV":
            assert 200 <= _volume_ml(ed, RV) <= 300
            rv_ef = 1 - _volume_ml(es, RV) / _volume_ml(ed, RV)
            assert 0.15 <= rv_ef <= 0.40


def _mid_wall_thickness(labels: np.ndarray) -> float:
    """Mean LV wall thickness (mm) on the mid slice from areas: sqrt(epi/pi) - sqrt(endo/pi)."""
    zs = np.nonzero((labels == MYO).any(axis=(1, 2)))[0]
    z = (zs.min() + zs.max()) // 2
    px = HR_SPACING[1] * HR_SPACING[2]
    endo = np.count_nonzero(labels[z] == LV) * px
    epi = endo + np.count_nonzero(labels[z] == MYO) * px
    return float(np.sqrt(epi / np.pi) - np.sqrt(endo / np.pi))


def test_pathologies_differ_as_expected(subjects):
    info = {p: s["ed"].info for p, s in subjects.items()}
    thick = {p: _mid_wall_thickness(s["ed"].labels.array) for p, s in subjects.items()}
    assert info["DCM"]["lv_volume_ml"] > info["NOR"]["lv_volume_ml"] > info["HCM"]["lv_volume_ml"]
    assert thick["HCM"] > 13.0 and thick["HCM"] > thick["NOR"] > thick["DCM"]
    assert 7.0 < thick["NOR"] < 11.5 and thick["DCM"] < 7.5
    assert info["RV"]["rv_volume_ml"] > 1.3 * info["NOR"]["rv_volume_ml"]
    assert info["DCM"]["lv_ef"] < info["MINF"]["lv_ef"] < info["NOR"]["lv_ef"] < info["HCM"]["lv_ef"]
    assert info["HCM"]["myo_volume_ml"] > 1.5 * info["NOR"]["myo_volume_ml"]


def test_infarct_thins_a_sector_and_rv_flattens_the_septum():
    shape = sample_shape("MINF", rng=0)
    t = ed_geometry(shape).epi_radius - ed_geometry(shape).endo_radius
    assert t.min() < 0.6 * t.max()
    plain = replace(shape, infarct_width=0.0, infarct_thinning=0.0, infarct_hypokinesis=0.0, lv_ef=0.40)
    # Without the akinetic sector the same EF needs less contraction elsewhere.
    s_inf = es_geometry(shape).endo_radius / ed_geometry(shape).endo_radius
    s_plain = es_geometry(plain).endo_radius / ed_geometry(plain).endo_radius
    assert s_inf.max() > s_plain.max() + 0.1
    rv = sample_shape("RV", rng=0)
    r = ed_geometry(rv).endo_radius
    septum = np.argmin(np.abs(np.angle(np.exp(1j * (np.linspace(-np.pi, np.pi, r.size, endpoint=False)
                                                     - np.deg2rad(rv.septal_angle))))))
    assert r[septum] < 0.8 * r.max()  # D-shape: the septal radius is cut short


# -- landmarks ---------------------------------------------------------------------------------
@pytest.mark.parametrize("pathology", PATHOLOGIES)
def test_landmarks_lie_on_the_anatomy(subjects, pathology):
    for phase in ("ed", "es"):
        ph = subjects[pathology][phase]
        lab, vol = ph.labels.array, ph.labels
        lm = dict(zip(LANDMARK_NAMES, ph.landmarks.positions))
        assert np.all(np.isfinite(ph.landmarks.positions)) and np.all(ph.landmarks.confidence == 1.0)
        myo, rv, lv = (_world_of(vol, lab == v) for v in (MYO, RV, LV))
        # Insertion points: on the LV epicardium, next to the RV cavity (at the thin tip of
        # the crescent the nearest RV voxel centre can be a voxel or two away); anterior has
        # the larger y.
        for name in ("rv_insert_anterior", "rv_insert_inferior"):
            assert _dist(myo, lm[name]) < 1.6 and _dist(rv, lm[name]) < 3.5, (phase, name)
        assert lm["rv_insert_anterior"][1] > lm["rv_insert_inferior"][1]
        # RV lateral: on the RV cavity boundary, farther from the LV than the insertions.
        assert _dist(rv, lm["rv_lateral"]) < 1.6
        centre = 0.5 * (lm["apex"] + lm["mitral_valve"])
        far = np.linalg.norm((lm["rv_lateral"] - centre)[:2])
        assert far > np.linalg.norm((lm["rv_insert_anterior"] - centre)[:2]) + 5.0
        # LV lateral: inside the myocardium, on the side away from the RV.
        k = np.round(vol.world_to_index(lm["lv_lateral"])).astype(int)
        assert lab[tuple(k)] == MYO, phase
        rv_c = rv.mean(axis=0)
        assert np.dot((lm["lv_lateral"] - centre)[:2], (rv_c - centre)[:2]) < 0
        # Apex: the lowest myocardium, within a few mm.
        z_low = myo[:, 2].min()
        assert abs(lm["apex"][2] - z_low) < 3.0
        low = myo[myo[:, 2] < z_low + 1.0]
        assert np.linalg.norm(low.mean(axis=0)[:2] - lm["apex"][:2]) < 5.0
        # Mitral valve: in the LV cavity near its top (the basal plane).
        assert _dist(lv, lm["mitral_valve"]) < 2.5  # the basal plane lies up to one slice above
        assert lv[:, 2].max() - 10.0 < lm["mitral_valve"][2] <= lv[:, 2].max() + 2.0


# -- appearance --------------------------------------------------------------------------------
def test_image_contrast(subjects):
    for p, sub in subjects.items():
        img, lab = sub["ed"].image.array.astype(float), sub["ed"].labels.array
        blood = img[lab == LV].mean()
        assert blood > 2.0 * img[lab == MYO].mean(), p
        assert img[lab == RV].mean() > 2.0 * img[lab == RVW].mean(), p
        assert 0 <= img.min() and img.max() < 3000 and 600 < blood < 1500
        air = img[:, -2:, :]  # anterior rows lie outside the body
        assert air.mean() < 100


# -- LR stacks ---------------------------------------------------------------------------------
def test_lr_stack_geometry_shifts_and_zero_slices():
    sub = make_subject(11, pathology="NOR", lr=True)
    ed = sub["ed"]
    assert ed.lr_image.spacing == pytest.approx((10.0, 1.25, 1.25))
    n = ed.lr_image.shape[0]
    assert 3 <= n < ed.image.shape[0] and ed.lr_labels.shape == ed.lr_image.shape
    art = ed.info["lr"]
    assert art == sub["es"].info["lr"]  # same slices and shifts in both phases
    k0 = art["hr_slices"][0]
    assert np.allclose(ed.lr_image.index_to_world([0, 0, 0]), ed.image.index_to_world([k0, 0, 0]))
    assert np.allclose(ed.lr_image.index_to_world([1, 0, 0]), ed.image.index_to_world([k0 + 5, 0, 0]))
    heart = np.nonzero(np.isin(ed.labels.array, (LV, MYO)).any(axis=(1, 2)))[0]
    assert art["hr_slices"][0] > heart.min()  # coverage is incomplete at the apex
    json.dumps(ed.info)


def test_simulate_lr_known_shift_and_zero_fill(subjects):
    ph = subjects["NOR"]["ed"]
    art = LRArtefacts(hr_slices=(20, 25, 30, 35), shifts_mm=((2.5, 0.0), (0.0, -3.75), (0.0, 0.0), (0.0, 0.0)),
                      zero_slices=(3,), sigma_mm=0.0)
    img_v, lab_v = simulate_lr(ph.image, ph.labels, art)
    img, lab = img_v.array, lab_v.array
    assert img_v.spacing == pytest.approx((10.0, 1.25, 1.25)) and lab_v.kind == "labels"
    hr_lab, hr_img = ph.labels.array, ph.image.array
    assert np.array_equal(lab[0, 2:], hr_lab[20, :-2])  # +2.5 mm = +2 voxels along y
    assert np.array_equal(lab[1, :, :-3], hr_lab[25, :, 3:])  # -3.75 mm = -3 voxels along x
    assert not np.array_equal(lab[0], hr_lab[20])
    assert np.array_equal(lab[2], hr_lab[30]) and np.array_equal(img[2], hr_img[30])
    assert not img[3].any() and not lab[3].any()
    assert img.dtype == np.int16 and lab.dtype == np.uint8
    # The through-plane blur (sigma 4 mm) mixes neighbouring slices.
    blurred, _ = simulate_lr(ph.image, ph.labels, replace(art, sigma_mm=4.0))
    assert not np.array_equal(blurred.array[2], hr_img[30])
    assert np.abs(blurred.array[2].astype(float) - hr_img[30]).mean() < 150
    with pytest.raises(ValueError, match="equally spaced"):
        LRArtefacts(hr_slices=(1, 3, 4), shifts_mm=((0, 0),) * 3)


def test_sample_lr_artefacts_ranges():
    for seed in range(20):
        a = sample_lr_artefacts(seed, n_hr_slices=64, heart_range=(5, 55))
        assert a.step == 5 and 6 <= a.hr_slices[0] <= 14 and a.hr_slices[-1] <= 55
        assert np.abs(np.asarray(a.shifts_mm)).max() <= 5.0
        assert all(0 < k < len(a.hr_slices) - 1 for k in a.zero_slices)
    assert sample_lr_artefacts(3, heart_range=(5, 55)) == sample_lr_artefacts(3, heart_range=(5, 55))


# -- speed and files ---------------------------------------------------------------------------
def test_generation_time():
    make_subject(1)  # warm imports
    t0 = time.perf_counter()
    make_subject(2)
    assert time.perf_counter() - t0 < 4.0  # target < 2 s on 2 cores; measured ~0.35 s


def test_write_subject_round_trip(tmp_path):
    io = pytest.importorskip("napari_cardiac_priors.io")
    if not hasattr(io, "write_volume"):
        pytest.skip("napari_cardiac_priors.io.write_volume is not there yet")
    sub = make_subject(5, pathology="MINF", lr=True)
    paths = write_subject(sub, tmp_path, 3)
    names = sorted(p.name for p in paths)
    expected = sorted(f"phantom_003_{ph}_{kind}" for ph in ("ed", "es") for kind in (
        "image.nii.gz", "labels.nii.gz", "landmarks.json", "info.json", "lr_image.nii.gz", "lr_labels.nii.gz"))
    assert names == expected and all(p.is_file() for p in paths)
    assert not list(tmp_path.glob(".*"))  # no temporary files left
    img = io.read_volume(tmp_path / "phantom_003_ed_image.nii.gz")
    lab = io.read_volume(tmp_path / "phantom_003_es_labels.nii.gz")
    assert np.array_equal(img.array, sub["ed"].image.array) and np.allclose(img.affine, sub["ed"].image.affine)
    assert lab.kind == "labels" and np.array_equal(lab.array, sub["es"].labels.array)
    lr = io.read_volume(tmp_path / "phantom_003_ed_lr_labels.nii.gz")
    assert np.allclose(lr.affine, sub["ed"].lr_labels.affine)
    lm = io.read_landmarks(tmp_path / "phantom_003_ed_landmarks.json")
    assert np.allclose(lm.positions, sub["ed"].landmarks.positions)
    info = json.loads((tmp_path / "phantom_003_es_info.json").read_text())
    assert info["pathology"] == "MINF" and info["phase"] == "es" and info["lr"]["sigma_mm"] == 4.0
    with pytest.raises(ValueError, match="index"):
        write_subject(sub, tmp_path, -1)


def test_committed_sample_data_is_regenerated_exactly():
    """sample_data/ is `cardiac-priors phantom sample_data --n 1 --seed 0 --pathology NOR --lr`."""
    from pathlib import Path

    from napari_cardiac_priors.io import read_landmarks, read_volume
    from napari_cardiac_priors.phantom import make_subject, subject_seed

    folder = Path(__file__).resolve().parents[1] / "sample_data"
    subject = make_subject(subject_seed(0, 0), pathology="NOR", lr=True)
    for phase, ph in subject.items():
        for part, vol in (("image", ph.image), ("labels", ph.labels), ("lr_image", ph.lr_image), ("lr_labels", ph.lr_labels)):
            stored = read_volume(folder / f"phantom_000_{phase}_{part}.nii.gz")
            np.testing.assert_array_equal(stored.array, vol.array)
            np.testing.assert_allclose(stored.affine, vol.affine, atol=1e-5)
        np.testing.assert_allclose(read_landmarks(folder / f"phantom_000_{phase}_landmarks.json").positions, ph.landmarks.positions)
