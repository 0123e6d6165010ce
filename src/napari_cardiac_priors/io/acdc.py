"""The ACDC 2017 data set layout: ``training/patientNNN/{Info.cfg, patientNNN_frameFF[_gt].nii.gz}``.

ACDC is CC BY-NC-SA 4.0 (non-commercial research; cite Bernard et al., IEEE TMI 2018). Read
it from where it lies; never copy it into the repository. Labels are mapped to the canonical
scheme (1 LV, 2 MYO, 3 RV) on reading.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..errors import InputError
from ..volume import Volume

ACDC_GROUPS = ("NOR", "MINF", "DCM", "HCM", "RV")
ACDC_LICENSE = "CC BY-NC-SA 4.0"
ACDC_CITATION = (
    'O. Bernard, A. Lalande, C. Zotti, F. Cervenansky, et al. "Deep Learning Techniques for Automatic MRI '
    'Cardiac Multi-structures Segmentation and Diagnosis: Is the Problem Solved?" IEEE TMI 37(11), '
    "2514-2525, 2018. doi:10.1109/TMI.2018.2837502"
)


@dataclass(frozen=True)
class ACDCPatient:
    """One ACDC patient folder: its ``Info.cfg`` fields and the paths of its ED/ES files."""

    id: str
    path: Path
    group: str | None
    height_cm: float | None
    weight_kg: float | None
    n_frames: int | None
    ed_frame: int
    es_frame: int

    def image_path(self, phase: str) -> Path:
        """``patientNNN_frameFF.nii.gz`` of phase ``"ed"`` or ``"es"``."""
        return self.path / f"{self.id}_frame{self._frame(phase):02d}.nii.gz"

    def labels_path(self, phase: str) -> Path:
        """``patientNNN_frameFF_gt.nii.gz`` of phase ``"ed"`` or ``"es"``."""
        return self.path / f"{self.id}_frame{self._frame(phase):02d}_gt.nii.gz"

    def _frame(self, phase: str) -> int:
        phase = phase.lower()
        if phase not in ("ed", "es"):
            raise ValueError(f"phase must be 'ed' or 'es', got {phase!r}")
        return self.ed_frame if phase == "ed" else self.es_frame

    def image(self, phase: str) -> Volume:
        """The short-axis image of ``phase`` as a Volume ``(z, y, x)``."""
        from . import read_volume

        return read_volume(self.image_path(phase), kind="image")

    def labels(self, phase: str) -> Volume | None:
        """The manual labels of ``phase``, canonical values; None if the file is absent."""
        from . import read_volume

        p = self.labels_path(phase)
        return read_volume(p, kind="labels", label_scheme="acdc") if p.exists() else None


def read_info(path: str | os.PathLike) -> dict:
    """Parse an ``Info.cfg`` (``Key: value`` lines) into a dict of strings."""
    info = {}
    for line in Path(path).read_text().splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            info[key.strip()] = value.strip()
    return info


def read_patient(path: str | os.PathLike) -> ACDCPatient:
    """Read one ``patientNNN`` folder."""
    path = Path(path)
    cfg = path / "Info.cfg"
    if not cfg.is_file():
        raise InputError(f"{path.name}: no Info.cfg; not an ACDC patient folder")
    info = read_info(cfg)

    def num(key, cast=float):
        try:
            return cast(float(info[key]))
        except (KeyError, ValueError):
            return None

    ed, es = num("ED", int), num("ES", int)
    if ed is None or es is None:
        raise InputError(f"{path.name}/Info.cfg: ED and ES frame numbers are required")
    return ACDCPatient(
        id=path.name, path=path, group=info.get("Group"), height_cm=num("Height"), weight_kg=num("Weight"),
        n_frames=num("NbFrame", int), ed_frame=ed, es_frame=es,
    )


def iter_patients(root: str | os.PathLike, *, ids=None) -> Iterator[ACDCPatient]:
    """Iterate the patients under ``root`` (the ``training`` folder or its parent), sorted.

    ``ids`` restricts to some patients, as numbers (1..100) or folder names.
    """
    root = Path(root)
    if (root / "training").is_dir():
        root = root / "training"
    if not root.is_dir():
        raise InputError(f"{root}: no such ACDC folder")
    wanted = None
    if ids is not None:
        wanted = {f"patient{int(i):03d}" if not str(i).startswith("patient") else str(i) for i in ids}
    for p in sorted(root.glob("patient[0-9][0-9][0-9]")):
        if p.is_dir() and (wanted is None or p.name in wanted):
            yield read_patient(p)


def default_root() -> Path:
    """``$CARDIAC_PRIORS_ACDC`` or ``../shared/data/acdc`` beside the working directory's project."""
    env = os.environ.get("CARDIAC_PRIORS_ACDC")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        cand = parent.parent / "shared" / "data" / "acdc"
        if cand.is_dir():
            return cand
    return Path.cwd().parent / "shared" / "data" / "acdc"
