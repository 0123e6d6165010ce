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
