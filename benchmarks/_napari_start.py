"""Child process of bench_foundation.py: start napari (window shown), process events, quit.

``--without-plugin`` hides this package's distribution from npe2's discovery, which is what
napari sees when the plugin is not installed.
"""

import sys

if "--without-plugin" in sys.argv:
    import importlib.metadata as md

    _all = md.distributions

    def _others(**kwargs):
        return (d for d in _all(**kwargs) if d.metadata["Name"] != "napari-cardiac-priors")

    md.distributions = _others

import napari  # noqa: E402
from qtpy.QtWidgets import QApplication  # noqa: E402

viewer = napari.Viewer(show=True)
QApplication.processEvents()
found = "napari-cardiac-priors" in [m.name for m in __import__("npe2").PluginManager.instance().iter_manifests()]
viewer.close()
print("plugin discovered" if found else "plugin absent")
