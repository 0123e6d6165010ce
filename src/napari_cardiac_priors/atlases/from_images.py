"""Atlases from a user's HR volumes, segmented by an SSLLN-HR model (as the paper builds
its atlases with SSLLN-HR): ``cardiac-priors atlases build DIR --model NAME``."""

from __future__ import annotations


def build_from_images(images, model: str, *, device: str = "cpu") -> list:
    """One :class:`~..registry.atlases.Atlas` per HR image file in ``images``: the labels and
    landmarks ``model`` gives it. Raises :class:`~..registry.RegistryError` for an image
    where the model finds fewer than 4 landmarks."""
    from pathlib import Path

    from ..inference import load_model, segment
    from ..io import read_volume, stem
    from ..registry import RegistryError
    from ..registry.atlases import Atlas

    loaded = load_model(model, device=device)
    atlases = []
    for path in images:
        vol = read_volume(path, kind="image")
        result = segment(vol, loaded, notes=[])
        if result.landmarks is None or result.landmarks.valid.sum() < 4:
            raise RegistryError(f"{Path(path).name}: the model found fewer than 4 landmarks; it cannot be an atlas")
        atlases.append(Atlas(stem(path), result.labels, result.landmarks, vol))
    return atlases
