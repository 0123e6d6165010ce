"""The Refine widget end to end on a phantom: result on the HR grid, Accept / Undo / Reject."""

import numpy as np
import pytest

from napari_cardiac_priors.phantom import make_subject
from napari_cardiac_priors.volume import resample

pytestmark = pytest.mark.gui


def test_refine_widget_end_to_end(make_napari_viewer, qtbot, monkeypatch, tmp_path):
    import napari.utils.notifications as notifications
    from napari.layers import Layer

    from napari_cardiac_priors._napari.landmark_points import LandmarkPoints
    from napari_cardiac_priors._napari.layers import volume_layer_data
    from napari_cardiac_priors._napari.refine_widget import RefineWidget

    errors = []
    monkeypatch.setattr(notifications, "show_error", errors.append)
    ph = make_subject(9801, pathology="NOR", lr=True)["ed"]
    viewer = make_napari_viewer()
    viewer.add_layer(Layer.create(*volume_layer_data(ph.lr_image, name="lr")))
    target = viewer.add_layer(Layer.create(*volume_layer_data(resample(ph.labels, ph.lr_image), name="lr labels")))
    before = target.data.copy()
    points = LandmarkPoints(viewer, ph.landmarks)
    widget = RefineWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget._labels.value = target
    widget._points.value = points.layer
    assert widget._atlases.value == "auto"  # the phantom's labels have an RV wall: the phantom atlases fit them
    widget._n.value = 2
    widget._device.value = "cpu"
    widget._run.clicked.emit()  # the user presses "Refine"
    qtbot.waitUntil(lambda: widget._run.enabled, timeout=120000)
    assert not errors, errors
    result = viewer.layers["lr labels refined"]
    np.testing.assert_allclose(result.scale, (2.0, 1.25, 1.25))
    assert {1, 2, 3, 4} <= set(np.unique(result.data))
    np.testing.assert_array_equal(target.data, before)  # the input was not touched
    assert widget._progress.value == 100 and "done" in widget._status.value and "atlases-phantom" in widget._status.value
    assert result.metadata["refine"]["atlas_set"] == "atlases-phantom"
    # the refined heart as smooth surfaces, coloured by label, saved as a mesh and read back
    from napari_cardiac_priors.io import read_mesh

    surfaces = {layer.metadata["surface"]: layer for layer in widget.surface_layers}
    assert set(surfaces) == {"lv_endocardium", "lv_epicardium", "rv"}
    endo = surfaces["lv_endocardium"]
    viewer.layers.selection = {endo}
    viewer.layers.save(str(tmp_path / "endo.stl"), selected=True, plugin="napari-cardiac-priors")
    v, f = read_mesh(tmp_path / "endo.stl")
    assert len(f) == len(endo.data[1])
    np.testing.assert_allclose(np.sort(v[:, 2])[[0, -1]], np.sort(endo.data[0][:, 0])[[0, -1]], atol=1e-3)  # RAS <-> (S, A, R)
    # Accept replaces the target layer; Undo brings it back; Reject removes the result
    widget._accept.clicked.emit()
    assert "lr labels refined" not in [layer.name for layer in viewer.layers] and viewer.layers["lr labels"] is result
    widget._undo.clicked.emit()
    assert viewer.layers["lr labels"] is target and viewer.layers["lr labels refined"] is result
    widget._reject.clicked.emit()
    assert result not in viewer.layers and target in viewer.layers
    assert not any(layer in viewer.layers for layer in surfaces.values())


def test_layer_choices_follow_the_viewer_without_touching_a_combo_box(make_napari_viewer):
    from napari_cardiac_priors._napari.landmark_points import LandmarkPoints
    from napari_cardiac_priors._napari.refine_widget import RefineWidget
    from napari_cardiac_priors._napari.segment_widget import SegmentWidget

    ph = make_subject(9801, pathology="NOR", lr=True)["ed"]
    viewer = make_napari_viewer()
    first = viewer.add_image(ph.lr_image.array, name="first")
    segment, refine = SegmentWidget(viewer), RefineWidget(viewer)
    assert segment._image.value is first  # the only image
    second = viewer.add_image(ph.lr_image.array, name="second")
    assert segment._image.value is second  # the newest
    segment._image.value = first  # a user's choice stays when another image arrives...
    third = viewer.add_image(ph.lr_image.array, name="third")
    assert segment._image.value is first
    viewer.layers.remove(first)  # ...until its layer goes
    assert segment._image.value in (second, third)
    assert refine._labels.value is None and refine._points.value is None
    labels = viewer.add_labels(resample(ph.labels, ph.lr_image).array, name="labels")
    points = LandmarkPoints(viewer, ph.landmarks)
    assert refine._labels.value is labels and refine._points.value is points.layer
    result = viewer.add_labels(np.zeros_like(labels.data), name="refined", metadata={"refine": {}})
    assert refine._labels.value is labels and result is not None  # a refinement result is not a target
