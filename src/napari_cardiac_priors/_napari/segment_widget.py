"""The "Segment" dock widget: pick an image layer and a model, run it in a thread, get labels and
landmarks (SSLLN), HR labels (ACNN-Seg) or an HR image (ACNN-SR), and the shape's plausibility."""

from __future__ import annotations


from magicgui.widgets import ComboBox, Container, Label, ProgressBar, PushButton

from ..errors import InputError
from ..workflows.qc import shape_finding

STEPS = ("loading the model", "running the network", "adding the layers")


NO_SHAPE_MODEL = "(none)"


def _segment_worker(volume, model_name: str, device: str, shape_model: str | None = None):
    """Generator run in a thread: yields ``(step, message)``; returns ``(result, notes)``.

    ``result`` is a :class:`~napari_cardiac_priors.inference.Segmentation` (with
    ``info["plausibility"]`` when a shape model is given) or, for a super-resolution model,
    the HR image Volume.
    """
    from ..inference import load_model, resolve_device
    from ..workflows.segment import segment_image

    yield 0, STEPS[0]
    model = load_model(model_name, device=resolve_device(device))
    yield 1, STEPS[1]
    done = segment_image(volume, model, shape_model=shape_model)
    if done.plausibility is not None:
        done.result.info["plausibility"] = done.plausibility
    yield 2, STEPS[2]
    return done.result, done.notes


class SegmentWidget(Container):
    """Segment the chosen image layer with a model of the library.

    Adds a Labels layer on the image's grid and, for SSLLN models, an editable "landmarks"
    Points layer. The viewer stays responsive; Cancel stops the run between steps.
    """

    def __init__(self, napari_viewer):
        from ..registry import intended_use, list_models, segmentation_choices

        super().__init__(labels=False)
        self._viewer = napari_viewer
        models = segmentation_choices()
        shape_models = [NO_SHAPE_MODEL] + [e.name for e in list_models(task="shape-prior")]
        self._image = ComboBox(label="Image", choices=self._image_layers, nullable=True)
        # grouped by what each model is for (real scans first), the name as the value
        entries = {e.name: e for e in list_models()}  # the manifest read once, not once per model
        labelled = [(f"{m}  ({intended_use(entries[m])})", m) for m in models]
        self._model = ComboBox(label="Model", choices=labelled, value=models[0] if models else None, nullable=not models)
        self._about = Label(label="About", value="")
        self._about.native.setWordWrap(True)
        self._device = ComboBox(label="Device", choices=["auto", "cpu", "cuda", "mps"], value="auto")
        self._run = PushButton(text="Segment")
        self._cancel = PushButton(text="Cancel", enabled=False)
        self._progress = ProgressBar(label="Progress", min=0, max=len(STEPS), value=0)
        self._status = Label(label="Status", value="")
        self._status.native.setWordWrap(True)  # a long status wraps instead of widening the dock
        self._reset = PushButton(text="Reset landmarks to model", enabled=False)
        self._shape = ComboBox(label="Shape model", choices=shape_models, value=NO_SHAPE_MODEL)
        self._plausibility = Label(label="Shape plausibility", value="-")
        from .scrolling import scrolling_body

        self.body = scrolling_body(self, [self._image, self._model, self._about, self._device, self._shape, self._run,
                                          self._cancel, self._progress, self._status, self._plausibility, self._reset])
        self._model.changed.connect(self._describe)
        self._run.changed.connect(lambda *_: self.run())
        self._cancel.changed.connect(lambda *_: self.cancel())
        self._reset.changed.connect(lambda *_: self.landmark_points and self.landmark_points.reset())
        from napari.layers import Image

        from .layer_defaults import follow_layers, made_by_a_model

        follow_layers(napari_viewer, self._image, lambda layer: isinstance(layer, Image) and not made_by_a_model(layer))
        self.worker = None
        self.landmark_points = None
        self.labels_layer = None
        self._describe(self._model.value)

    def _image_layers(self, *_):
        from napari.layers import Image

        return [layer for layer in self._viewer.layers if isinstance(layer, Image)]

    def _describe(self, name) -> None:
        from ..registry import get_model, trained_on_phantoms

        if not name:
            self._about.value = "no segmentation model installed"
            return
        e = get_model(name)
        caution = "\ntrained on synthetic phantoms: not for real scans" if trained_on_phantoms(e) else ""
        self._about.value = f"{e.description}{caution}\nlicence: {e.license or 'unknown'}"
        self._about.tooltip = e.citation

    def run(self):
        """Start segmenting the chosen image; returns the worker (or None if nothing to do)."""
        from napari.utils.notifications import show_error

        from .layers import layer_to_volume
        from .workers import start_worker

        layer, model = self._image.value, self._model.value
        if layer is None or model is None:
            show_error("choose an image layer and a model first")
            return None
        try:
            volume = layer_to_volume(layer)
            if volume.is_cine:
                raise InputError("this is a cine stack: load one frame (Load cardiac stack > Cine frame)")
        except (InputError, ValueError) as e:
            show_error(str(e))
            return None
        self._image_name = layer.name
        self._progress.value = 0
        shape = None if self._shape.value == NO_SHAPE_MODEL else self._shape.value
        self._plausibility.value = "-"
        self.worker = start_worker(_segment_worker, volume, model, self._device.value, shape, what="segmentation",
                                   on_result=self._on_result, on_progress=self._on_step, button=self._run,
                                   cancel=self._cancel, status=self._status)
        return self.worker

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.quit()

    def _on_step(self, step) -> None:
        i, message = step
        self._progress.value = i
        self._status.value = message

    def _on_result(self, out) -> None:
        from napari.layers import Layer
        from napari.utils.notifications import show_warning

        from .landmark_points import LandmarkPoints
        from .layers import volume_layer_data

        result, caught = out
        for message in caught:
            show_warning(message)
        if not hasattr(result, "labels"):  # super-resolution: an HR image
            model = result.metadata.get("model", "SR")
            self.sr_layer = self._viewer.add_layer(Layer.create(*volume_layer_data(result, name=f"{self._image_name} SR ({model})")))
            self._progress.value = len(STEPS)
            self._status.value = f"HR image {result.spatial_shape} at {', '.join(f'{s:.3g}' for s in result.spacing)} mm"
            return
        plaus = result.info.get("plausibility")
        if plaus is not None:
            self._plausibility.value = (f"Mahalanobis distance {plaus['distance']:.1f}: beyond "
                                        f"{plaus['percentile']:.0f} % of the training shapes")
            finding = shape_finding(plaus)
            if finding:
                show_warning(f"{finding}: check the segmentation before measuring volumes")
        name = f"{self._image_name} labels ({result.model})"
        self.labels_layer = self._viewer.add_layer(Layer.create(*volume_layer_data(result.labels, name=name)))
        if result.landmarks is not None and result.landmarks.valid.any():
            self.landmark_points = LandmarkPoints(self._viewer, result.landmarks, name=f"{self._image_name} landmarks")
            self._reset.enabled = True
        self._progress.value = len(STEPS)
        self._status.value = f"done in {result.info['total_seconds']:.1f} s on {result.info['device']}"
