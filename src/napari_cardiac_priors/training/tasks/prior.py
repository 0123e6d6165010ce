"""The frozen T-L network as a shape prior for other tasks: loading it (hash-checked) from the
registry or from a training run folder, its input contract, and where its grid lies in a
model-grid volume."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..runs import load_run_network, run_entry


def _tl_contract(name) -> dict:
    """The input contract (``size``, ``spacing``, ...) of the T-L model ``name`` (registry name or run folder)."""
    path = Path(str(name))
    if path.is_dir():
        return run_entry(path)["input"]
    from ...registry import get_model

    return get_model(str(name)).input


def prior_identity(name) -> dict:
    """``{"name", "version", "sha256"}`` of the T-L model ``name`` (a registry name, or a run folder:
    then also ``"run"``, the folder's name): which prior a model was trained with, for its manifest."""
    path = Path(str(name))
    if path.is_dir():
        doc = run_entry(path)
        return {"name": doc.get("name"), "version": doc.get("version"), "sha256": doc.get("sha256"), "run": path.name}
    from ...registry import get_model

    entry = get_model(str(name))
    return {"name": entry.name, "version": entry.version, "sha256": entry.sha256}


def load_frozen_tl(name, *, device="cpu"):
    """A T-L network from the registry (name) or a training run folder, in eval mode, frozen.

    The weights go through the registry's hash check: a registry model's against its manifest,
    a run folder's ``model.safetensors`` against the sha256 in its ``manifest_entry.json`` (a
    folder whose entry records none is loaded unchecked). A corrupt or replaced file raises
    :class:`~napari_cardiac_priors.registry.RegistryError` naming the model and the file.
    """
    path = Path(str(name))
    if path.is_dir():
        net = load_run_network(path, device=device)
    else:
        from ...nn import build
        from ...registry import get_model, load_state_dict

        entry = get_model(str(name))
        net = build(entry.architecture, entry.config)
        net.load_state_dict({k: v.float() for k, v in load_state_dict(entry).items()})
    return net.to(device).eval().requires_grad_(False)


def tl_sample_grid(labels: np.ndarray, spacing, shape, tl_spacing, *, pose: str | None = None) -> np.ndarray:
    """Where the voxels of a T-L grid (``shape`` ``(Z, Y, X)`` at ``tl_spacing`` mm, centred on the
    heart of ``labels``) lie in a model-grid volume ``(S, Y, X)`` of ``spacing`` mm: an array
    ``(Z, Y, X, 3)`` of (x, y, z) coordinates in [-1, 1] for ``torch.nn.functional.grid_sample``
    (``align_corners=True``). Axes are the model grid's, or the heart's with ``pose="lv-rv"``
    (the prior's contract; :func:`~napari_cardiac_priors.latent.heart_axes`): the same grid as
    :func:`~napari_cardiac_priors.latent.tl_grid_labels` gives the prior's own training shapes."""
    from ...latent import pose_axes, tl_grid_affine
    from ...volume import Volume

    vol = Volume(np.asarray(labels), spacing=tuple(float(v) for v in spacing), kind="labels")
    heart = np.argwhere(np.isin(labels, (1, 2, 3)))
    centre = heart.mean(axis=0) if heart.size else (np.array(labels.shape, float) - 1) / 2.0
    contract = {"size": [int(v) for v in shape], "spacing": [float(v) for v in tl_spacing], "pose": pose}
    size, affine = tl_grid_affine(vol, contract, centre, axes=pose_axes(vol, contract))
    to_index = np.linalg.inv(vol.affine) @ affine  # grid (x, y, z, 1) -> model-grid voxel (x, y, z, 1)
    z, y, x = np.meshgrid(*(np.arange(n, dtype=float) for n in size), indexing="ij")
    idx = np.stack([x, y, z], axis=-1) @ to_index[:3, :3].T + to_index[:3, 3]  # (Z, Y, X, 3): x, y, z
    extent = np.array([max(n - 1, 1) for n in labels.shape[::-1]], float)
    return (2.0 * idx / extent - 1.0).astype(np.float32)


def volume_prior_loss(encoder, logits, target, grids):
    """:func:`napari_cardiac_priors.nn.losses.volume_prior_loss` (the ACNN shape prior of a volume
    on the model grid, through the T-L grids of :func:`tl_sample_grid`), imported when called so
    that this module does not import torch."""
    from ...nn.losses import volume_prior_loss as loss

    return loss(encoder, logits, target, grids)
