"""README screenshots of the plugin on the phantom sample data, as a user sees it.

Run under a display or Xvfb: ``make screenshot`` (``xvfb-run -a -s "-screen 0 1400x900x24"
.venv/bin/python docs/make_screenshots.py docs``); needs the bundled models. Writes:

- ``napari_sax.png``: the LR phantom stack with its HR labels and landmarks (short-axis view);
- ``napari_long_axis.png``: a long-axis cut: the stack's 10 mm, misaligned slices under the
  smooth HR labels;
- ``napari_demo.png``: the Segment widget's labels and editable landmarks on the stack, refined
  onto the HR grid by the Refine widget (2D);
- ``napari_refine_3d.png``: the refined heart's smooth surfaces (LV endocardium, LV epicardium,
  RV) in the 3D view;
- ``napari_latent.png``: the Latent explorer on the HR labels (T-L sliders by training variance,
  the decoded shape after a slider move, its plausibility).
"""

import sys
import time
from pathlib import Path


def _wait(condition, seconds: float = 180.0) -> None:
    from qtpy.QtWidgets import QApplication

    start = time.time()
    while time.time() - start < seconds and not condition():
        QApplication.processEvents()
        time.sleep(0.05)
    if not condition():
        raise TimeoutError("the widgets did not finish in time")
    QApplication.processEvents()


def stack_views(out: Path) -> None:
    import numpy as np
    from qtpy.QtWidgets import QApplication

    from napari_cardiac_priors._napari.demo import make_viewer

    viewer = make_viewer(run_model=False)
    viewer.window._qt_window.resize(1400, 900)
    labels, points = viewer.layers["phantom HR labels"], viewer.layers["landmarks"]
    centre = np.asarray(labels.data_to_world(np.argwhere(labels.data == 1).mean(axis=0)))
    # the mid-ventricular plane, where the insertion and lateral landmarks lie
    centre[0] = points.data[list(points.features["name"]).index("rv_insert_anterior")][0]
    viewer.dims.set_point(range(3), centre)
    viewer.reset_view()
    QApplication.processEvents()
    viewer.screenshot(str(out / "napari_sax.png"), canvas_only=False)
    viewer.dims.order = (1, 0, 2)  # show (z, x): a long-axis cut through the LV centre
    viewer.scene.camera.orientation2d = ("up", "right")  # base at the top, apex at the bottom
    viewer.reset_view()
    QApplication.processEvents()
    viewer.screenshot(str(out / "napari_long_axis.png"), canvas_only=True)
    viewer.close()


def segment_and_refine_views(out: Path) -> None:
    from napari.layers import Surface
    from qtpy.QtWidgets import QApplication

    from napari_cardiac_priors._napari.demo import make_viewer

    viewer = make_viewer()  # the demo: Segment runs, then Refine on its labels and landmarks
    _wait(lambda: any(layer.name.endswith("refined") for layer in viewer.layers)
          and any(isinstance(layer, Surface) for layer in viewer.layers))
    viewer.window._qt_window.resize(1400, 900)
    QApplication.processEvents()
    viewer.screenshot(str(out / "napari_demo.png"), canvas_only=False)
    for layer in viewer.layers:  # the 3D view: the refined surfaces alone
        layer.visible = isinstance(layer, Surface)
    viewer.dims.ndisplay = 3
    viewer.camera.angles = (20, -35, 60)
    viewer.reset_view()
    QApplication.processEvents()
    viewer.screenshot(str(out / "napari_refine_3d.png"), canvas_only=False)
    viewer.close()


def latent_view(out: Path) -> None:
    from qtpy.QtWidgets import QApplication

    from napari_cardiac_priors._napari.demo import PLUGIN, make_viewer

    viewer = make_viewer(run_model=False)
    viewer.window._qt_window.resize(1400, 900)
    dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Latent explorer", tabify=True)
    dock.raise_()  # its tab in front
    widget._model.value = "tl-phantom"
    widget._layer.value = viewer.layers["phantom HR labels"]
    widget.encode(background=True)
    _wait(lambda: widget.decoder is not None and widget.output_layer is not None and not widget.decoder.busy)
    widget.sliders[0].value = 2.0  # the dimension of largest training variance, +2 sd
    _wait(lambda: not widget.decoder.busy)
    viewer.layers["phantom HR labels"].visible = False
    QApplication.processEvents()
    viewer.screenshot(str(out / "napari_latent.png"), canvas_only=False)
    viewer.close()


def main(out_dir: str) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stack_views(out)
    segment_and_refine_views(out)
    latent_view(out)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs")
