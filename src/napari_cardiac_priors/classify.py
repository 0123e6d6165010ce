"""Pathology classification from shape codes (ACNN §III-F).

Each patient is described by the T-L codes of its ED (and ES) segmentation, or, as the
baseline, by a PCA projection of the same label maps to the same number of dimensions (PCA
is fitted on the training patients only). Both use the label maps resampled onto the T-L
model's heart-centred grid (the spatial normalisation PCA needs). A tree ensemble
(scikit-learn's random forest, 500 trees) is evaluated by stratified 10-fold cross-validation
on the training patients and then fitted on all of them to predict the test patients.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import InputError


@dataclass
class ShapeSet:
    """Per patient: id, group (or None), and the label maps per phase on the T-L grid."""

    ids: list = field(default_factory=list)
    groups: list = field(default_factory=list)
    maps: dict = field(default_factory=dict)  # phase -> list of (Z, Y, X) uint8 arrays


def read_shapes(folder, *, phases=("ed",), shape_model: str = "tl-acdc", seg_model: str | None = "sslln-acdc",
                device: str = "cpu", contract: dict | None = None) -> ShapeSet:
    """Label maps of the ACDC-layout patients in ``folder`` on the T-L grid of ``shape_model``
    (or of ``contract``: ``size``, ``spacing`` and optionally ``pose``, for features other than
    the model's codes).

    A phase without a manual ``*_gt`` file is segmented with ``seg_model`` (an error if None).
    """
    from .inference import load_model, segment
    from .io.acdc import iter_patients
    from .latent import tl_grid_labels

    contract = contract or load_model(shape_model, device=device).entry.input
    out = ShapeSet(maps={ph: [] for ph in phases})
    patients = list(iter_patients(folder))
    if not patients:
        raise InputError(f"{folder}: no ACDC patient folder (patientNNN with Info.cfg)")
    for p in patients:
        out.ids.append(p.id)
        out.groups.append(p.group)
        for ph in phases:
            labels = p.labels(ph)
            if labels is None:
                if seg_model is None:
                    raise InputError(f"{p.id}: no {ph.upper()} labels and no segmentation model")
                labels = segment(p.image(ph), load_model(seg_model, device=device), notes=[]).labels
            out.maps[ph].append(tl_grid_labels(labels, contract).array.astype(np.uint8))
    return out


def tl_features(shapes: ShapeSet, *, shape_model: str = "tl-acdc", device: str = "cpu") -> np.ndarray:
    """``(n_patients, n_phases * D)`` T-L codes, one ``D``-vector per phase in ``shapes.maps`` order."""
    from .inference import load_model
    from .latent import tl_codes

    model = load_model(shape_model, device=device)
    return np.concatenate([tl_codes(model, np.stack(maps)) for maps in shapes.maps.values()], axis=1)


class PCAFeatures:
    """PCA of the one-hot label maps (per phase), fitted on training patients."""

    def __init__(self, n_components: int = 64, classes=(1, 2, 3)):
        self.n_components, self.classes, self.models = n_components, tuple(classes), {}

    def _matrix(self, maps) -> np.ndarray:
        return np.stack([np.concatenate([(m == c).ravel() for c in self.classes]) for m in maps]).astype(np.float32)

    def fit_transform(self, shapes: ShapeSet) -> np.ndarray:
        from sklearn.decomposition import PCA

        out = []
        for ph, maps in shapes.maps.items():
            x = self._matrix(maps)
            self.models[ph] = PCA(n_components=min(self.n_components, len(maps) - 1), random_state=0).fit(x)
            out.append(self.models[ph].transform(x))
        return np.concatenate(out, axis=1)

    def transform(self, shapes: ShapeSet) -> np.ndarray:
        return np.concatenate([self.models[ph].transform(self._matrix(maps)) for ph, maps in shapes.maps.items()], axis=1)


def cross_validate(features: np.ndarray, groups, *, folds: int = 10, seed: int = 0, repeats: int = 1) -> dict:
    """Stratified ``folds``-fold cross-validated accuracy of a random forest (500 trees).

    ``repeats`` > 1 repeats it with other fold splits (seeds ``seed, seed + 1, ...``): with 100
    patients one patient is 1 %, and the split alone moves the accuracy by a few points.
    Returns ``accuracy`` (the mean over repeats), ``accuracies`` (one per repeat) and
    ``confusion`` (``{true: {predicted: count}}``, summed over the repeats).
    """
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    y = np.asarray(groups)
    labels = sorted(set(y))
    confusion = {t: {p: 0 for p in labels} for t in labels}
    accuracies = []
    for r in range(repeats):
        clf = RandomForestClassifier(n_estimators=500, random_state=seed + r, n_jobs=1)
        pred = cross_val_predict(clf, features, y, cv=StratifiedKFold(folds, shuffle=True, random_state=seed + r))
        accuracies.append(float(np.mean(pred == y)))
        for t in labels:
            for p in labels:
                confusion[t][p] += int(np.sum((y == t) & (pred == p)))
    return {"accuracy": float(np.mean(accuracies)), "accuracies": accuracies, "n": int(len(y)), "folds": folds,
            "confusion": confusion}


def fit_predict(train_features, train_groups, test_features, *, seed: int = 0) -> list:
    from sklearn.ensemble import RandomForestClassifier

    clf = RandomForestClassifier(n_estimators=500, random_state=seed, n_jobs=1).fit(train_features, list(train_groups))
    return [str(g) for g in clf.predict(test_features)]


def restrict(shapes: ShapeSet, groups) -> ShapeSet:
    """The patients of some groups only (e.g. NOR, DCM, HCM)."""
    keep = [i for i, g in enumerate(shapes.groups) if g in set(groups)]
    return ShapeSet([shapes.ids[i] for i in keep], [shapes.groups[i] for i in keep],
                    {ph: [m[i] for i in keep] for ph, m in shapes.maps.items()})
