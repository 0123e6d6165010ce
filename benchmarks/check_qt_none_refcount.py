"""Checks the Qt binding for the None reference-count bug that made the test process abort at exit.

Run: ``QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/check_qt_none_refcount.py``; each line is
the change of ``sys.getrefcount(None)`` over 200 thread-worker results or slider moves (about 0 is
healthy; PySide6 6.12.0 gives about -200 / -600, 6.11.3 about +400, 6.9.3 about 0).
"""
import sys, time
from qtpy.QtWidgets import QApplication
app = QApplication.instance() or QApplication([])
from napari.qt.threading import create_worker
from magicgui.widgets import FloatSlider
def rc(): return sys.getrefcount(None)

def run_worker(ret):
    done = []
    w = create_worker(lambda: ret)
    w.returned.connect(lambda r: done.append(r))
    w.start()
    while not done:
        app.processEvents(); time.sleep(0.001)

for label, ret in [("tuple with None", (1, None)), ("None", None), ("tuple no None", (1, 2))]:
    r0 = rc()
    for _ in range(200):
        run_worker(ret)
    print(label, rc() - r0)

s = FloatSlider(min=0, max=1, value=0)
r0 = rc()
for i in range(200):
    s.value = i / 200
print("slider", rc() - r0)
