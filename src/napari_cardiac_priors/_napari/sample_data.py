"""napari sample data: phantom subjects made by the package's own generator (seed 0, NOR).

The same volumes are committed under ``sample_data/`` (``cardiac-priors phantom sample_data
--n 1 --seed 0 --pathology NOR --lr``) and a test checks that they are regenerated exactly.
"""

from __future__ import annotations

SEED = 0
PATHOLOGY = "NOR"


def _subject():
    from ..phantom import make_subject, subject_seed

    return make_subject(subject_seed(SEED, 0), pathology=PATHOLOGY, lr=True)["ed"]


def phantom_hr() -> list:
    """HR phantom (1.25 x 1.25 x 2 mm): image, labels and the six landmarks."""
    from .layers import landmarks_layer_data, volume_layer_data

    ph = _subject()
    return [
        volume_layer_data(ph.image, name="phantom HR image"),
        volume_layer_data(ph.labels, name="phantom HR labels"),
        landmarks_layer_data(ph.landmarks, name="landmarks"),
    ]


def phantom_lr() -> list:
    """Artefact-corrupted LR stack (10 mm slices, shifts) with the HR labels of the same subject."""
    from .layers import landmarks_layer_data, volume_layer_data

    ph = _subject()
    return [
        volume_layer_data(ph.lr_image, name="phantom LR image"),
        volume_layer_data(ph.labels, name="phantom HR labels"),
        landmarks_layer_data(ph.landmarks, name="landmarks"),
    ]
