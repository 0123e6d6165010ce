"""README screenshot of `make demo`: segmentation, landmarks and refinement on the LR phantom.

Run under Xvfb: ``xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python docs/make_demo_screenshot.py``
(writes ``docs/napari_demo.png``; needs the bundled models).
"""

import time
from pathlib import Path


def main() -> None:
    from qtpy.QtWidgets import QApplication

    from napari_cardiac_priors._napari.demo import make_viewer

    viewer = make_viewer()
    start = time.time()
    while time.time() - start < 120 and not any(layer.name.endswith("refined") for layer in viewer.layers):
        QApplication.processEvents()
        time.sleep(0.05)
    viewer.window._qt_window.resize(1400, 900)
    QApplication.processEvents()
    viewer.screenshot(str(Path(__file__).parent / "napari_demo.png"), canvas_only=False)
    viewer.close()


if __name__ == "__main__":
    main()
