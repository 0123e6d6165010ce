"""The Cohort widget on a finished run: table, flagged-first order, double-click opens a subject."""

import numpy as np
import pytest

from napari_cardiac_priors.cohort import BatchOptions, collect_results, process_subject, read_cohort, write_tables
from napari_cardiac_priors.io import write_volume
from napari_cardiac_priors.phantom import make_subject

pytestmark = pytest.mark.gui


@pytest.fixture
def run_dir(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for seed in (9711, 9712):
        subject = make_subject(seed, lr=True)
        for phase in ("ed", "es"):
            write_volume(subject[phase].lr_image, data / f"c{seed}_{phase}_image.nii.gz")
            write_volume(subject[phase].lr_labels, data / f"c{seed}_{phase}_labels.nii.gz")
    out = tmp_path / "run"
    for s in read_cohort(data):
        assert process_subject(s, out, BatchOptions(model="sslln-lr-phantom"))["status"] == "done"
    write_tables(out, collect_results(out), [{"subject": "c9999", "error": "unreadable"}])
    return out


def test_cohort_widget_lists_and_opens_subjects(make_napari_viewer, qtbot, monkeypatch, run_dir):
    import napari.utils.notifications as notifications

    from napari_cardiac_priors._napari.cohort_widget import CohortWidget

    errors = []
    monkeypatch.setattr(notifications, "show_error", errors.append)
    viewer = make_napari_viewer()
    widget = CohortWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget._run.value = run_dir
    widget._open.clicked.emit()
    assert not errors, errors
    assert sorted(widget.row_ids) == ["c9711", "c9712"]
    assert widget.table.shape == (2, 9)
    assert "1 failed" in widget._status.value
    # the user double-clicks the second row, ES phase
    widget._phase.value = "es"
    subject = widget.row_ids[1]
    widget.table.native.cellDoubleClicked.emit(1, 0)
    names = [layer.name for layer in viewer.layers]
    assert f"{subject} es image" in names and f"{subject} es labels" in names and f"{subject} es reference labels" in names
    points = viewer.layers[f"{subject} es landmarks"]
    assert len(points.data) == int(widget.landmark_points.model_landmarks.valid.sum()) > 0
    labels = viewer.layers[f"{subject} es labels"]
    image = viewer.layers[f"{subject} es image"]
    assert labels.data.shape == image.data.shape
    np.testing.assert_allclose(labels.scale, image.scale)
    assert set(np.unique(labels.data)) <= {0, 1, 2, 3, 4}


def test_cohort_widget_flagged_only_and_bad_folder(make_napari_viewer, monkeypatch, run_dir, tmp_path):
    import csv

    import napari.utils.notifications as notifications

    from napari_cardiac_priors._napari.cohort_widget import CohortWidget

    rows = list(csv.DictReader(open(run_dir / "measures.csv", newline="")))
    n_flagged = sum(r["qc_flag"] != "ok" for r in rows)
    errors = []
    monkeypatch.setattr(notifications, "show_error", errors.append)
    widget = CohortWidget(make_napari_viewer())
    assert widget.open_run(run_dir)
    widget._flagged.value = True
    assert len(widget.row_ids) == n_flagged
    assert not widget.open_run(tmp_path / "empty")
    assert errors and "no measures.csv" in errors[-1]
    assert widget.run_dir == run_dir  # the open run is kept
