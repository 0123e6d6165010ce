"""Reading and writing volumes and landmarks with their geometry.

``read_volume`` opens NIfTI, DICOM series folders and SimpleITK formats (.mha/.mhd/.nrrd)
as a :class:`~napari_cardiac_priors.volume.Volume`; ``write_volume`` writes NIfTI or
.mha/.nrrd atomically. Label maps are recognised by name (``*_gt``, ``*_seg``,
``*_labels``, ``*_label``, ``*_mask``) or by content (an integer volume with at most five
values, all canonical labels); ACDC ground truth (``patientNNN_frameFF_gt``) is mapped to the
canonical labels on reading.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

import numpy as np

from ..conventions import ACDC_TO_CANONICAL, CANONICAL_TO_ACDC, LABELS, check_labels
from ..errors import InputError
from ..volume import Volume
from ._atomic import atomic_path, full_suffix, stem
from .landmarks import LANDMARK_SUFFIXES, read_landmarks, write_landmarks
from .meshes import MESH_FORMATS, read_mesh, write_mesh

__all__ = [
    "VOLUME_SUFFIXES",
    "LANDMARK_SUFFIXES",
    "MESH_FORMATS",
    "atomic_path",
    "can_read_volume",
    "full_suffix",
    "is_labels_name",
    "read_landmarks",
    "read_mesh",
    "read_volume",
    "stem",
    "write_landmarks",
    "write_mesh",
    "write_volume",
]

NIFTI_SUFFIXES = (".nii", ".nii.gz")
VOLUME_SUFFIXES = NIFTI_SUFFIXES + (".mha", ".mhd", ".nrrd", ".nhdr")
WRITE_SUFFIXES = NIFTI_SUFFIXES + (".mha", ".nrrd")
_ACDC_GT_NAME = re.compile(r"^patient\d{3}_frame\d{2}_gt$", re.IGNORECASE)

LabelScheme = Literal["auto", "canonical", "acdc"]


def is_labels_name(path: str | os.PathLike) -> bool:
    """True when the file name marks a label map (``*_gt``, ``*_seg``, ``*_labels``, ...)."""
    from ..conventions import LABEL_FILE_ENDINGS

    return stem(path).lower().endswith(LABEL_FILE_ENDINGS)


def can_read_volume(path: str | os.PathLike) -> bool:
    """Cheap check (suffix or folder with DICOM files); does not open the data."""
    path = Path(path)
    if path.is_dir():
        return _looks_like_dicom_dir(path)
    return full_suffix(path) in VOLUME_SUFFIXES


def _looks_like_dicom_dir(path: Path) -> bool:
    try:
        for i, f in enumerate(path.iterdir()):
            if i > 200:
                break
            if f.is_file():
                if f.suffix.lower() in (".dcm", ".ima"):
                    return True
                with open(f, "rb") as fh:
                    head = fh.read(132)
                if head[128:132] == b"DICM":
                    return True
    except OSError:
        return False
    return False


def _is_label_content(array: np.ndarray) -> bool:
    if not (np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_):
        return False
    lo, hi = array.min(), array.max()
    if lo < 0 or hi > max(LABELS):
        return False
    return np.unique(array).size <= len(LABELS)


def read_volume(
    path: str | os.PathLike,
    *,
    kind: Literal["image", "labels"] | None = None,
    label_scheme: LabelScheme = "auto",
    series_uid: str | None = None,
) -> Volume:
    """Read a cardiac stack or label map.

    Parameters
    ----------
    path : file (.nii, .nii.gz, .mha, .mhd, .nrrd, .nhdr) or DICOM series folder
    kind : "image", "labels" or None
        None guesses from the name and content (see the module docstring).
    label_scheme : "auto", "canonical" or "acdc"
        How label values are coded in the file; "auto" treats ACDC ground-truth names
        (``patientNNN_frameFF_gt``) as ACDC (1 RV, 2 MYO, 3 LV) and others as canonical.
        The returned volume always holds canonical labels.
    series_uid : str, optional
        Which DICOM series of a folder holding several.

    Returns
    -------
    Volume
        ``array`` is ``(z, y, x)`` or, for cine, ``(t, z, y, x)``.

    Raises
    ------
    InputError
        One-line message naming the file: unreadable, truncated, not 3D/4D, NaN/Inf voxels,
        non-positive spacing, empty DICOM folder, unknown label values.
    """
    path = Path(path)
    if label_scheme not in ("auto", "canonical", "acdc"):
        raise ValueError(f"label_scheme must be 'auto', 'canonical' or 'acdc', got {label_scheme!r}")
    if kind not in (None, "image", "labels"):
        raise ValueError(f"kind must be 'image', 'labels' or None, got {kind!r}")
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    metadata: dict = {"source": str(path)}
    if path.is_dir():
        from .sitk import read_dicom_series

        array, affine, meta = read_dicom_series(path, series_uid=series_uid)
        metadata.update(meta)
    else:
        suffix = full_suffix(path)
        if suffix in NIFTI_SUFFIXES:
            from .nifti import nifti_to_volume, read_nifti_array

            data, affine, header = read_nifti_array(path)
            array = nifti_to_volume(data, affine, name=path.name)
            if array.ndim == 4:
                metadata["time_step"] = float(header["pixdim"][4])
        elif suffix in (".mha", ".mhd", ".nrrd", ".nhdr"):
            from .sitk import read_sitk_file

            array, affine, meta = read_sitk_file(path)
            metadata.update(meta)
        else:
            raise InputError(f"{path.name}: unsupported file type {suffix or '(no suffix)'}; use {', '.join(VOLUME_SUFFIXES)} or a DICOM folder")
    if array.size == 0:
        raise InputError(f"{path.name}: the volume is empty (shape {array.shape})")
    if array.dtype.names or np.iscomplexobj(array) or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        kind_of = "an RGB (colour)" if array.dtype.names else "a complex" if np.iscomplexobj(array) else f"a {array.dtype}"
        raise InputError(f"{path.name}: {kind_of} image; a cardiac stack holds one real intensity per voxel")
    if np.issubdtype(array.dtype, np.floating):
        bad = int(np.count_nonzero(~np.isfinite(array)))
        if bad:
            raise InputError(f"{path.name}: {bad} voxel(s) are NaN or Inf; fix or mask them before analysis")
    if kind is None:
        kind = "labels" if (is_labels_name(path) or _is_label_content(array)) else "image"
    if kind == "labels":
        array = _to_canonical_labels(array, path=path, scheme=label_scheme)
        metadata["label_scheme_in_file"] = "acdc" if _uses_acdc(path, label_scheme) else "canonical"
    try:
        return Volume(array, affine=affine, kind=kind, metadata=metadata)
    except ValueError as e:
        raise InputError(f"{path.name}: {e}") from e


def _uses_acdc(path: Path, scheme: LabelScheme) -> bool:
    return scheme == "acdc" or (scheme == "auto" and bool(_ACDC_GT_NAME.match(stem(path))))


def _to_canonical_labels(array: np.ndarray, *, path: Path, scheme: LabelScheme) -> np.ndarray:
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(array == np.round(array)):
            raise InputError(f"{path.name}: a label map must hold whole numbers; this one has fractional values")
    acdc = _uses_acdc(path, scheme)
    valid = range(len(ACDC_TO_CANONICAL)) if acdc else LABELS
    values = np.unique(array)
    unknown = [v for v in values.tolist() if v not in valid]
    if unknown:
        coding = "ACDC labels are 0-3" if acdc else "canonical labels are 0 background, 1 LV, 2 MYO, 3 RV, 4 RVW"
        raise InputError(f"{path.name}: unknown label values {unknown[:8]}; {coding}")
    out = array.astype(np.uint8)
    return ACDC_TO_CANONICAL[out] if acdc else out


def write_volume(volume: Volume, path: str | os.PathLike, *, label_scheme: Literal["canonical", "acdc"] = "canonical") -> Path:
    """Write ``volume`` atomically; the format follows the suffix (.nii, .nii.gz, .mha, .nrrd).

    Labels are written as uint8 canonical labels, or ACDC-coded with ``label_scheme="acdc"``.
    The file keeps the volume's affine and, for images, its dtype.
    """
    path = Path(path)
    suffix = full_suffix(path)
    if suffix not in WRITE_SUFFIXES:
        raise InputError(f"{path.name}: cannot write {suffix or '(no suffix)'}; use {', '.join(WRITE_SUFFIXES)}")
    if volume.kind == "labels":
        check_labels(volume.array, name=f"labels for {path.name}")
        array = volume.array.astype(np.uint8)
        if label_scheme == "acdc":
            if np.any(array == 4):
                raise InputError(f"{path.name}: ACDC labels have no RV wall (4); write canonical labels instead")
            array = CANONICAL_TO_ACDC[array]
        volume = volume.with_array(array)
    elif np.issubdtype(volume.array.dtype, np.floating) and not np.all(np.isfinite(volume.array)):
        raise InputError(f"{path.name}: the image holds NaN or Inf; nothing was written")
    if suffix in NIFTI_SUFFIXES:
        from .nifti import write_nifti

        return write_nifti(volume, path)
    from .sitk import write_sitk

    return write_sitk(volume, path)
