"""The napari side, driven as a user would: open files, use the loader widget, save layers."""

import numpy as np
import pytest

from napari_cardiac_priors.io import read_landmarks, read_volume, write_landmarks, write_volume
from napari_cardiac_priors.landmarks import Landmarks
from napari_cardiac_priors.volume import Volume

pytestmark = pytest.mark.gui
PLUGIN = "napari-cardiac-priors"


@pytest.fixture
def errors(monkeypatch):
    """Messages shown with napari's show_error during the test."""
    import napari.utils.notifications as notifications

    shown = []
    monkeypatch.setattr(notifications, "show_error", lambda msg: shown.append(str(msg)))
    return shown


def test_manifest_is_valid_and_discovered():
    import npe2

    pm = npe2.PluginManager.instance()
    pm.discover()
    mf = pm.get_manifest(PLUGIN)
    assert {w.display_name for w in mf.contributions.widgets} == {"Load cardiac stack", "Segment", "Refine", "Latent explorer", "Cohort"}
    assert {s.key for s in mf.contributions.sample_data} == {"phantom_hr", "phantom_lr"}


def test_get_reader_declines_without_raising(tmp_path):
    from napari_cardiac_priors._napari.reader import get_reader

    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "table.csv").write_text("a,b\n1,2\n")
    (tmp_path / "config.json").write_text('{"not": "landmarks"}')
    (tmp_path / "folder").mkdir()
    for p in ("notes.txt", "table.csv", "config.json", "folder", "missing.mha"[:0] or "missing.txt"):
        assert get_reader(str(tmp_path / p)) is None
    assert get_reader([str(tmp_path / "a.nii"), str(tmp_path / "b.nii")]) is None
    assert get_reader(str(tmp_path / "x.nii.gz")) is not None


def test_open_file_keeps_physical_scale(make_napari_viewer, tmp_path, image_volume, labels_volume):
    write_volume(image_volume, tmp_path / "stack.nii.gz")
    write_volume(labels_volume, tmp_path / "stack_seg.nii.gz")
    viewer = make_napari_viewer()
    viewer.open(str(tmp_path / "stack.nii.gz"), plugin=PLUGIN)
    viewer.open(str(tmp_path / "stack_seg.nii.gz"), plugin=PLUGIN)
    img, lab = viewer.layers["stack"], viewer.layers["stack_seg"]
    assert type(img).__name__ == "Image" and type(lab).__name__ == "Labels"
    np.testing.assert_allclose(img.scale, image_volume.spacing)
    # the same voxel of both layers lands on the same world point, the RAS point of the affine
    idx = np.array([3, 10, 12])
    np.testing.assert_allclose(img.data_to_world(idx), lab.data_to_world(idx))
    np.testing.assert_allclose(np.asarray(img.data_to_world(idx))[::-1], image_volume.index_to_world(idx), atol=1e-4)
    np.testing.assert_allclose(lab.colormap.map(np.array([1]))[0][:3], [0.90, 0.16, 0.16], atol=0.01)


def test_bad_file_gives_one_notification_and_no_layer(make_napari_viewer, tmp_path, errors):
    (tmp_path / "notes.nii").write_text("not an image " * 40)
    viewer = make_napari_viewer()
    viewer.open(str(tmp_path / "notes.nii"), plugin=PLUGIN)
    assert len(viewer.layers) == 0
    assert len(errors) == 1 and "notes.nii: not a readable NIfTI" in errors[0]


def _wait_for_worker(qtbot, widget):
    qtbot.waitUntil(lambda: widget.worker is not None and not widget.worker.is_running, timeout=20000)


def test_load_widget_opens_file_with_scale(make_napari_viewer, qtbot, tmp_path, image_volume):
    from napari_cardiac_priors._napari.load_widget import LoadStackWidget

    write_volume(image_volume, tmp_path / "case.nii.gz")
    viewer = make_napari_viewer()
    widget = LoadStackWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget._path.value = tmp_path / "case.nii.gz"
    widget._open.clicked.emit()  # the user presses "Open"
    qtbot.waitUntil(lambda: len(viewer.layers) == 1, timeout=20000)
    layer = viewer.layers[0]
    assert layer.name == "case"
    np.testing.assert_allclose(layer.scale, image_volume.spacing)
    assert "1.25" in widget._info.value and "orientation" in widget._info.value
    assert not widget._frame.enabled


def test_load_widget_cine_frames(make_napari_viewer, qtbot, tmp_path):
    from napari_cardiac_priors._napari.load_widget import LoadStackWidget

    cine = np.stack([np.full((4, 6, 8), t, np.int16) for t in range(5)])
    write_volume(Volume(cine, spacing=(10, 1.5, 1.5)), tmp_path / "cine.nii.gz")
    viewer = make_napari_viewer()
    widget = LoadStackWidget(viewer)
    widget.open(tmp_path / "cine.nii.gz")
    qtbot.waitUntil(lambda: len(viewer.layers) == 1, timeout=20000)
    layer = viewer.layers[0]
    assert layer.data.shape == (4, 6, 8) and widget._frame.enabled and widget._frame.max == 4
    widget._frame.value = 3
    assert np.all(layer.data == 3) and layer.name == "cine [frame 3]"
    np.testing.assert_allclose(layer.scale, (10, 1.5, 1.5))


def test_load_widget_bad_file_notifies(make_napari_viewer, qtbot, tmp_path, errors):
    from napari_cardiac_priors._napari.load_widget import LoadStackWidget

    import nibabel as nib

    nib.save(nib.Nifti1Image(np.zeros((5, 5), np.int16), np.eye(4)), tmp_path / "flat.nii.gz")
    viewer = make_napari_viewer()
    widget = LoadStackWidget(viewer)
    widget.open(tmp_path / "flat.nii.gz")
    qtbot.waitUntil(lambda: len(errors) == 1, timeout=20000)
    assert "is 2D" in errors[0] and len(viewer.layers) == 0
    assert widget._open.enabled or qtbot.waitUntil(lambda: widget._open.enabled, timeout=5000) is None


def test_write_labels_layer_and_read_back(make_napari_viewer, tmp_path, labels_volume):
    write_volume(labels_volume, tmp_path / "in_seg.nii.gz")
    viewer = make_napari_viewer()
    viewer.open(str(tmp_path / "in_seg.nii.gz"), plugin=PLUGIN)
    layer = viewer.layers[0]
    layer.data[0, 0, 0] = 2  # a user edit
    written = viewer.layers.save(str(tmp_path / "out_seg.nii.gz"), selected=False, plugin=PLUGIN)
    assert written == [str(tmp_path / "out_seg.nii.gz")]
    back = read_volume(tmp_path / "out_seg.nii.gz")
    np.testing.assert_allclose(back.affine, labels_volume.affine, atol=1e-5)
    expected = labels_volume.array.copy()
    expected[0, 0, 0] = 2
    np.testing.assert_array_equal(back.array, expected)


@pytest.mark.parametrize("suffix", [".json", ".csv", ".vtk"])
def test_landmark_points_round_trip(make_napari_viewer, tmp_path, suffix):
    pos = np.array([[10.0, -3.0, 40.0], [30.0, 12.0, 41.0], [12.0, -20.0, 39.5], [-25.0, 1.0, 40.0], [0.0, 0.0, -10.0], [2.0, 3.0, 60.0]])
    write_landmarks(Landmarks(pos, source=("model",) * 6), tmp_path / "lm.json")
    viewer = make_napari_viewer()
    viewer.open(str(tmp_path / "lm.json"), plugin=PLUGIN)
    points = viewer.layers[0]
    assert type(points).__name__ == "Points" and list(points.features["name"])[4] == "apex"
    np.testing.assert_allclose(points.data[:, ::-1], pos)  # napari world is reversed RAS
    viewer.layers.save(str(tmp_path / f"saved{suffix}"), selected=False, plugin=PLUGIN)
    np.testing.assert_allclose(read_landmarks(tmp_path / f"saved{suffix}").positions, pos)


def test_sample_data_lr_and_hr_overlay(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "phantom_lr")
    lr, hr, points = viewer.layers["phantom LR image"], viewer.layers["phantom HR labels"], viewer.layers["landmarks"]
    np.testing.assert_allclose(lr.scale, (10.0, 1.25, 1.25))
    np.testing.assert_allclose(hr.scale, (2.0, 1.25, 1.25))
    assert len(points.data) == 6
    # the mitral valve point lies on the basal face of the HR LV cavity (world -> HR data index)
    mv = points.data[list(points.features["name"]).index("mitral_valve")]
    z, y, x = np.round(hr.world_to_data(mv)).astype(int)
    assert hr.data[z, y, x] != 1 and (hr.data[z - 2 : z + 2, y, x] == 1).any()
    # LR slice planes lie on HR slice planes: LR world z positions are HR world z positions
    lr_z = [lr.data_to_world((k, 0, 0))[0] for k in range(lr.data.shape[0])]
    hr_index_z = [(z - hr.data_to_world((0, 0, 0))[0]) / 2.0 for z in lr_z]
    np.testing.assert_allclose(hr_index_z, np.round(hr_index_z), atol=1e-6)


def test_rgb_and_complex_images_give_a_notification_not_an_exception(tmp_path, errors):
    import nibabel as nib
    import numpy as np

    from napari_cardiac_priors._napari.reader import get_reader

    rgb = np.zeros((8, 8, 3), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    nib.save(nib.Nifti1Image(rgb, np.eye(4)), tmp_path / "rgb.nii.gz")
    nib.save(nib.Nifti1Image(np.ones((8, 8, 3), np.complex64), np.eye(4)), tmp_path / "cplx.nii.gz")
    for name, word in (("rgb.nii.gz", "RGB"), ("cplx.nii.gz", "complex")):
        reader = get_reader(str(tmp_path / name))
        assert reader(str(tmp_path / name)) == [(None,)]
        assert name in errors[-1] and word in errors[-1]
    assert len(errors) == 2


def test_demo_window_fits_a_1366_x_768_screen(qtbot):
    from napari_cardiac_priors._napari.demo import make_viewer

    viewer = make_viewer(run_model=False)
    try:
        window = viewer.window._qt_window
        qtbot.wait(50)
        hint = window.minimumSizeHint()
        assert hint.width() <= 1366 and hint.height() <= 768, (hint.width(), hint.height())
        assert window.width() <= 1366 and window.height() <= 768
        assert {"Segment", "Refine"} <= {name.split(" (")[0] for name in viewer.window.dock_widgets}
    finally:
        viewer.close()


def test_all_docks_together_fit_a_1366_x_768_screen(qtbot):
    """Every widget of the plugin docked at once (tabbed, the Latent explorer scrollable) keeps the
    window within a 1366 x 768 screen."""
    from napari_cardiac_priors._napari.demo import PLUGIN, make_viewer

    viewer = make_viewer(run_model=False)
    try:
        for name in ("Latent explorer", "Cohort"):
            viewer.window.add_plugin_dock_widget(PLUGIN, name)  # as the Plugins menu docks it: not tabbed
        window = viewer.window._qt_window
        qtbot.wait(50)
        hint = window.minimumSizeHint()
        assert hint.width() <= 1366 and hint.height() <= 768, (hint.width(), hint.height())
        assert window.width() <= 1366 and window.height() <= 768, (window.width(), window.height())
        docked = {name.split(" (")[0] for name in viewer.window.dock_widgets}
        assert {"Load cardiac stack", "Segment", "Refine", "Latent explorer", "Cohort"} <= docked
    finally:
        viewer.close()

