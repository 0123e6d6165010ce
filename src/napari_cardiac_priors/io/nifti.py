"""NIfTI (.nii, .nii.gz) reading and writing with exact geometry.

NIfTI stores ``(x, y, z[, t])``; :class:`Volume` holds ``(z, y, x)`` / ``(t, z, y, x)``.
The affine is the one nibabel reports (sform if set, else qform), mapping ``(x, y, z)``
voxel indices to RAS+ mm; it is written back as both sform and qform.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..volume import Volume
from ._atomic import atomic_path


def read_nifti_array(path: str | os.PathLike):
    """Read ``(array in NIfTI axis order, affine, header)``; raises :class:`InputError`."""
    import nibabel as nib

    path = Path(path)
    try:
        img = nib.load(str(path))
    except Exception as e:  # nibabel raises many types for non-NIfTI content
        raise InputError(f"{path.name}: not a readable NIfTI file ({type(e).__name__}: {e})") from e
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
        raise InputError(f"{path.name}: not a NIfTI file (read as {type(img).__name__})")
    try:
        data = np.asanyarray(img.dataobj)
    except (EOFError, OSError, zlib.error, ValueError) as e:
        raise InputError(f"{path.name}: the file is truncated or corrupt ({type(e).__name__}: {e})") from e
    pixdim = _raw_pixdim(path, img)[1:4]
    if np.any(~np.isfinite(pixdim)) or np.any(pixdim[: min(3, data.ndim)] <= 0):
        raise InputError(f"{path.name}: voxel spacing must be positive, the header gives {tuple(float(v) for v in pixdim)}")
    return data, _consistent_affine(img.affine, np.abs(pixdim), name=path.name) if data.ndim >= 3 else img.affine, img.header


def _raw_pixdim(path: Path, img) -> np.ndarray:
    """pixdim as stored in the file (nibabel silently replaces zeros with 1 on loading)."""
    from nibabel.openers import ImageOpener

    try:
        with ImageOpener(str(path)) as f:
            header = type(img.header).from_fileobj(f, check=False)
        return np.asarray(header["pixdim"], dtype=np.float64)
    except Exception:  # pragma: no cover - the loaded header is the fallback
        return np.asarray(img.header["pixdim"], dtype=np.float64)


def _consistent_affine(affine: np.ndarray, pixdim: np.ndarray, *, name: str) -> np.ndarray:
    """Use the header's voxel size (pixdim) when the sform/qform columns disagree with it.

    Some files (all of ACDC among them) carry a unit-scaled sform beside the true pixdim;
    like ITK, take the spacing from pixdim and the orientation and origin from the affine.
    """
    import logging

    affine = np.array(affine, dtype=np.float64)
    norms = np.linalg.norm(affine[:3, :3], axis=0)
    zooms = np.asarray(pixdim[:3], dtype=np.float64)
    if np.all(norms > 0) and not np.allclose(norms, zooms, rtol=1e-4, atol=1e-6):
        logging.getLogger(__name__).info(
            "%s: affine voxel size %s disagrees with pixdim %s; using pixdim", name, norms.round(4), zooms.round(4)
        )
        affine[:3, :3] = affine[:3, :3] / norms * zooms
    return affine


def nifti_to_volume(data: np.ndarray, affine: np.ndarray, *, name: str = "array") -> tuple[np.ndarray, dict]:
    """NIfTI-ordered ``(x, y, z[, t])`` data -> ``(z, y, x)`` / ``(t, z, y, x)`` array."""
    # trailing singleton dimensions (x, y, z, 1) are a 3D volume
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim < 3:
        raise InputError(
            f"{name} is {data.ndim}D with shape {data.shape}; a cardiac stack is 3D (x, y, z) or 4D cine (x, y, z, t)"
        )
    if data.ndim > 4:
        raise InputError(
            f"{name} is {data.ndim}D with shape {data.shape}; a cardiac stack is 3D (x, y, z) or 4D cine (x, y, z, t)"
        )
    return np.ascontiguousarray(data.T) if data.ndim == 3 else np.ascontiguousarray(np.transpose(data, (3, 2, 1, 0)))


def write_nifti(volume: Volume, path: str | os.PathLike) -> Path:
    """Write ``volume`` atomically to ``path`` (.nii or .nii.gz) with its affine and dtype."""
    import nibabel as nib

    path = Path(path)
    array = volume.array
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    if array.dtype == np.float16:
        array = array.astype(np.float32)
    data = array.T if array.ndim == 3 else np.transpose(array, (3, 2, 1, 0))
    img = nib.Nifti1Image(np.asarray(data), volume.affine)
    img.header.set_data_dtype(array.dtype)
    img.set_sform(volume.affine, code=1)
    img.set_qform(volume.affine, code=1)
    img.header.set_xyzt_units("mm", "sec")
    if array.ndim == 4 and "time_step" in volume.metadata:
        img.header["pixdim"][4] = float(volume.metadata["time_step"])
    if volume.kind == "labels":
        img.header["intent_code"] = 1002  # NIFTI_INTENT_LABEL
    with atomic_path(path) as tmp:
        nib.save(img, str(tmp))
    return path
