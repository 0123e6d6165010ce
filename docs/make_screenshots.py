"""README screenshots: napari showing the phantom LR stack with its HR labels and landmarks.

Run under a display or Xvfb: ``xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python
docs/make_screenshots.py docs`` (``make screenshot``). Writes ``napari_sax.png`` (short-axis
view, whole window) and ``napari_long_axis.png`` (a long-axis cut: the LR stack's 10 mm,
misaligned slices under the smooth HR labels).
"""

import sys
from pathlib import Path


def main(out_dir: str) -> None:
    import numpy as np
    from qtpy.QtWidgets import QApplication

    from napari_cardiac_priors._napari.demo import make_viewer

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    viewer = make_viewer()
    viewer.window._qt_window.resize(1400, 900)
    labels, points = viewer.layers["phantom HR labels"], viewer.layers["landmarks"]
    lv = np.argwhere(labels.data == 1)
    centre = np.asarray(labels.data_to_world(lv.mean(axis=0)))
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


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs")
