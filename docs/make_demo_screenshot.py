"""README screenshot of `make demo`: segmentation, landmarks and refinement on the LR phantom.

Run under Xvfb: xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python docs/make_demo_screenshot.py
"""
import time
from qtpy.QtWidgets import QApplication
from napari_cardiac_priors._napari.demo import make_viewer
v = make_viewer()
t = time.time()
while time.time() - t < 90:
    QApplication.processEvents(); time.sleep(0.05)
    if any(l.name.endswith("refined") for l in v.layers):
        break
print([l.name for l in v.layers])
v.window._qt_window.resize(1400, 900); QApplication.processEvents(); v.screenshot("/work/main/docs/napari_demo.png", canvas_only=False)
v.close()
