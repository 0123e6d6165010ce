"""One subject's measures row and QC flags in a cohort run (the ED/ES pairing and the QC
rules are the workflows': :mod:`~napari_cardiac_priors.workflows.measure` and
:mod:`~napari_cardiac_priors.workflows.qc`)."""

from __future__ import annotations


def subject_measures(sid: str, phases: dict, plausibility: dict) -> tuple[dict, list]:
    """The ``measures.csv`` row of subject ``sid`` (with its ``qc_flag``) and its QC flags.

    ``phases``: ``{phase: {"measures": cardiac_measures(...), "qc": [anatomy errors],
    "landmarks_missing": int | None}}`` for the phases ``"ed"``/``"es"`` that were processed;
    ``plausibility``: ``{phase: latent.plausibility(...)}`` (empty without a shape model).
    Volumes in mL, mass in g, EF in %; NaN where a phase is missing.
    """
    from ..workflows.measure import subject_row
    from ..workflows.qc import qc_flag, subject_findings

    measures = subject_row(sid, {ph: info["measures"] for ph, info in phases.items()})
    qc = subject_findings(phases, measures, plausibility)
    if plausibility:
        measures["plausibility"] = max(p["distance"] for p in plausibility.values())
    measures["qc_flag"] = qc_flag(qc)
    return measures, qc
