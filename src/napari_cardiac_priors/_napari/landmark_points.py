"""An editable "landmarks" Points layer: one point per landmark, named and coloured by convention.

Dragging a point marks its ``source`` as ``user`` (and gives it a gold border); deleting a point, or adding one beyond the
six, is refused with a message (a point added while the model left a landmark missing
becomes that landmark); :meth:`LandmarkPoints.reset` restores the model's landmarks. The layer stores world millimetres in napari's world axes (reversed RAS).
"""

from __future__ import annotations

import numpy as np

from ..conventions import LANDMARK_COLORS, LANDMARK_NAMES
from ..landmarks import Landmarks


class LandmarkPoints:
    """Owns one landmarks Points layer of ``viewer`` and enforces the editing rules."""

    def __init__(self, viewer, landmarks: Landmarks, *, name: str = "landmarks"):
        from napari.layers import Layer

        from .layers import landmarks_layer_data

        self.viewer = viewer
        self.model_landmarks = landmarks
        self.layer = viewer.add_layer(Layer.create(*landmarks_layer_data(landmarks, name=name)))
        self._restoring = False
        self._snapshot()
        self.layer.events.data.connect(self._on_data)

    def _snapshot(self) -> None:
        self._data = np.array(self.layer.data, copy=True)
        self._features = self.layer.features.copy()

    def _restore(self, message: str) -> None:
        from napari.utils.notifications import show_warning

        self._restoring = True
        try:
            self.layer.data = self._data.copy()
            self.layer.features = self._features.copy()
            self.layer.selected_data = set()
        finally:
            self._restoring = False
        show_warning(message)

    def _on_data(self, event) -> None:
        if self._restoring:
            return
        action = str(getattr(event, "action", ""))
        if action == "added":
            missing = [n for n in LANDMARK_NAMES if n not in set(self._features["name"])]
            if len(self.layer.data) - len(self._data) != 1 or not missing:
                self._restore("the six landmarks are fixed: drag a point to move it; a new point was not added")
                return
            self._name_new_point(missing[0])
        elif action == "removed":
            self._restore("the six landmarks are fixed: a landmark cannot be deleted (drag it instead, or Reset)")
        elif action == "changed":
            if len(self.layer.data) != len(self._data):  # data replaced wholesale with another count
                self._restore("the landmarks layer must keep one point per landmark")
                return
            moved = [i for i in getattr(event, "data_indices", ()) if i >= 0 and not np.allclose(self.layer.data[i], self._data[i])]
            if moved:
                from .layers import source_border_colors

                features = self.layer.features.copy()
                features.loc[moved, "source"] = "user"
                self._restoring = True
                try:
                    self.layer.features = features
                    self.layer.border_color = source_border_colors(list(features["source"]))
                finally:
                    self._restoring = False
            self._snapshot()

    def _name_new_point(self, name: str) -> None:
        """A point added while a landmark is missing becomes that landmark (source ``user``)."""
        from napari.utils.colormaps.standardize_color import transform_color

        features = self.layer.features.copy()
        features.loc[len(features) - 1, ["name", "source", "confidence"]] = [name, "user", np.nan]
        colors = np.array(self.layer.face_color, copy=True)
        colors[-1] = transform_color(LANDMARK_COLORS[name])[0]
        from .layers import source_border_colors

        self._restoring = True
        try:
            self.layer.features = features
            self.layer.face_color = colors
            self.layer.border_color = source_border_colors(list(features["source"]))
        finally:
            self._restoring = False
        self._snapshot()

    def reset(self) -> None:
        """Put the model's landmarks back (positions, confidences, sources)."""
        from .layers import landmarks_layer_data

        data, meta, _ = landmarks_layer_data(self.model_landmarks)
        self._restoring = True
        try:
            self.layer.data = data
            self.layer.features = meta["features"]
            self.layer.face_color = meta["face_color"]
            self.layer.border_color = meta["border_color"]
        finally:
            self._restoring = False
        self._snapshot()

    def landmarks(self) -> Landmarks:
        """The current (possibly corrected) landmarks, world RAS mm."""
        from .layers import points_to_landmarks

        return points_to_landmarks(self.layer.data, features=self.layer.features)
