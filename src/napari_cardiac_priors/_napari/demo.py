"""The interactive demo: napari with the plugin's widgets and the phantom sample data.

The LR phantom stack opens with its HR labels and landmarks; when the bundled
``sslln-lr-phantom`` model is installed the Segment widget runs it on the stack (predicted
labels and editable landmark points) and the Refine widget then refines that segmentation
onto the HR grid with the bundled phantom atlases.
"""

from __future__ import annotations

PLUGIN = "napari-cardiac-priors"
DEMO_MODEL = "sslln-lr-phantom"
#: the demo window (width, height) in pixels: fits a 1366 x 768 screen
DEMO_WINDOW = (1300, 720)


def make_viewer(*, run_model: bool = True):
    """A viewer with the LR phantom stack, its HR labels and landmarks, and the widgets docked."""
    import napari

    from ..registry import list_models

    viewer = napari.Viewer(title="napari-cardiac-priors demo")
    viewer.open_sample(PLUGIN, "phantom_lr")
    viewer.window.add_plugin_dock_widget(PLUGIN, "Load cardiac stack")
    # tabbed, so that the window fits a 1366 x 768 screen with room for the canvas
    _, segment = viewer.window.add_plugin_dock_widget(PLUGIN, "Segment", tabify=True)
    _, refine = viewer.window.add_plugin_dock_widget(PLUGIN, "Refine", tabify=True)
    viewer.window.resize(*DEMO_WINDOW)
    viewer.dims.ndisplay = 2
    if run_model and DEMO_MODEL in {e.name for e in list_models()}:
        segment._image.value = viewer.layers["phantom LR image"]
        segment._model.value = DEMO_MODEL
        worker = segment.run()
        if worker is not None:
            worker.finished.connect(lambda: _refine_result(segment, refine))
    return viewer


def _refine_result(segment, refine) -> None:
    """Run the Refine widget on what the Segment widget produced (labels + landmarks)."""
    if segment.labels_layer is None or segment.landmark_points is None:
        return
    refine._labels.reset_choices()
    refine._points.reset_choices()
    refine._labels.value = segment.labels_layer
    refine._points.value = segment.landmark_points.layer
    refine.run()


def run_viewer() -> None:
    """Open the demo viewer and run the Qt event loop until it is closed."""
    import napari

    make_viewer()
    napari.run()
