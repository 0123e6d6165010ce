"""Quality control of one subject's results: what counts as a finding, written once for
cohort runs (``qc_flag`` of ``measures.csv``) and the Segment widget."""

from __future__ import annotations

import math

from ..conventions import IMPLAUSIBLE_PERCENTILE, QC_OK


def shape_finding(plausibility: dict | None) -> str | None:
    """The finding for a shape's plausibility (``{"distance", "percentile"}`` of
    :func:`~napari_cardiac_priors.latent.plausibility`), or None when it is within
    :data:`~..conventions.IMPLAUSIBLE_PERCENTILE` of the training shapes."""
    if not plausibility or plausibility["percentile"] < IMPLAUSIBLE_PERCENTILE:
        return None
    return (f"implausible shape (Mahalanobis distance {plausibility['distance']:.1f}, beyond "
            f"{plausibility['percentile']:.0f} % of the training shapes)")


def subject_findings(phases: dict, measures: dict, plausibility: dict | None = None) -> list[str]:
    """A subject's QC findings, as short texts.

    ``phases``: ``{phase: {"qc": [anatomy errors], "landmarks_missing": int | None}}``;
    ``measures``: its row of ``measures.csv`` (``lv_ef``, ``rv_ef`` in %); ``plausibility``:
    ``{phase: {"distance", "percentile"}}`` (the least plausible phase is reported).
    """
    found = [f"{ph}: {e}" for ph, info in phases.items() for e in info.get("qc", ())]
    found += [f"{ph}: {info['landmarks_missing']} landmark(s) not found"
              for ph, info in phases.items() if info.get("landmarks_missing")]
    for key in ("lv_ef", "rv_ef"):
        ef = measures.get(key)
        if ef is not None and math.isfinite(ef) and not 0.0 < ef < 100.0:
            found.append(f"{key} {ef:.0f} % out of (0, 100)")
    if plausibility:
        shape = shape_finding(max(plausibility.values(), key=lambda p: p["distance"]))
        if shape:
            found.append(shape)
    return found


def qc_flag(findings) -> str:
    """The ``qc_flag`` text of a list of findings: ``"ok"`` when there are none."""
    return "; ".join(findings) if findings else QC_OK
