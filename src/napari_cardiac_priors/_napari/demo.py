"""The interactive demo: napari with the plugin's widget and the phantom sample data."""

from __future__ import annotations

PLUGIN = "napari-cardiac-priors"


def make_viewer():
    """A viewer showing the LR phantom stack with its HR labels and landmarks, and the loader docked."""
    import napari

    viewer = napari.Viewer(title="napari-cardiac-priors demo")
    viewer.open_sample(PLUGIN, "phantom_lr")
    viewer.window.add_plugin_dock_widget(PLUGIN, "Load cardiac stack")
    viewer.dims.ndisplay = 2
    return viewer


def run_viewer() -> None:
    """Open the demo viewer and run the Qt event loop until it is closed."""
    import napari

    make_viewer()
    napari.run()
