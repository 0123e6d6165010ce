"""The "Cohort" dock widget: a finished batch run's subjects, measures and QC flags; a
double-click opens one subject's image, labels and landmarks for review."""

from __future__ import annotations

from pathlib import Path

from magicgui.widgets import CheckBox, ComboBox, Container, FileEdit, Label, PushButton, Table

from ..conventions import MEASURE_COLUMNS, is_flagged
from ..errors import InputError

#: The table's columns: the QC flag next to the subject (visible without scrolling), then the measures
COLUMNS = ("subject", "qc_flag", *(c for c in MEASURE_COLUMNS if c not in ("subject", "qc_flag", "plausibility")))


class CohortWidget(Container):
    """List the subjects of a ``cardiac-priors batch`` output folder and open them in the viewer.

    Rows flagged by QC come first when "Flagged only" is off; double-click a row (or call
    :meth:`open_subject`) to add the subject's image, segmentation (refined one too, if any),
    reference labels (if any) and editable landmarks, for the phase chosen.
    """

    def __init__(self, napari_viewer):
        super().__init__(labels=True)
        self._viewer = napari_viewer
        self._run = FileEdit(label="Run folder", mode="d")
        self._open = PushButton(text="Open run")
        self._flagged = CheckBox(text="Flagged only", value=False)
        self._phase = ComboBox(label="Phase", choices=["ed", "es"], value="ed")
        self._status = Label(label="Status", value="no run opened")
        self.table = Table(value={"data": [], "index": [], "columns": list(COLUMNS)})
        self.extend([self._run, self._open, self._flagged, self._phase, self._status, self.table])
        self._open.changed.connect(lambda *_: self.open_run(self._run.value))
        self._flagged.changed.connect(lambda *_: self._fill())
        self.table.native.cellDoubleClicked.connect(lambda row, _col: self.open_subject(self.row_ids[row]))
        self.table.native.setEditTriggers(self.table.native.EditTrigger.NoEditTriggers)
        self.run_dir = None
        self.rows = []
        self.row_ids = []
        self.landmark_points = None

    def open_run(self, path) -> bool:
        """Read ``path/measures.csv``; returns False (with a notification) if it is not a run folder."""
        from napari.utils.notifications import show_error

        from ..cohort import read_measures

        path = Path(str(path))
        try:
            rows = read_measures(path)
        except (InputError, OSError) as e:
            show_error(str(e))
            return False
        self.run_dir, self.rows = path, rows
        self._fill()
        n_failed = 0
        failures = path / "failures.csv"
        if failures.exists():
            n_failed = max(0, len(failures.read_text(encoding="utf-8").strip().splitlines()) - 1)
        n_flag = sum(1 for r in rows if is_flagged(r.get("qc_flag")))
        self._status.value = f"{len(rows)} subjects, {n_flag} flagged, {n_failed} failed"
        return True

    def _fill(self) -> None:
        rows = [r for r in self.rows if not self._flagged.value or is_flagged(r.get("qc_flag"))]
        rows.sort(key=lambda r: (not is_flagged(r.get("qc_flag")), r["subject"]))  # flagged first
        self.row_ids = [r["subject"] for r in rows]
        self.table.value = {"data": [[r.get(c, "") for c in COLUMNS] for r in rows],
                            "index": [str(i + 1) for i in range(len(rows))], "columns": list(COLUMNS)}

    def open_subject(self, subject_id: str) -> list:
        """Add the subject's layers for the chosen phase; returns them ([] with a notification on error)."""
        from napari.layers import Layer
        from napari.utils.notifications import show_error

        from ..cohort import subject_files
        from ..io import read_landmarks, read_volume
        from .landmark_points import LandmarkPoints
        from .layers import volume_layer_data

        phase = self._phase.value
        try:
            files = subject_files(self.run_dir, subject_id, phase)
            image = read_volume(files["image"], kind="image")
            volumes = [(f"{subject_id} {phase} image", image)]
            for key, title in (("labels", "reference labels"), ("seg", "labels"), ("refined", "refined labels")):
                if files[key] is not None:
                    volumes.append((f"{subject_id} {phase} {title}", read_volume(files[key], kind="labels")))
            landmarks = read_landmarks(files["landmarks"]) if files["landmarks"] is not None else None
        except (InputError, OSError, ValueError) as e:
            show_error(f"cannot open {subject_id}: {e}")
            return []
        layers = [self._viewer.add_layer(Layer.create(*volume_layer_data(v, name=name))) for name, v in volumes]
        if landmarks is not None and landmarks.valid.any():
            self.landmark_points = LandmarkPoints(self._viewer, landmarks, name=f"{subject_id} {phase} landmarks")
            layers.append(self.landmark_points.layer)
        self._status.value = f"opened {subject_id} ({phase.upper()})"
        return layers
