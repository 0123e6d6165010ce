"""Workflows: what a user does to one subject, written once for the CLI, widgets and cohorts."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cardiac_priors.conventions import HR_SPACING
from napari_cardiac_priors.phantom import make_subject
from napari_cardiac_priors.volume import resample
from napari_cardiac_priors.workflows.refine import cached_atlases, refine_subject


def test_refine_subject_measures_landmarks_on_the_labels_when_too_few_are_known():
    ph = make_subject(9802, pathology="NOR", lr=True)["ed"]
    target = resample(ph.labels, ph.lr_image)
    done = refine_subject(target, None, n_atlases=2, surfaces=True)
    assert done.atlas_set == "atlases-phantom"  # auto: the target has an RV wall
    assert done.notes[0].startswith("no landmarks were given")
    assert set(np.asarray(done.landmarks.source)[done.landmarks.valid]) == {"derived"}
    assert done.result.labels.spacing == pytest.approx(HR_SPACING) and len(done.result.selected) == 2
    assert {m.name for m in done.surfaces} == {"lv_endocardium", "lv_epicardium", "rv"}
    given = refine_subject(target, ph.landmarks, atlases="atlases-phantom", n_atlases=2)
    assert given.notes == [] and list(given.landmarks.source) == list(ph.landmarks.source)


def test_cached_atlases_load_a_folder_again_when_it_changes(tmp_path):
    import os

    from napari_cardiac_priors.io import write_landmarks, write_volume
    from napari_cardiac_priors.registry.atlases import load_atlases

    a, b = load_atlases("atlases-phantom")[:2]
    write_volume(a.labels, tmp_path / "a_labels.nii.gz")
    write_landmarks(a.landmarks, tmp_path / "a_landmarks.json")
    first = cached_atlases(str(tmp_path))
    assert len(first) == 1 and cached_atlases(str(tmp_path)) is first  # loaded once
    write_volume(b.labels, tmp_path / "b_labels.nii.gz")
    write_landmarks(b.landmarks, tmp_path / "b_landmarks.json")
    later = os.stat(tmp_path).st_mtime_ns + 10**9
    os.utime(tmp_path, ns=(later, later))  # (a coarse file-system clock could hide the change)
    assert len(cached_atlases(str(tmp_path))) == 2


def test_segment_image_returns_notes_instead_of_warnings():
    import warnings

    from napari_cardiac_priors.volume import Volume
    from napari_cardiac_priors.workflows.segment import segment_image

    rng = np.random.default_rng(0)
    noise = Volume(rng.random((8, 96, 96)).astype(np.float32) * 3000, spacing=(10.0, 1.5, 1.5))  # no heart, odd intensities
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        done = segment_image(noise, "unet-acdc")
    assert not caught  # nothing leaks as a warning: the notes carry it
    assert any("no heart" in n for n in done.notes) and len(done.notes) == len(set(done.notes))
    assert not done.result.labels.array.any() and done.plausibility is None


def _box_labels(lv_slices: int, *, spacing=(10.0, 1.0, 1.0)):
    """LV cavity of ``lv_slices`` x 10 x 10 voxels (1 mL per slice at 10 x 1 x 1 mm) in a
    myocardial ring of 96 voxels per slice, and an RV cavity of 5 x 10 x 5 voxels (2.5 mL)."""
    from napari_cardiac_priors.volume import Volume

    a = np.zeros((8, 30, 30), np.uint8)
    a[1 : 1 + lv_slices, 8:22, 8:22] = 2
    a[1 : 1 + lv_slices, 10:20, 10:20] = 1
    a[1:6, 8:18, 23:29] = 3
    a[1:6, 8:18, 23:24] = 0
    return Volume(a, spacing=spacing, kind="labels")


def test_measure_files_pairs_ed_and_es_by_name_and_gives_ejection_fractions(tmp_path):
    from napari_cardiac_priors.io import write_volume
    from napari_cardiac_priors.workflows.measure import measure_files, phase_partner, subject_row

    write_volume(_box_labels(6), tmp_path / "p1_ed_seg.nii.gz")
    write_volume(_box_labels(3), tmp_path / "p1_es_seg.nii.gz")
    write_volume(_box_labels(4), tmp_path / "p2_ed_seg.nii.gz")  # no ES partner
    rows = {r["file"]: r for r in measure_files(sorted(tmp_path.iterdir()))}
    ed, es, lone = rows["p1_ed_seg.nii.gz"], rows["p1_es_seg.nii.gz"], rows["p2_ed_seg.nii.gz"]
    assert ed["lv_ml"] == pytest.approx(6.0) and es["lv_ml"] == pytest.approx(3.0)
    assert ed["lv_ef"] == pytest.approx(50.0) and ed["rv_ef"] == pytest.approx(0.0)
    assert "lv_ef" not in es and "lv_ef" not in lone
    assert ed["lv_mass_g"] == pytest.approx(6 * (196 - 100) * 10 / 1000 * 1.05)  # 10 mm^3 voxels, 1.05 g/mL
    assert phase_partner("P1_ED_seg") == "p1_es_seg" and phase_partner("bed_scan") is None
    row = subject_row("p1", {"ed": {"lv_ml": 6.0, "rv_ml": 5.0, "lv_mass_g": 1.0}})
    assert row["lv_edv_ml"] == 6.0 and np.isnan(row["lv_esv_ml"]) and np.isnan(row["lv_ef"]) and "qc_flag" not in row
    with pytest.raises(ValueError, match="phases must be among"):
        subject_row("p1", {"mid": {}})


def test_measure_refuses_a_cine_stack():
    from napari_cardiac_priors.errors import InputError
    from napari_cardiac_priors.volume import Volume
    from napari_cardiac_priors.workflows.measure import measure_labels

    with pytest.raises(InputError, match="cine.nii.gz: measure takes 3D label maps"):
        measure_labels(Volume(np.zeros((2, 3, 4, 4), np.uint8), spacing=(8.0, 1.0, 1.0), kind="labels"), name="cine.nii.gz")


def test_write_table_never_replaces_a_file_unless_told(tmp_path):
    from napari_cardiac_priors.errors import InputError
    from napari_cardiac_priors.workflows.measure import write_table

    target = tmp_path / "m.csv"
    target.write_text("keep me")
    rows = [{"file": "a", "lv_ml": 1.234}]
    with pytest.raises(InputError, match="exists"):
        write_table(rows, target)
    assert target.read_text() == "keep me"
    write_table(rows, target, overwrite=True)
    assert target.read_text().splitlines()[1].startswith("a,1.23,")


def test_evaluate_matches_cases_resamples_and_summarises(tmp_path):
    from napari_cardiac_priors.errors import InputError
    from napari_cardiac_priors.io import write_volume
    from napari_cardiac_priors.workflows.evaluate import evaluate_folders, evaluate_pair

    ref = _box_labels(6, spacing=(10.0, 1.0, 1.0))
    half = type(ref)(ref.array.repeat(2, 1).repeat(2, 2), spacing=(10.0, 0.5, 0.5), kind="labels")  # finer grid
    structures, resampled = evaluate_pair(half, ref)
    assert resampled and structures["LV"]["dice"] == pytest.approx(1.0) and structures["RV"]["dice"] == pytest.approx(1.0)
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    pred.mkdir()
    gt.mkdir()
    write_volume(ref, gt / "case1_gt.nii.gz")
    write_volume(ref, pred / "case1_seg.nii.gz")
    shrunk = ref.with_array(np.where(ref.array == 1, 0, ref.array).astype(np.uint8))  # LV missed
    write_volume(ref, gt / "case2_gt.nii.gz")
    write_volume(shrunk, pred / "case2_seg.nii.gz")
    write_volume(ref, pred / "case3_seg.nii.gz")  # no reference
    result = evaluate_folders(pred, gt)
    assert result["n_cases"] == 2 and result["unmatched_pred"] == ["case3"]
    assert result["cases"]["case1"]["structures"]["LV"]["dice"] == pytest.approx(1.0)
    assert result["cases"]["case2"]["structures"]["LV"]["dice"] == pytest.approx(0.0)
    assert result["mean"]["LV"]["dice"] == pytest.approx(0.5) and result["mean"]["MYO"]["dice"] == pytest.approx(1.0)
    with pytest.raises(InputError, match="no prediction"):
        evaluate_folders(gt, pred / "..")


def test_qc_findings_and_flag():
    from napari_cardiac_priors.conventions import is_flagged
    from napari_cardiac_priors.workflows.qc import qc_flag, shape_finding, subject_findings

    phases = {"ed": {"qc": ["RV in 2 pieces"], "landmarks_missing": 0}, "es": {"qc": [], "landmarks_missing": 2}}
    found = subject_findings(phases, {"lv_ef": 120.0, "rv_ef": float("nan")},
                             {"ed": {"distance": 3.0, "percentile": 50.0}, "es": {"distance": 9.0, "percentile": 99.5}})
    assert found == ["ed: RV in 2 pieces", "es: 2 landmark(s) not found", "lv_ef 120 % out of (0, 100)",
                     "implausible shape (Mahalanobis distance 9.0, beyond 100 % of the training shapes)"]
    assert shape_finding({"distance": 5.0, "percentile": 98.9}) is None
    assert qc_flag([]) == "ok" and not is_flagged(qc_flag([])) and is_flagged(qc_flag(found))
    assert subject_findings({"ed": {"qc": [], "landmarks_missing": None}}, {"lv_ef": 55.0}) == []
