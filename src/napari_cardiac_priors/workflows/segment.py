"""Segment one image: the model's labels and landmarks, with its notes (out-of-domain scans,
implausible results, resampling) collected as text for the user instead of warnings."""

from __future__ import annotations

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
    if model.entry.task == "super-resolution":
        return SegmentedImage(enhance(volume, model), [])
    notes: list = []
    result = segment(volume, model, tta=tta, notes=notes)
    distance = None
    if shape_model and np.any(result.labels.array):
        from ..latent import plausibility

        shape = load_model(shape_model, device=model.device) if isinstance(shape_model, str) else shape_model
        distance = plausibility(result.labels, shape)
    return SegmentedImage(result, list(dict.fromkeys(notes)), distance)  # once each, in order
