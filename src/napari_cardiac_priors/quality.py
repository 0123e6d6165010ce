"""Is a scan inside a model's training domain, and does a result look like a heart?

:func:`training_domain` summarises the scans a model was trained on (stored with the model in
its manifest entry, ``training.domain``); :func:`domain_notes` compares one scan and its
result with it and returns short notes for the user (empty when nothing is out of the ordinary);
:func:`blank_slice_note` flags slices without signal (a lost or zero-filled slice).
"""

from __future__ import annotations

import numpy as np

#: how far outside the training range a statistic may lie before a note (fraction of the range)
_MARGIN = 0.25


def intensity_statistics(array: np.ndarray) -> dict:
    """Scale-free intensity statistics of an image ``(z, y, x)``: the 25th, 50th and 75th
    percentiles after the 1st-99th percentile normalisation (how much of the field of view is
    dark background, and where the tissue lies between background and blood)."""
    from .contract import normalise

    q = np.percentile(normalise(np.asarray(array)), [25, 50, 75])
    return {"q25": float(q[0]), "q50": float(q[1]), "q75": float(q[2])}


def training_domain(volumes) -> dict:
    """The ranges of slice spacing, in-plane spacing and intensity statistics over ``volumes``
    (image Volumes): ``{"slice_spacing_mm": [lo, hi], "inplane_spacing_mm": [lo, hi],
    "q25": [lo, hi], "q50": [lo, hi], "q75": [lo, hi]}``."""
    rows = []
    for v in volumes:
        sz, sy, sx = v.spacing
        rows.append({"slice_spacing_mm": sz, "inplane_spacing_mm": min(sy, sx), "inplane_max": max(sy, sx),
                     **intensity_statistics(v.array)})
    out = {}
    for key in ("slice_spacing_mm", "q25", "q50", "q75"):
        vals = [r[key] for r in rows]
        out[key] = [round(float(min(vals)), 4), round(float(max(vals)), 4)]
    out["inplane_spacing_mm"] = [round(float(min(r["inplane_spacing_mm"] for r in rows)), 4),
                                 round(float(max(r["inplane_max"] for r in rows)), 4)]
    return out


def blank_slices(array: np.ndarray) -> list[int]:
    """Indices of the slices of ``array`` ``(z, y, x)`` that hold one value throughout (a lost or
    zero-filled slice) in a stack whose other slices carry signal; ``[]`` when none or all are."""
    flat = np.asarray(array).reshape(np.shape(array)[0], -1)
    constant = flat.min(axis=1) == flat.max(axis=1)
    return [] if constant.all() else [int(k) for k in np.flatnonzero(constant)]


def blank_slice_note(volume) -> list[str]:
    """A note for the user when slices of ``volume`` (an image Volume) carry no signal: the
    result on them, and next to them, is unreliable (the networks see a gap in the anatomy)."""
    blank = blank_slices(volume.array)
    if not blank:
        return []
    which = ", ".join(str(k) for k in blank)
    return [f"slice{'s' if len(blank) > 1 else ''} {which} of {volume.shape[0]} (0-based) carr"
            f"{'y' if len(blank) > 1 else 'ies'} no signal (lost or zero-filled?); the result on and next to "
            f"{'them' if len(blank) > 1 else 'it'} is unreliable: check it"]


def _outside(value: float, rng, margin: float = _MARGIN) -> bool:
    lo, hi = (float(v) for v in rng)
    pad = margin * max(hi - lo, 1e-6)
    return not lo - pad <= value <= hi + pad


def domain_notes(volume, entry, labels: np.ndarray | None = None) -> list[str]:
    """Notes on ``volume`` (an image Volume) against the training domain of the model ``entry``
    and on its result ``labels`` ``(z, y, x)``: spacing or intensity statistics well outside
    what the model saw in training (``training.domain`` of its manifest entry), an implausible
    anatomy (:func:`~napari_cardiac_priors.metrics.anatomy_errors`) or ventricle volume."""
    notes = []
    domain = (getattr(entry, "training", None) or {}).get("domain")
    name = getattr(entry, "name", "the model")
    if domain:
        sz, sy, sx = volume.spacing
        if _outside(sz, domain["slice_spacing_mm"], 0.0):
            lo, hi = domain["slice_spacing_mm"]
            notes.append(f"slice spacing {sz:.3g} mm is outside the {lo:g}-{hi:g} mm that {name} was trained on; "
                         "check the result")
        for s in (sy, sx):
            if _outside(s, domain["inplane_spacing_mm"], 0.0):
                lo, hi = domain["inplane_spacing_mm"]
                notes.append(f"in-plane spacing {s:.3g} mm is outside the {lo:g}-{hi:g} mm that {name} was trained on; "
                             "check the result")
                break
        stats = intensity_statistics(volume.array)
        off = [k for k in ("q25", "q50", "q75") if k in domain and _outside(stats[k], domain[k])]
        if off:
            notes.append(f"the image's intensity distribution is unlike the scans {name} was trained on "
                         f"({', '.join(f'{k} {stats[k]:.2f} vs {domain[k][0]:.2f}-{domain[k][1]:.2f}' for k in off)}); "
                         "another scanner or sequence? check the result")
    if labels is not None and np.any(labels):
        from .metrics import anatomy_errors, volumes_ml

        errors = [e for e in anatomy_errors(labels) if "pieces" not in e]
        if errors:
            notes.append(f"the result looks anatomically implausible ({'; '.join(errors)}); check it")
        lv = volumes_ml(labels, volume.spacing).get("LV", 0.0)
        if lv and not 5.0 <= lv <= 600.0:
            notes.append(f"the LV cavity measures {lv:.0f} mL, outside 5-600 mL; check the result")
    return notes
