"""Segment one image: the model's labels and landmarks, with its notes (out-of-domain scans,
implausible results, resampling) collected as text for the user instead of warnings."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

from ..volume import Volume


@dataclass
class SegmentedImage:
    """``result`` (an :class:`~napari_cardiac_priors.inference.Segmentation`, or for a
    super-resolution model the HR image Volume) and the notes a user should read."""

    result: object
    notes: list = field(default_factory=list)
    plausibility: float | None = None


def segment_image(volume: Volume, model, *, tta: bool = False, shape_model=None) -> SegmentedImage:
    """Run ``model`` (a name or a loaded model) on a 3D ``volume``: segmentation, or the HR
    image of a super-resolution model. ``shape_model`` (a T-L model): also the Mahalanobis
    distance of the labels' code to the training shapes (``plausibility``)."""
    import numpy as np

    from ..inference import enhance, load_model, segment

    model = load_model(model) if isinstance(model, str) else model
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if model.entry.task == "super-resolution":
            return SegmentedImage(enhance(volume, model), [str(w.message) for w in caught])
        result = segment(volume, model, tta=tta)
        distance = None
        if shape_model and np.any(result.labels.array):
            from ..latent import plausibility

            shape = load_model(shape_model, device=model.device) if isinstance(shape_model, str) else shape_model
            distance = plausibility(result.labels, shape)
    notes = list(dict.fromkeys(str(w.message) for w in caught))  # once each, in order
    return SegmentedImage(result, notes, distance)
