"""Queries on a finished run folder (what the Cohort widget opens): a subject's files."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import InputError
from .subject import subject_dir


def subject_files(out_dir, subject_id: str, phase: str = "ed") -> dict:
    """Paths of a finished subject's files for ``phase``: ``image``, ``labels`` (reference or
    None), ``seg``, ``refined`` and ``landmarks`` (None where absent). Raises :class:`InputError`
    if the subject has no result in ``out_dir``."""
    sdir = subject_dir(out_dir, subject_id)
    try:
        record = json.loads((sdir / f"{subject_id}_result.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"{subject_id}: no finished result in {out_dir}") from e
    inputs = record.get("inputs", {})
    if f"{phase}_image" not in inputs:
        raise InputError(f"{subject_id}: no {phase.upper()} image in this run")

    def output(suffix):
        name = f"{subject_id}_{phase}_{suffix}"
        return sdir / name if name in record.get("outputs", []) and (sdir / name).exists() else None

    labels = inputs.get(f"{phase}_labels", {}).get("path")
    return {"image": Path(inputs[f"{phase}_image"]["path"]), "labels": Path(labels) if labels else None,
            "seg": output("seg.nii.gz"), "refined": output("refined.nii.gz"), "landmarks": output("landmarks.json")}
