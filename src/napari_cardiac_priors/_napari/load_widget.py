"""The "Load cardiac stack" dock widget: open a file or DICOM folder, see its geometry, pick a cine frame."""

from __future__ import annotations

from pathlib import Path

from magicgui.widgets import ComboBox, Container, FileEdit, Label, PushButton, SpinBox

_FILTER = "Cardiac stacks (*.nii *.nii.gz *.mha *.mhd *.nrrd *.nhdr)"


def describe(volume) -> str:
    """One-paragraph summary of a volume's grid for the widget's info label."""
    z, y, x = volume.spatial_shape
    sz, sy, sx = volume.spacing
    text = (
        f"{volume.kind}, {z} x {y} x {x} voxels (z, y, x)\n"
        f"spacing {sz:.3g} x {sy:.3g} x {sx:.3g} mm (z, y, x)\n"
        f"orientation {volume.orientation} (voxel axes x, y, z)"
    )
    if volume.is_cine:
        text += f"\ncine: {volume.shape[0]} frames"
    return text


class LoadStackWidget(Container):
    """Open a cardiac stack (NIfTI, .mha/.nrrd or a DICOM series folder) into the viewer.

    The image opens at its physical scale and world position; label maps open as Labels
    layers with the canonical colours. For a cine stack the frame box picks which frame the
    layer shows.
    """

    def __init__(self, napari_viewer):
        super().__init__(labels=True)
        self._viewer = napari_viewer
        self._volume = None
        self._layer = None
        self._source = ComboBox(label="Source", choices=["file", "DICOM folder"], value="file")
        self._path = FileEdit(label="Path", mode="r", filter=_FILTER)
        self._open = PushButton(text="Open")
        self._info = Label(label="Geometry", value="no stack loaded")
        self._frame = SpinBox(label="Cine frame", min=0, max=0, enabled=False)
        self.extend([self._source, self._path, self._open, self._info, self._frame])
        self._source.changed.connect(self._on_source)
        self._open.changed.connect(lambda *_: self.open(self._path.value))
        self._frame.changed.connect(self._on_frame)
        self.worker = None

    def _on_source(self, value: str) -> None:
        self._path.mode = "d" if value == "DICOM folder" else "r"

    def open(self, path):
        """Read ``path`` in a thread worker; the layer is added when it is done."""
        from napari.utils.notifications import show_error

        from ..io import read_volume
        from .workers import start_worker

        path = Path(str(path))
        if not str(path) or str(path) == ".":
            show_error("choose a file or DICOM folder first")
            return None
        self._info.value = f"reading {path.name} ..."
        self.worker = start_worker(read_volume, path, what="opening the stack", on_result=lambda v: self._show(v, path),
                                   button=self._open, status=self._info)
        return self.worker

    def _show(self, volume, path: Path) -> None:
        from napari.layers import Layer

        from ..io import stem
        from .layers import volume_layer_data

        self._volume = volume
        self._info.value = describe(volume)
        frame = volume.frame(0) if volume.is_cine else volume
        name = stem(path) if not volume.is_cine else f"{stem(path)} [frame 0]"
        self._layer = self._viewer.add_layer(Layer.create(*volume_layer_data(frame, name=name)))
        self._frame.enabled = volume.is_cine
        self._frame.max = volume.shape[0] - 1 if volume.is_cine else 0
        self._frame.value = 0

    def _on_frame(self, t: int) -> None:
        if self._volume is None or not self._volume.is_cine or self._layer not in self._viewer.layers:
            return
        self._layer.data = self._volume.array[t]
        base = self._layer.name.rsplit(" [frame", 1)[0]
        self._layer.name = f"{base} [frame {t}]"

