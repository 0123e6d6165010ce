"""Evaluate predictions against references: match files by case, resample onto the
reference's grid when needed, Dice / HD / HD95 / mean surface distance per structure,
landmark errors, and the mean over cases."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import InputError

#: The structures summarised over cases, in this order.
SUMMARY_STRUCTURES = ("LV", "MYO", "RV", "RVW")
SUMMARY_METRICS = ("dice", "hd", "hd95", "msd")


def case_key(path) -> str:
    """Name shared by a prediction and its reference.

    The stem without its label ending (:data:`~..conventions.LABEL_FILE_ENDINGS`: ``_seg``,
    ``_gt``, ``_labels``, ``_refined``, ...) and then without a trailing ``_image``:
    ``patient001_frame01_seg`` and ``patient001_frame01_gt`` share ``patient001_frame01``;
    ``phantom_000_ed_image_seg`` and ``phantom_000_ed_labels`` share ``phantom_000_ed``.
    """
    from ..conventions import LABEL_FILE_ENDINGS
    from ..io import stem

    key = stem(path)
    for ending in LABEL_FILE_ENDINGS:
        if key.lower().endswith(ending):
            key = key[: -len(ending)]
            break
    return key[: -len("_image")] if key.lower().endswith("_image") else key


def label_files(folder: str | os.PathLike) -> dict:
    """``{case_key: path}`` of the label files in ``folder`` (first by name when two share a key)."""
    from ..io import VOLUME_SUFFIXES, full_suffix, is_labels_name

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder")
    out = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and full_suffix(p) in VOLUME_SUFFIXES and is_labels_name(p) and not p.name.startswith("."):
            out.setdefault(case_key(p), p)
    return out


def evaluate_pair(pred, ref, *, structures=None) -> tuple[dict, bool]:
    """Metrics of a predicted label :class:`~..volume.Volume` against a reference, on the
    reference's grid (``pred`` resampled with nearest neighbour when the grids differ).
    Returns ``({"LV": {"dice", "hd", "hd95", "msd"}, ...}, resampled)``; distances in mm."""
    import numpy as np

    from ..metrics import evaluate_labels
    from ..volume import resample

    resampled = pred.spatial_shape != ref.spatial_shape or not np.allclose(pred.affine, ref.affine, atol=1e-4)
    if resampled:
        pred = resample(pred, ref)
    return evaluate_labels(pred.array, ref.array, ref.spacing, structures=structures), bool(resampled)


def _landmark_file(folder: Path, key: str) -> Path | None:
    exact = folder / f"{key}_landmarks.json"
    if exact.exists():
        return exact
    found = sorted(folder.glob(f"{key}*_landmarks.json"))
    return found[0] if found else None


def evaluate_folders(pred_dir: str | os.PathLike, gt_dir: str | os.PathLike) -> dict:
    """Every prediction in ``pred_dir`` that has a reference in ``gt_dir`` (matched by
    :func:`case_key`), with landmark errors (mm, per landmark name; None when missing) where
    both folders hold ``<case>_landmarks.json``.

    Returns ``{"n_cases", "unmatched_pred", "cases": {key: {"pred", "gt", "resampled",
    "structures", ["landmark_error_mm"]}}, "mean": {structure: {metric: mean}}}`` (JSON-ready).
    """
    import math

    import numpy as np

    from ..conventions import LANDMARK_NAMES
    from ..io import read_landmarks, read_volume
    from ..metrics import landmark_errors

    pred_dir, gt_dir = Path(pred_dir), Path(gt_dir)
    pred, gt = label_files(pred_dir), label_files(gt_dir)
    common = sorted(set(pred) & set(gt))
    if not common:
        raise InputError(f"no prediction in {pred_dir} matches a reference in {gt_dir} "
                         "(names are matched without _seg/_gt/_labels)")
    cases = {}
    for key in common:
        structures, resampled = evaluate_pair(read_volume(pred[key], kind="labels"), read_volume(gt[key], kind="labels"))
        case = {"pred": pred[key].name, "gt": gt[key].name, "resampled": resampled, "structures": structures}
        lp, lg = _landmark_file(pred_dir, key), gt_dir / f"{key}_landmarks.json"
        if lp is not None and lg.exists():
            err = landmark_errors(read_landmarks(lp), read_landmarks(lg))
            case["landmark_error_mm"] = {n: (None if math.isnan(e) else float(e)) for n, e in zip(LANDMARK_NAMES, err)}
        cases[key] = case
    summary = {}
    for name in SUMMARY_STRUCTURES:
        rows = [c["structures"][name] for c in cases.values() if name in c["structures"]]
        if rows:
            summary[name] = {m: float(np.nanmean([r[m] for r in rows])) for m in SUMMARY_METRICS}
    return {"n_cases": len(cases), "unmatched_pred": sorted(set(pred) - set(gt)), "cases": cases, "mean": summary}
