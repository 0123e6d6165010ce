"""SimpleITK formats: DICOM series directories, MetaImage (.mha/.mhd), NRRD (.nrrd/.nhdr).

SimpleITK reports LPS world coordinates; they are converted to the NIfTI/RAS+ affine that
:class:`Volume` uses (x and y negated). ``GetArrayFromImage`` is already ``(z, y, x)``.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..volume import Volume
from ._atomic import atomic_path

_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
SITK_SUFFIXES = (".mha", ".mhd", ".nrrd", ".nhdr")


def _affine_from_sitk(img) -> np.ndarray:
    d = np.asarray(img.GetDirection(), dtype=np.float64).reshape(3, 3)
    s = np.asarray(img.GetSpacing(), dtype=np.float64)
    a = np.eye(4)
    a[:3, :3] = d * s  # columns scaled by spacing
    a[:3, 3] = img.GetOrigin()
    return _LPS_TO_RAS @ a


@contextmanager
def itk_messages_as_warnings(name: str):
    """Run ITK code with what it prints to the process's stderr (ITK writes its warnings there
    from C++, around any message of ours) captured and re-issued as one Python warning
    naming ``name``, the way every other note of this package reaches the user."""
    import tempfile
    import warnings

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read().decode("utf-8", "replace")
        lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("WARNING: In ")]
        if lines:
            warnings.warn(f"{name}: ITK: {lines[0][:300]}", UserWarning, stacklevel=3)


def _sitk_to_volume(img, *, name: str) -> tuple[np.ndarray, np.ndarray, dict]:
    import SimpleITK as sitk

    if img.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"{name}: {img.GetNumberOfComponentsPerPixel()} components per pixel; expected a scalar image")
    dim = img.GetDimension()
    if dim == 2:
        raise InputError(f"{name} is 2D with size {img.GetSize()}; a cardiac stack is 3D or 4D cine")
    if dim > 4:
        raise InputError(f"{name} is {dim}D; a cardiac stack is 3D or 4D cine")
    spacing = np.asarray(img.GetSpacing())
    if np.any(~np.isfinite(spacing)) or np.any(spacing <= 0):
        raise InputError(f"{name}: voxel spacing must be positive, the file gives {tuple(spacing)}")
    meta = {}
    if dim == 4:  # (x, y, z, t): take the spatial geometry, time step from the 4th axis
        meta["time_step"] = float(spacing[3])
        size = list(img.GetSize())
        frames = [sitk.Extract(img, size[:3] + [0], [0, 0, 0, t]) for t in range(size[3])]
        array = np.stack([sitk.GetArrayFromImage(f) for f in frames])
        affine = _affine_from_sitk(frames[0])
    else:
        array = sitk.GetArrayFromImage(img)
        affine = _affine_from_sitk(img)
    return array, affine, meta


def read_sitk_file(path: str | os.PathLike):
    """Read a .mha/.mhd/.nrrd file -> ``(array (z,y,x) or (t,z,y,x), affine, metadata)``."""
    import SimpleITK as sitk

    path = Path(path)
    try:
        with itk_messages_as_warnings(path.name):
            img = sitk.ReadImage(str(path))
    except RuntimeError as e:
        first = str(e).strip().splitlines()[-1] if str(e).strip() else "unreadable"
        raise InputError(f"{path.name}: not a readable image file ({first.strip()})") from e
    return _sitk_to_volume(img, name=path.name)


def find_dicom_series(directory: str | os.PathLike) -> list[str]:
    """Series instance UIDs of the DICOM series in ``directory`` (not recursive)."""
    import SimpleITK as sitk

    return list(sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(directory)) or ())


def read_dicom_series(directory: str | os.PathLike, *, series_uid: str | None = None):
    """Read one DICOM series from a folder -> ``(array (z,y,x), affine, metadata)``.

    With several series in the folder, ``series_uid`` picks one (default: the one with the
    most files).
    """
    import SimpleITK as sitk

    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"{directory}: not a directory")
    uids = find_dicom_series(directory)
    if not uids:
        raise InputError(f"{directory.name}: no DICOM series found in this folder")
    if series_uid is None:
        series_uid = max(uids, key=lambda u: len(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(directory), u)))
    elif series_uid not in uids:
        raise InputError(f"{directory.name}: no DICOM series with UID {series_uid}")
    files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(directory), series_uid)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    try:
        with itk_messages_as_warnings(directory.name):
            img = reader.Execute()
    except RuntimeError as e:
        raise InputError(f"{directory.name}: cannot read the DICOM series ({str(e).strip().splitlines()[-1]})") from e
    if img.GetDimension() == 3 and img.GetSize()[2] == 1:
        raise InputError(f"{directory.name}: the DICOM series has a single slice; a cardiac stack is 3D")
    array, affine, meta = _sitk_to_volume(img, name=directory.name)
    meta.update({"series_uid": series_uid, "n_series": len(uids), "series_uids": list(uids)})
    return array, affine, meta


def write_sitk(volume: Volume, path: str | os.PathLike) -> Path:
    """Write a 3D ``volume`` atomically as .mha/.nrrd (LPS geometry as ITK expects)."""
    import SimpleITK as sitk

    path = Path(path)
    if volume.is_cine:
        raise InputError(f"{path.name}: writing cine stacks is supported for NIfTI only")
    array = volume.array.astype(np.uint8) if volume.array.dtype == np.bool_ else volume.array
    img = sitk.GetImageFromArray(array)
    lps = _LPS_TO_RAS @ volume.affine
    sz, sy, sx = volume.spacing
    img.SetSpacing((sx, sy, sz))
    img.SetDirection(tuple((lps[:3, :3] / np.array([sx, sy, sz])).ravel()))
    img.SetOrigin(tuple(lps[:3, 3]))
    with atomic_path(path) as tmp:
        sitk.WriteImage(img, str(tmp), useCompression=True)
    return path
