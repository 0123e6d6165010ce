"""Atlas sets: HR label maps (1.25 x 1.25 x 2 mm, five labels) with their six landmarks.

An atlas set is a folder of ``atlas_NNN_labels.nii.gz`` and ``atlas_NNN_landmarks.json`` (and
optionally ``atlas_NNN_image.nii.gz``) registered in the model manifest with ``task`` "atlas";
its ``sha256`` is the digest of the sorted ``name:sha256`` lines of its files, so a changed,
missing or added file is refused like a changed weights file. Label maps compress to a few
tens of kB each, which is why atlases are NIfTI rather than safetensors (no code runs on
loading either way).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..landmarks import Landmarks
from ..volume import Volume
from . import BUNDLED_DIR, ModelEntry, RegistryError, _read_manifest, _write_manifest, get_model, sha256_of_folder, user_dir, verified_path


@dataclass
class Atlas:
    """One atlas: ``labels`` (canonical, HR grid), ``landmarks`` (world mm), optional ``image``."""

    id: str
    labels: Volume
    landmarks: Landmarks
    image: Volume | None = None


#: the atlas-set name that lets the target choose (:func:`atlas_set_for`)
AUTO = "auto"
#: real anatomy from ACDC manual labels (LV, MYO, RV) and phantoms with an RV wall
REAL_ATLASES, PHANTOM_ATLASES = "atlases-acdc", "atlases-phantom"


def atlas_set_for(labels) -> str:
    """The bundled atlas set that fits a target label map (a labels Volume or array): the
    phantom set for targets that have an RV wall (label 4; only phantom-trained models give
    one), else the real-anatomy set, which holds the structures real scans are labelled with."""
    import numpy as np

    from ..conventions import RVW

    array = labels.array if isinstance(labels, Volume) else labels
    return PHANTOM_ATLASES if np.any(np.asarray(array) == RVW) else REAL_ATLASES


def resolve_atlas_set(source, labels) -> str:
    """``source`` (a set name or folder), or with :data:`AUTO` / None the set for ``labels``."""
    return atlas_set_for(labels) if source in (None, "", AUTO) else str(source)


def load_atlases(name: str) -> list[Atlas]:
    """The atlases of the set ``name`` (hash-checked), in their stored order, each with the id
    it was built with (``patient012_ed``, a file stem)."""
    entry = get_model(name)
    if entry.task != "atlas":
        raise RegistryError(f"{name!r} is a {entry.task} model, not an atlas set")
    atlases = read_atlas_folder(verified_path(entry), pattern="atlas_*_labels.nii.gz")
    if not atlases:
        raise RegistryError(f"atlas set {name!r} holds no atlas")
    ids = entry.config.get("ids") or []
    if len(ids) == len(atlases):  # the ids the set was built with (files are atlas_NNN)
        for atlas, aid in zip(atlases, ids):
            atlas.id = str(aid)
    return atlases


def load_atlas_source(source) -> list[Atlas]:
    """Atlases from an installed set's name or from a folder (see :func:`read_atlas_folder`)."""
    from ..errors import InputError

    if not Path(source).is_dir():
        return load_atlases(str(source))
    atlases = read_atlas_folder(source)
    if not atlases:
        raise InputError(f"{source}: no atlas (pairs of *_labels.nii.gz and *_landmarks.json)")
    return atlases


def read_atlas_folder(folder, *, pattern: str = "*_labels.nii.gz") -> list[Atlas]:
    """Atlases from a folder of ``<id>_labels.nii.gz`` + ``<id>_landmarks.json`` (+ optional
    ``<id>_image.nii.gz``), sorted by id; labels without their landmark file are an error. No hash
    check: use :func:`load_atlases` for installed sets."""
    from ..io import read_landmarks, read_volume

    atlases = []
    for lab in sorted(Path(folder).glob(pattern)):
        aid = lab.name[: -len("_labels.nii.gz")]
        lm, img = lab.parent / f"{aid}_landmarks.json", lab.parent / f"{aid}_image.nii.gz"
        if not lm.exists():
            from ..errors import InputError

            raise InputError(f"{lab.name} has no landmark file {lm.name} in {Path(folder).name}; an atlas needs both")
        atlases.append(Atlas(aid, read_volume(lab, kind="labels"), read_landmarks(lm),
                             read_volume(img, kind="image") if img.exists() else None))
    return atlases


def write_atlas_set(atlases: list[Atlas], name: str, *, directory: str | os.PathLike | None = None, description: str = "",
                    license: str = "", citation: str = "", training: dict | None = None, overwrite: bool = False,
                    bundled: bool = False) -> ModelEntry:
    """Write ``atlases`` as the set ``name`` into the user model folder (or the package with
    ``bundled``) and register it in that folder's manifest."""
    from ..io import write_landmarks, write_volume

    from . import check_name

    check_name(name, what="atlas set")
    root = BUNDLED_DIR if bundled else Path(directory) if directory is not None else user_dir()
    entries = _read_manifest(root)
    if any(e.name == name for e in entries) and not overwrite:
        raise RegistryError(f"{name!r} is already installed in {root}; pass --overwrite (overwrite=True) to replace it")
    if not bundled and any(e.name == name for e in _read_manifest(BUNDLED_DIR)):
        raise RegistryError(f"{name!r} is bundled with the package; choose another name")
    folder = root / "atlases" / name
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("atlas_*"):
        old.unlink()
    for i, atlas in enumerate(atlases):
        stem = folder / f"atlas_{i:03d}"
        write_volume(atlas.labels, f"{stem}_labels.nii.gz")
        write_landmarks(atlas.landmarks, f"{stem}_landmarks.json")
        if atlas.image is not None:
            write_volume(atlas.image, f"{stem}_image.nii.gz")
    entry = ModelEntry.from_dict({
        "name": name, "version": "1.0", "task": "atlas", "architecture": "atlas-set",
        "file": f"atlases/{name}", "sha256": sha256_of_folder(folder), "description": description,
        "config": {"n_atlases": len(atlases), "ids": [a.id for a in atlases]},
        "labels": {str(v): v for v in range(5)}, "training": training or {}, "license": license, "citation": citation,
    }, root=root)
    _write_manifest(root, [e for e in entries if e.name != name] + [entry])
    return entry
