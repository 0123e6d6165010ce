"""The "Latent explorer" dock widget: sliders over a T-L shape space or SDNet's modality factor.

Encode a Labels layer (T-L) or the current slice of an Image layer (SDNet); every slider move
is debounced and decoded off the GUI thread, the latest value winning
(:class:`~napari_cardiac_priors._napari.decoder.LatestDecoder`); a 3D volume that decodes slowly
shows a preview while the slider moves (the coarse whole volume of a model's preview head, or the
slice on screen) and the exact volume where it rests.
T-L: sliders for the code dimensions with the largest training variance over mean +- 2 sd, the
plausibility as it moves, interpolation between two encoded shapes. SDNet: the eight anatomy
channels as a layer (with the label the segmentor gives each), eight z sliders over [-3, 3],
channel arithmetic and modality transfer. "Traversal grid" shows SDNet's Fig. 8 as a layer
and exports it as PNG.
"""

from __future__ import annotations

import numpy as np
from magicgui.widgets import (
    ComboBox, Container, FileEdit, FloatSlider, Label, PushButton, SpinBox,
)

from ..errors import InputError

#: the sliders' range, in standard deviations of the training codes
SLIDER_SD = 3.0
N_TL_SLIDERS = 12
#: a T-L volume whose last decoding took longer than this (ms; the 3D latency goal) shows a preview
#: first: the coarse whole volume of the model's preview head, or else the slice on screen (below it,
#: drawing a preview as well delays the whole volume more than it helps)
PREVIEW_ABOVE_MS = 100.0
#: the preview hint of a coarse whole volume (else the hint is the index of the slice on screen)
WHOLE = "volume"


def _encode(model_name: str, vol, slice_):
    """Load the explorer and encode (no GUI: runs in a worker thread or inline) ->
    ``(explorer, code)``."""
    from ..latent import load_explorer

    explorer = load_explorer(model_name)
    if explorer.kind == "tl":
        if len(explorer.contract["size"]) == 2:  # a 2D shape model: the displayed slice
            vol = slice_
        # a Labels layer is encoded; an image goes through the T-L predictor
        return explorer, explorer.encode(vol) if vol.kind == "labels" else explorer.encode_image(vol)
    if vol.kind == "labels":
        raise InputError("an SDNet model encodes an image slice: choose an Image layer")
    return explorer, explorer.encode(slice_)


def _grid(explorer, code, dims):
    """The traversal grid of ``code`` and its mosaic (no GUI: a worker thread or inline)."""
    from ..latent import grid_mosaic, traversal_grid

    grid = traversal_grid(explorer, code, dims=dims)
    return grid, grid_mosaic(grid)


class LatentExplorerWidget(Container):
    """Explore a T-L or SDNet latent space from the current layer (see the module docstring)."""

    def __init__(self, napari_viewer):
        from ..registry import list_models

        super().__init__(labels=False)
        self._viewer = napari_viewer
        self.output_layer = None  # before the layer choices, which leave out the widget's own layers
        self._output_array = None  # the output layer's array as the widget last set it
        self.anatomy_layer = None
        models = [e.name for e in list_models(task="shape-prior")] + [e.name for e in list_models(task="disentanglement")]
        self._model = ComboBox(label="Model", choices=models, value=models[0] if models else None, nullable=not models)
        self._layer = ComboBox(label="Layer", choices=self._layers, nullable=True)
        self._encode = PushButton(text="Encode")
        self._status = Label(label="Status", value="")
        self._status.native.setWordWrap(True)
        self._plausibility = Label(label="Plausibility", value="-")
        self._plausibility.native.setWordWrap(True)
        self.sliders = Container(labels=True)
        # T-L interpolation
        self._set_a, self._set_b = PushButton(text="Set as A"), PushButton(text="Set as B")
        self._t = FloatSlider(label="A -> B", min=0.0, max=1.0, value=0.0, step=0.05)
        # SDNet edits
        self._op = ComboBox(label="Channel op", choices=["zero", "add", "swap"], value="zero")
        self._ch_a = SpinBox(label="Channel", min=0, max=7, value=0)
        self._ch_b = SpinBox(label="Into / with", min=0, max=7, value=1)
        self._apply = PushButton(text="Apply to anatomy")
        self._z_from = ComboBox(label="z from layer", choices=self._image_layers, nullable=True)
        self._transfer = PushButton(text="Take z from that layer's slice")
        self._grid = PushButton(text="Traversal grid")
        self._png = FileEdit(label="PNG", mode="w", filter="*.png")
        self._export = PushButton(text="Export grid as PNG")
        from .scrolling import scrolling_body

        # 18 rows and up to 12 sliders: the dock scrolls instead of growing the window
        self.body = scrolling_body(self, [self._model, self._layer, self._encode, self._status, self._plausibility,
                                          self.sliders, self._set_a, self._set_b, self._t, self._op, self._ch_a,
                                          self._ch_b, self._apply, self._z_from, self._transfer, self._grid, self._png,
                                          self._export])
        self._encode.changed.connect(lambda *_: self.encode(background=True))
        self._set_a.changed.connect(lambda *_: self._keep("a"))
        self._set_b.changed.connect(lambda *_: self._keep("b"))
        self._t.changed.connect(lambda *_: self._interpolate())
        self._apply.changed.connect(lambda *_: self.apply_channel_op())
        self._transfer.changed.connect(lambda *_: self.transfer())
        self._grid.changed.connect(lambda *_: self.show_grid(background=True))
        self._export.changed.connect(lambda *_: self.export_grid(self._png.value))
        for event in (napari_viewer.layers.events.inserted, napari_viewer.layers.events.removed):
            event.connect(self._layer.reset_choices)
            event.connect(self._z_from.reset_choices)
        self.explorer = None
        self.code = None
        self.grid = None
        self._keep_codes = {}
        self._updating = False
        self.decoder = None
        self._encoded_with = None
        self._encode_worker = None
        self.previews_shown = 0
        self.decode_ms = 0.0  # the last whole decoding, timed in the worker

    # -- choices -------------------------------------------------------------------------------
    def _layers(self, *_):
        from napari.layers import Image, Labels

        return [layer for layer in self._viewer.layers if isinstance(layer, (Image, Labels))
                and layer is not self.output_layer and layer is not self.anatomy_layer]

    def _image_layers(self, *_):
        from napari.layers import Image

        return [layer for layer in self._viewer.layers if isinstance(layer, Image)]

    def _slice_of(self, layer):
        """The displayed slice of an image layer as a 1-slice Volume with its geometry."""
        from .layers import layer_to_volume

        vol = layer_to_volume(layer)
        if vol.array.ndim == 2:
            return vol
        return vol.slice(int(np.clip(self._viewer.dims.current_step[0], 0, vol.spatial_shape[0] - 1)))

    # -- encoding -------------------------------------------------------------------------------
    def encode(self, *, background: bool = False):
        """Encode the chosen layer with the chosen model and build the sliders.

        Returns True when encoded (False after a message). With ``background`` (the Encode
        button) the model loads and encodes in a thread and the sliders appear when it
        returns; the worker is returned (None when the inputs are not usable)."""
        from napari.utils.notifications import show_error

        from .workers import Failed, error_message, guarded, start_worker

        if self._model.value is None or self._layer.value is None:
            show_error("choose a model and a layer first")
            return None if background else False
        try:
            job = self._encoding_job()
        except (InputError, ValueError) as e:
            show_error(str(e))
            return None if background else False
        layer, model_name = self._layer.value, self._model.value
        if not background:
            out = guarded(_encode)(*job)
            if isinstance(out, Failed):
                show_error(error_message(out.error, "encoding"))
                self._status.value = "failed"
                return False
            return self._encoded(out, layer, model_name)
        self._status.value = f"encoding {layer.name} with {model_name}..."
        self._encode_worker = start_worker(_encode, *job, what="encoding", button=self._encode, status=self._status,
                                           on_result=lambda out: self._encoded(out, layer, model_name))
        return self._encode_worker

    def _encoding_job(self) -> tuple:
        """``(model name, the layer's volume, its displayed slice)``, read on the GUI thread."""
        from .layers import layer_to_volume

        layer = self._layer.value
        return self._model.value, layer_to_volume(layer), self._slice_of(layer)

    def _encoded(self, out, layer, model_name) -> bool:
        """The GUI part of encoding: messages, sliders, the first decode."""
        from napari.utils.notifications import show_info

        self.explorer, self.code = out
        for note in self.code.notes:
            show_info(note)
        self._source_name = layer.name
        self._encoded_with = model_name
        if self.decoder is not None:
            self.decoder.close()
        from .decoder import LatestDecoder

        self.decoder = LatestDecoder(self._decode, self._show, preview=self._decode_preview, on_preview=self._show_preview,
                                     parent=self.native)
        self._build_sliders()
        self._status.value = f"encoded {self._source_name} ({self.explorer.kind}, {self.explorer.n_dims} dims)"
        self._update_plausibility(self.code)
        if self.explorer.kind == "sdnet":
            self._show_anatomy()
        self.decoder.request(self.code)
        return True

    def _build_sliders(self) -> None:
        """One slider per code dimension, in standard deviations of the training codes: T-L's
        dimensions of largest training variance first ("1. z55" is the most varying), over
        +-3 sd; SDNet's z (a unit Gaussian) over [-3, 3]."""
        self._updating = True
        self.sliders.clear()
        ex = self.explorer
        dims = ex.order_by_variance()[:N_TL_SLIDERS] if ex.kind == "tl" else range(ex.n_dims)
        for rank, d in enumerate(dims, start=1):
            label = f"{rank}. z{d} (sd)" if ex.kind == "tl" else f"z{d} (sd)"
            slider = FloatSlider(label=label, min=-SLIDER_SD, max=SLIDER_SD, step=0.05, value=0.0,
                                 tooltip=f"code dimension {d}" + (f", rank {rank} by training variance" if ex.kind == "tl" else ""))
            self._add_slider(slider, d)
        self._updating = False

    def _sd_scale(self, d: int) -> tuple[float, float]:
        """``(mean, sd)`` of code dimension ``d`` over the training codes (SDNet: 0, 1)."""
        if self.explorer.kind != "tl":
            return 0.0, 1.0
        m, s = float(self.explorer.stats["mean"][d]), float(self.explorer.stats["std"][d])
        return m, s if s > 0 else 1.0

    def _add_slider(self, slider, d: int) -> None:
        m, s = self._sd_scale(d)
        # the slider rounds its bounds: clip the code's value to the bounds it really has
        slider.value = min(max((float(self.code.z[d]) - m) / s, slider.min), slider.max)
        slider.changed.connect(lambda v, d=d: self.set_dim(d, v))
        self.sliders.append(slider)

    # -- live decoding ------------------------------------------------------------------------------
    def set_dim(self, dim: int, value: float) -> None:
        """What a slider does: set code dimension ``dim`` to ``value`` standard deviations from the
        training mean and ask for a (debounced) decode."""
        if self._updating or self.code is None:
            return
        m, s = self._sd_scale(int(dim))
        z = np.array(self.code.z, np.float32)
        z[int(dim)] = m + float(value) * s
        self.code = self.code.with_z(z)
        self.decoder.request(self.code, self._preview_hint())

    def _preview_hint(self):
        """What to show before the exact volume: :data:`WHOLE` (the coarse volume of a model with a
        preview head), the model-grid slice on screen (a 2D view across the slices), or None (no
        such layer yet, a 2D model, a volume that decodes fast anyway): then the exact volume is
        the only update."""
        layer = self.output_layer
        if (self.explorer.kind != "tl" or self.decode_ms < PREVIEW_ABOVE_MS or layer is None or layer not in self._viewer.layers
                or layer.data.shape[0] == 1):
            return None
        if self.explorer.has_preview:
            return WHOLE
        if self._viewer.dims.ndisplay != 2 or tuple(self._viewer.dims.displayed[-2:]) != (layer.ndim - 2, layer.ndim - 1):
            return None
        k = int(round(float(layer.world_to_data(self._viewer.dims.point)[0])))
        return k if 0 <= k < layer.data.shape[0] else None

    def _decode_preview(self, code, hint):
        return self.explorer.preview_grid(code) if hint == WHOLE else self.explorer.decode_slice(code, hint)

    def _show_preview(self, part, code, hint) -> None:
        layer = self.output_layer
        if layer is None or layer not in self._viewer.layers:
            return
        if hint == WHOLE and layer.data.shape == part.shape:
            self._write_output(part, final=False)  # the exact volume follows
        elif hint != WHOLE and layer.data.shape[1:] == part.shape:
            layer.data[hint] = part  # the widget's own layer: its array is replaced by the whole volume next
            layer.refresh()
        else:
            return
        self.previews_shown += 1

    def _decode(self, code):
        import time

        t0 = time.perf_counter()
        out = self.explorer.decode_model_grid(code)  # shown in world space: no resampling per move
        self.decode_ms = 1000 * (time.perf_counter() - t0)
        plaus = self.explorer.mahalanobis(code) if self.explorer.kind == "tl" else None
        return out, plaus

    def _show(self, result, code, error) -> None:
        from napari.layers import Labels, Layer
        from napari.utils.notifications import show_error

        from .layers import volume_layer_data

        if error is not None:
            show_error(f"decoding failed: {error}")
            return
        vol, plaus = result
        layer = self.output_layer
        fits = (layer is not None and layer in self._viewer.layers and layer.data.shape == vol.array.shape
                and isinstance(layer, Labels) == (vol.kind == "labels")  # (a proxied layer's class name is the proxy's)
                and layer.metadata.get("latent_model") == self._encoded_with)
        if not fits:  # first decode, or another model (family): a layer of its own; the old one stays
            name = f"{self._source_name} decoded ({self.explorer.kind})"
            data, kwargs, kind = volume_layer_data(vol, name=name)
            kwargs["metadata"] = {**kwargs["metadata"], "latent_model": self._encoded_with}
            self.output_layer = self._viewer.add_layer(Layer.create(data, kwargs, kind))
            self._output_array = self.output_layer.data
            self._layer.reset_choices()
        else:
            self._write_output(vol.array, final=not (self.decoder and self.decoder.waiting))
        if plaus is not None:
            self._plausibility.value = self._describe_plausibility(plaus)

    def _write_output(self, array, *, final: bool) -> None:
        """A same-shape output into the output layer. One that another follows (a preview, or a
        result while a slider is dragged) is written into the layer's array, which is the widget's
        own, and redrawn, without napari's data event (extent and dims are unchanged; the event
        re-computes the viewer's dims and a labels colormap, ~10 ms per update on 2 CPU cores);
        the output a slider rests on replaces the data, with the event."""
        layer = self.output_layer
        if not final and layer.data is self._output_array and layer.data.dtype == array.dtype:
            layer.data[...] = array
            layer.refresh(extent=False)
        else:
            layer.data = array
            self._output_array = array

    def _describe_plausibility(self, dist: float) -> str:
        from ..latent import distance_percentile

        pct = distance_percentile(dist, self.explorer.net)
        return f"Mahalanobis distance {dist:.1f} (beyond {pct:.0f} % of the training shapes)"

    def _update_plausibility(self, code) -> None:
        if self.explorer.kind == "tl":
            self._plausibility.value = self._describe_plausibility(self.explorer.mahalanobis(code))
        else:
            self._plausibility.value = "-"

    # -- T-L interpolation ------------------------------------------------------------------------
    def _keep(self, which: str) -> None:
        if self.code is not None:
            self._keep_codes[which] = self.code
            self._status.value = f"{which.upper()} = {self._source_name}"

    def _interpolate(self) -> None:
        from napari.utils.notifications import show_error

        if not {"a", "b"} <= set(self._keep_codes) or self.explorer is None:
            if self._t.value:
                show_error("encode two segmentations and press 'Set as A' and 'Set as B' first")
            return
        self.code = self.explorer.interpolate(self._keep_codes["a"], self._keep_codes["b"], float(self._t.value))
        self.decoder.request(self.code, self._preview_hint())

    # -- SDNet edits --------------------------------------------------------------------------------
    def _show_anatomy(self) -> None:
        from ..conventions import LABELS

        classes = self.explorer.channel_classes(self.code)
        base = self._status.value.split("; channels ->")[0]  # said once, however often the anatomy changes
        self._status.value = base + "; channels -> " + ", ".join(f"{c}:{LABELS.get(k, k)}" for c, k in enumerate(classes))
        data = self.code.anatomy
        if self.anatomy_layer is None or self.anatomy_layer not in self._viewer.layers:
            self.anatomy_layer = self._viewer.add_image(data, name=f"{self._source_name} anatomy channels", colormap="gray")
        else:
            self.anatomy_layer.data = data

    def apply_channel_op(self) -> bool:
        from napari.utils.notifications import show_error

        from ..latent import edit_anatomy

        if self.explorer is None or self.explorer.kind != "sdnet":
            show_error("channel arithmetic needs an SDNet encoding")
            return False
        try:
            self.code = edit_anatomy(self.code, self._op.value, int(self._ch_a.value), int(self._ch_b.value))
        except InputError as e:
            show_error(str(e))
            return False
        self._show_anatomy()
        self.decoder.request(self.code)
        return True

    def transfer(self) -> bool:
        """Modality transfer: keep this anatomy, take z from the displayed slice of another image layer."""
        from napari.utils.notifications import show_error

        from ..latent import transfer_modality

        if self.explorer is None or self.explorer.kind != "sdnet" or self._z_from.value is None:
            show_error("encode a slice with an SDNet model and choose the image layer to take z from")
            return False
        try:
            other = self.explorer.encode(self._slice_of(self._z_from.value))
        except (InputError, ValueError) as e:
            show_error(str(e))
            return False
        self.code = transfer_modality(self.code, other)
        self._updating = True
        for d, slider in enumerate(self.sliders):
            slider.value = min(max(float(self.code.z[d]), slider.min), slider.max)  # Python floats: float32 can round past them
        self._updating = False
        self.decoder.request(self.code)
        return True

    # -- traversal grid -------------------------------------------------------------------------------
    def show_grid(self, *, background: bool = False):
        """Compute the traversal grid of the current code and show it as an image layer; returns
        the mosaic, or with ``background`` (the button: dozens of decodes) the worker."""
        from napari.utils.notifications import show_error

        if self.code is None:
            show_error("encode something first")
            return None
        dims = None if self.explorer.kind == "sdnet" else self.explorer.order_by_variance()[:8]
        job = (self.explorer, self.code, dims)
        if not background:
            return self._show_grid(*_grid(*job))
        from .workers import start_worker

        self._status.value = "computing the traversal grid..."
        return start_worker(_grid, *job, what="the traversal grid", on_result=lambda out: self._show_grid(*out),
                            button=self._grid, status=self._status)

    def _show_grid(self, grid, mosaic):
        self.grid = grid
        name = f"{self._source_name} traversal grid"
        if name in self._viewer.layers:
            self._viewer.layers[name].data = mosaic
        else:
            self._viewer.add_image(mosaic, name=name, colormap="gray")
        self._status.value = f"traversal grid of {self._source_name}"
        return mosaic

    def export_grid(self, path) -> bool:
        from napari.utils.notifications import show_error, show_info

        from ..latent import grid_mosaic, save_png

        if self.grid is None:
            show_error("make a traversal grid first")
            return False
        path = str(path)
        if not path or path == ".":
            show_error("choose a PNG file name")
            return False
        if not path.lower().endswith(".png"):
            path += ".png"
        save_png(grid_mosaic(self.grid), path)
        show_info(f"saved {path}")
        return True
