"""The Segment widget and the editable landmark points, driven as a user would."""

import numpy as np
import pytest

from helpers import install_tiny_sslln
from napari_cardiac_priors.io import read_landmarks
from napari_cardiac_priors.phantom import make_subject

pytestmark = pytest.mark.gui
PLUGIN = "napari-cardiac-priors"


@pytest.fixture(scope="module")
def phantom():
    return make_subject(21, pathology="NOR", lr=True)["ed"]


def _drag(layer, index, new_world):
    """What a mouse drag of point ``index`` does in select mode (napari's own move)."""
    layer.selected_data = {index}
    layer._drag_start = None
    layer._move({index}, np.array(layer.data[index]))  # press on the point
    layer._move({index}, np.asarray(new_world))  # drag it, release
    layer._drag_start = None


def test_landmark_points_edit_rules(make_napari_viewer, qtbot, tmp_path, phantom, notes):
    from napari_cardiac_priors._napari.landmark_points import LandmarkPoints

    viewer = make_napari_viewer()
    points = LandmarkPoints(viewer, phantom.landmarks)
    layer = points.layer
    assert len(layer.data) == 6 and list(layer.features["source"]) == ["phantom"] * 6
    apex = list(layer.features["name"]).index("apex")
    target = layer.data[apex] + np.array([0.0, 4.0, -3.0])
    _drag(layer, apex, target)
    assert layer.features["source"][apex] == "user"
    assert (layer.features["source"] == "user").sum() == 1
    gold = np.array([1.0, 215 / 255, 0.0, 1.0])
    np.testing.assert_allclose(layer.border_color[apex], gold, atol=1e-3)  # a user's correction stands out
    assert not np.allclose(layer.border_color[(apex + 1) % 6], gold, atol=1e-3)
    # save through the writer: the moved point is stored in world RAS mm
    viewer.layers.selection = {layer}
    viewer.layers.save(str(tmp_path / "corrected.json"), selected=True, plugin=PLUGIN)
    saved = read_landmarks(tmp_path / "corrected.json")
    np.testing.assert_allclose(saved.positions[4], target[::-1], atol=1e-6)
    assert saved.source[4] == "user"
    # a seventh point is refused, as is a deletion
    layer.add(layer.data[0] + 5)
    assert len(layer.data) == 6 and notes and "fixed" in notes[-1][1]
    layer.selected_data = {0}
    layer.remove_selected()
    assert len(layer.data) == 6 and "cannot be deleted" in notes[-1][1]
    np.testing.assert_allclose(layer.data[apex], target)  # the user's correction survived
    # reset to model
    points.reset()
    np.testing.assert_allclose(points.landmarks().positions, phantom.landmarks.positions, atol=1e-9)
    assert set(layer.features["source"]) == {"phantom"}


def test_missing_landmark_can_be_added_by_the_user(make_napari_viewer, phantom):
    from napari_cardiac_priors._napari.landmark_points import LandmarkPoints
    from napari_cardiac_priors.landmarks import Landmarks

    pos = phantom.landmarks.positions.copy()
    pos[1] = np.nan  # the model missed rv_lateral
    viewer = make_napari_viewer()
    points = LandmarkPoints(viewer, Landmarks(pos, source=("model",) * 6))
    assert len(points.layer.data) == 5
    points.layer.add(phantom.landmarks.positions[1][::-1])
    lm = points.landmarks()
    np.testing.assert_allclose(lm.positions[1], phantom.landmarks.positions[1])
    assert lm.source[1] == "user" and len(points.layer.data) == 6


def test_segment_widget_runs_in_a_worker(make_napari_viewer, qtbot, tmp_path, phantom, notes):
    from napari_cardiac_priors._napari.layers import volume_layer_data
    from napari_cardiac_priors._napari.segment_widget import SegmentWidget
    from napari.layers import Layer

    name = install_tiny_sslln(tmp_path)
    viewer = make_napari_viewer()
    image = viewer.add_layer(Layer.create(*volume_layer_data(phantom.lr_image, name="lr")))
    widget = SegmentWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget._image.value = image
    widget._model.value = name
    assert "untrained test model" in widget._about.value and "CC0" in widget._about.value
    widget._device.value = "cpu"
    widget._run.clicked.emit()  # the user presses "Segment"
    assert widget._cancel.enabled
    qtbot.waitUntil(lambda: widget._run.enabled, timeout=60000)
    labels = viewer.layers["lr labels (tiny-sslln)"]
    assert labels.data.shape == phantom.lr_image.shape
    np.testing.assert_allclose(labels.scale, image.scale)
    np.testing.assert_allclose(labels.affine.affine_matrix, image.affine.affine_matrix)
    assert widget._progress.value == 3 and "done" in widget._status.value


def test_segment_widget_bad_input(make_napari_viewer, qtbot, tmp_path, notes):
    from napari_cardiac_priors._napari.segment_widget import SegmentWidget

    name = install_tiny_sslln(tmp_path)
    viewer = make_napari_viewer()
    image = viewer.add_image(np.zeros((30, 64, 64), np.float32), scale=(10, 1.25, 1.25), name="too many slices")
    widget = SegmentWidget(viewer)
    widget._image.value = image
    widget._model.value = name
    widget.run()
    qtbot.waitUntil(lambda: widget._run.enabled, timeout=60000)
    assert notes and notes[-1][0] == "error" and "at most 16" in notes[-1][1]
    assert [layer.name for layer in viewer.layers] == ["too many slices"]


def test_model_widget_runs_acnn_seg_and_sr_on_the_hr_grid(make_napari_viewer, qtbot, tmp_path, phantom, notes):
    from napari.layers import Layer

    from helpers import install_tiny_acnn, install_tiny_tl
    from napari_cardiac_priors._napari.layers import volume_layer_data
    from napari_cardiac_priors._napari.segment_widget import SegmentWidget

    seg = install_tiny_acnn(tmp_path, name="tiny-acnn-seg")
    sr = install_tiny_acnn(tmp_path, name="tiny-acnn-sr", task="super-resolution")
    tl = install_tiny_tl(tmp_path)
    viewer = make_napari_viewer()
    image = viewer.add_layer(Layer.create(*volume_layer_data(phantom.lr_image, name="lr")))
    widget = SegmentWidget(viewer)
    assert {seg, sr} <= set(widget._model.choices) and tl in widget._shape.choices
    widget._image.value = image
    widget._device.value = "cpu"
    widget._model.value = sr
    widget._run.clicked.emit()
    qtbot.waitUntil(lambda: widget._run.enabled, timeout=60000)
    hr = viewer.layers[f"lr SR ({sr})"]
    z = phantom.lr_image.shape[0]
    assert hr.data.shape == (5 * z, 144, 144) and np.allclose(hr.scale, (2.0, 1.25, 1.25))
    widget._model.value = seg
    widget._shape.value = tl
    widget._run.clicked.emit()
    qtbot.waitUntil(lambda: widget._run.enabled, timeout=60000)
    labels = viewer.layers[f"lr labels ({seg})"]
    assert labels.data.shape == (5 * z, 144, 144) and np.allclose(labels.scale, (2.0, 1.25, 1.25))
    assert not [n for n in notes if n[0] == "error"], notes
    assert labels.data.any()  # the untrained model labels something: the readout must be there
    assert "Mahalanobis distance" in widget._plausibility.value and "training shapes" in widget._plausibility.value


def test_model_menu_says_what_each_model_is_for(make_napari_viewer):
    """The bundled default for real scans comes first; phantom and super-resolution models say so."""
    from napari_cardiac_priors._napari.segment_widget import SegmentWidget
    from napari_cardiac_priors.conventions import DEFAULT_MODEL

    widget = SegmentWidget(make_napari_viewer())
    items = [widget._model.native.itemText(i) for i in range(widget._model.native.count())]
    assert widget._model.value == DEFAULT_MODEL and items[0] == f"{DEFAULT_MODEL}  (real scans)"
    assert "sslln-lr-phantom  (phantoms only)" in items
    assert "acnn-sr-phantom  (super-resolution, phantoms only)" in items
    real = [i for i, t in enumerate(items) if t.endswith("(real scans)")]
    assert real == list(range(len(real)))  # every real-scan model before any phantom model
