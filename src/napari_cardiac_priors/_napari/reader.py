"""napari reader: cardiac stacks and label maps (NIfTI, DICOM folders, .mha/.nrrd) and landmark files.

``get_reader`` only looks at the path (suffix, folder content, a landmark file's first bytes)
and returns None for what it declines, never raising. A path it accepted but cannot read
gives one napari error notification and no layer.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import InputError


def get_reader(path):
    """npe2 ``get_reader``: a reader function for ``path`` or None."""
    try:
        from ..io import can_read_volume, full_suffix

        if isinstance(path, list):
            if len(path) != 1:
                return None
            path = path[0]
        p = Path(str(path))
        if can_read_volume(p):
            return read_volume_layers
        if p.is_file() and full_suffix(p) in (".json", ".csv", ".vtk") and _looks_like_landmarks(p):
            return read_landmark_layers
    except Exception:  # a declined path must never raise
        return None
    return None


def _looks_like_landmarks(p: Path) -> bool:
    with open(p, "rb") as f:
        head = f.read(4096).decode("utf-8", errors="replace")
    suffix = p.suffix.lower()
    if suffix == ".vtk":
        return head.startswith("# vtk DataFile") and "POLYDATA" in head.upper()
    if suffix == ".csv":
        first = head.splitlines()[0] if head else ""
        return {"name", "x", "y", "z"} <= {c.strip() for c in first.split(",")}
    try:
        return "landmarks" in json.loads(p.read_text(encoding="utf-8"))
    except (ValueError, OSError, TypeError):
        return False


def _notify_error(message: str) -> list:
    from napari.utils.notifications import show_error

    show_error(message)
    return [(None,)]  # napari's sentinel for "read, but nothing to show"


def read_volume_layers(path) -> list:
    """Read one stack or label map as napari layer data; errors become a notification."""
    from ..io import read_volume, stem
    from .layers import volume_layer_data

    path = path[0] if isinstance(path, list) else path
    try:
        volume = read_volume(path)
    except InputError as e:
        return _notify_error(str(e))
    return [volume_layer_data(volume, name=stem(path))]


def read_landmark_layers(path) -> list:
    """Read a landmark file (JSON, CSV, VTK) as a Points layer."""
    from ..io import read_landmarks, stem
    from .layers import landmarks_layer_data

    path = path[0] if isinstance(path, list) else path
    try:
        lm = read_landmarks(path)
    except InputError as e:
        return _notify_error(str(e))
    if not lm.valid.any():
        return _notify_error(f"{Path(path).name}: no landmark has a position")
    return [landmarks_layer_data(lm, name=stem(path))]
