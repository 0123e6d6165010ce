"""The "Refine" dock widget: atlas-propagation refinement from the (corrected) landmarks.

The result appears as a new Labels layer on the HR grid; "Accept" replaces the target labels
layer by it (and "Undo accept" brings the old one back); "Reject" removes the result. The
input layers are read, never modified.
"""

from __future__ import annotations

import queue
import threading

from magicgui.widgets import ComboBox, Container, Label, ProgressBar, PushButton, SpinBox

from ..errors import InputError
from .workers import Cancelled


def _refine_worker(labels, landmarks, atlas_set: str, n_atlases: int, fusion: str, device: str):
    """Generator run in a napari thread: runs the pipeline in an inner thread and yields its
    ``(step, fraction)`` progress; returns the :class:`~napari_cardiac_priors.workflows.refine.RefineDone`. Closing the generator (Cancel)
    stops the pipeline at its next progress report."""
    from ..inference import resolve_device
    from ..workflows.refine import refine_subject

    events: queue.Queue = queue.Queue()
    cancel = threading.Event()
    out = {}

    def progress(step, fraction):
        if cancel.is_set():
            raise Cancelled()
        events.put((step, fraction))

    def run():
        try:
            # the surfaces too, in this thread: the GUI thread only adds the layers
            out["done"] = refine_subject(labels, landmarks, atlases=atlas_set, n_atlases=n_atlases, fusion=fusion,
                                         surfaces=True, device=resolve_device(device), progress=progress)
        except Exception as e:  # noqa: BLE001 - raised again in the worker, below
            out["error"] = e
        finally:
            events.put(None)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        while True:
            item = events.get()
            if item is None:
                break
            yield item
    finally:
        cancel.set()  # the generator was closed (Cancel) or finished
    thread.join()
    if "error" in out:
        raise out["error"]
    return out["done"]


class RefineWidget(Container):
    """Refine a target segmentation with an atlas set, starting from the landmark points."""

    def __init__(self, napari_viewer):
        from napari.layers import Labels, Points

        from ..registry import list_models
        from ..registry.atlases import AUTO

        super().__init__(labels=False)
        self._viewer = napari_viewer
        sets = [AUTO] + [e.name for e in list_models(task="atlas")]  # auto: the set that fits the target
        self._labels = ComboBox(label="Target labels", choices=self._layers_of(Labels), nullable=True)
        self._points = ComboBox(label="Landmarks", choices=self._layers_of(Points), nullable=True)
        self._atlases = ComboBox(label="Atlas set", choices=sets, value=AUTO,
                                 tooltip="auto: real-anatomy atlases (atlases-acdc), or the phantom atlases for labels "
                                         "with an RV wall")
        self._n = SpinBox(label="Atlases", min=1, max=20, value=5)
        self._fusion = ComboBox(label="Fusion", choices=["majority", "patch"], value="majority")
        self._device = ComboBox(label="Device", choices=["auto", "cpu", "cuda", "mps"], value="auto")
        self._run = PushButton(text="Refine")
        self._cancel = PushButton(text="Cancel", enabled=False)
        self._progress = ProgressBar(label="Progress", min=0, max=100, value=0)
        self._status = Label(label="Status", value="")
        self._status.native.setWordWrap(True)  # a long status wraps instead of widening the dock
        self._accept = PushButton(text="Accept", enabled=False)
        self._reject = PushButton(text="Reject", enabled=False)
        self._undo = PushButton(text="Undo accept", enabled=False)
        from .scrolling import scrolling_body

        self.body = scrolling_body(self, [self._labels, self._points, self._atlases, self._n, self._fusion, self._device,
                                          self._run, self._cancel, self._progress, self._status, self._accept,
                                          self._reject, self._undo])
        from .layer_defaults import follow_layers

        for combo, kind in ((self._labels, Labels), (self._points, Points)):
            follow_layers(napari_viewer, combo, lambda layer, kind=kind: isinstance(layer, kind)
                          and "refine" not in layer.metadata)
        self._run.changed.connect(lambda *_: self.run())
        self._cancel.changed.connect(lambda *_: self.worker and self.worker.quit())
        self._accept.changed.connect(lambda *_: self.accept())
        self._reject.changed.connect(lambda *_: self.reject())
        self._undo.changed.connect(lambda *_: self.undo_accept())
        self.worker = None
        self.result_layer = None
        self.surface_layers = []
        self._replaced = None  # (layer, index) removed by Accept

    def _layers_of(self, cls):
        return lambda *_: [layer for layer in self._viewer.layers if isinstance(layer, cls)]

    def run(self):
        """Start the refinement; returns the worker (None when the inputs are not usable)."""
        from napari.utils.notifications import show_error

        from .layers import layer_to_volume, points_to_landmarks
        from .workers import start_worker

        labels_layer, points_layer, atlas_set = self._labels.value, self._points.value, self._atlases.value
        if labels_layer is None or points_layer is None or atlas_set is None:
            show_error("choose the target labels, the landmarks and an atlas set first")
            return None
        try:
            labels = layer_to_volume(labels_layer)
            labels = labels.with_array(labels.array.copy())  # never touch the layer's data
            landmarks = points_to_landmarks(points_layer.data, features=points_layer.features, scale=points_layer.scale,
                                            affine=points_layer.affine.affine_matrix, translate=points_layer.translate)
        except (InputError, ValueError) as e:
            show_error(str(e))
            return None
        self._target_name = labels_layer.name
        self._progress.value = 0
        self.worker = start_worker(_refine_worker, labels, landmarks, atlas_set, self._n.value, self._fusion.value,
                                   self._device.value, what="refinement", on_result=self._on_result,
                                   on_progress=self._on_progress, button=self._run, cancel=self._cancel, status=self._status)
        return self.worker

    def _on_progress(self, item) -> None:
        step, fraction = item
        self._progress.value = int(100 * fraction)
        self._status.value = step

    def _on_result(self, done) -> None:
        from napari.layers import Layer
        from napari.utils.notifications import show_info

        from .layers import volume_layer_data

        result = done.result
        for note in done.notes:
            show_info(note)
        data = volume_layer_data(result.labels, name=f"{self._target_name} refined")
        layer = Layer.create(*data)
        layer.metadata["refine"] = {"atlas_set": done.atlas_set, "selected": result.selected,
                                    "nmi": result.nmi, "timings": result.timings}
        self.result_layer = self._viewer.add_layer(layer)  # (marked first: not a default target to refine)
        from .layers import surface_layer_data

        # the refined heart in 3D: smooth surfaces (switch the viewer to 3D to see them; File > Save writes .vtk/.stl/.ply)
        self.surface_layers = [self._viewer.add_layer(Layer.create(*surface_layer_data(m, name=f"{self._target_name} {m.name}")))
                               for m in done.surfaces]
        self._progress.value = 100
        self._status.value = (f"done in {result.timings['total']:.1f} s with {done.atlas_set}: "
                              f"{', '.join(result.selected)}")
        self._accept.enabled = self._reject.enabled = True

    def accept(self) -> None:
        """Replace the target labels layer by the result (undoable with :meth:`undo_accept`)."""
        layers = self._viewer.layers
        old = next((layer for layer in layers if layer.name == self._target_name), None)
        if self.result_layer is None or old is None:
            return
        self._replaced = (old, layers.index(old))
        layers.remove(old)
        self.result_layer.name = self._target_name
        self._accept.enabled = self._reject.enabled = False
        self._undo.enabled = True

    def undo_accept(self) -> None:
        """Bring the replaced labels layer back and keep the result as a separate layer."""
        if self._replaced is None:
            return
        layer, index = self._replaced
        self.result_layer.name = f"{layer.name} refined"
        self._viewer.layers.insert(min(index, len(self._viewer.layers)), layer)
        self._replaced = None
        self._undo.enabled = False
        self._accept.enabled = self._reject.enabled = True

    def reject(self) -> None:
        """Remove the result layer and its surfaces."""
        for layer in [self.result_layer, *self.surface_layers]:
            if layer is not None and layer in self._viewer.layers:
                self._viewer.layers.remove(layer)
        self.result_layer = None
        self.surface_layers = []
        self._accept.enabled = self._reject.enabled = False
