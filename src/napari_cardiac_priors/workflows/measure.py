"""Measure label maps: volumes, masses and, for an ED/ES pair, ejection fractions.

One implementation for ``cardiac-priors measure`` (files, paired by their ``ed``/``es`` name
token) and cohort runs (one subject's phases, ``measures.csv``).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..conventions import MEASURE_COLUMNS, PHASES
from ..errors import InputError

#: Columns of ``cardiac-priors measure`` (one row per file; volumes mL, masses g, EF %).
FILE_COLUMNS = ("file", "lv_ml", "myo_ml", "lv_mass_g", "rv_ml", "rvw_ml", "rv_mass_g", "lv_ef", "rv_ef")


def measure_labels(labels, *, name: str = "labels") -> dict:
    """Volumes (mL) and masses (g) of one phase of a canonical label :class:`~..volume.Volume`
    ``(z, y, x)``: ``lv_ml, myo_ml, lv_mass_g, rv_ml, rvw_ml, rv_mass_g``. ``name`` names the
    input in the error for a cine stack."""
    from ..metrics import cardiac_measures

    if labels.is_cine:
        raise InputError(f"{name}: measure takes 3D label maps, not cine stacks")
    return cardiac_measures(labels.array, labels.spacing)


def phase_partner(name: str) -> str | None:
    """The ES name of an ED name (``patient1_ed_seg`` -> ``patient1_es_seg``): the ``ed`` token
    swapped for ``es`` (tokens split at ``_``, case ignored); None without an ``ed`` token."""
    tokens = name.lower().split("_")
    if "ed" not in tokens:
        return None
    return "_".join("es" if t == "ed" else t for t in tokens)


def measure_files(paths) -> list[dict]:
    """One row per label file (:data:`FILE_COLUMNS`), with ``lv_ef``/``rv_ef`` on the ED file of
    every ED/ES pair found by :func:`phase_partner`. Raises :class:`InputError` for a cine stack."""
    from ..io import read_volume, stem
    from ..metrics import ejection_fraction

    rows = []
    for path in paths:
        rows.append({"file": Path(path).name, **measure_labels(read_volume(path, kind="labels"), name=Path(path).name)})
    by_stem = {stem(r["file"]).lower(): r for r in rows}
    for name, row in by_stem.items():
        other = by_stem.get(phase_partner(name) or "")
        if other is not None:
            row["lv_ef"] = ejection_fraction(row["lv_ml"], other["lv_ml"])
            row["rv_ef"] = ejection_fraction(row["rv_ml"], other["rv_ml"])
    return rows


def subject_row(subject: str, phases: dict) -> dict:
    """A subject's row of ``measures.csv`` (:data:`MEASURE_COLUMNS` but ``qc_flag``) from the
    measures of its phases (``{"ed": measure_labels(...), "es": ...}``; either may be missing:
    its columns and the ejection fractions are NaN). ``plausibility`` starts NaN."""
    from ..metrics import ejection_fraction

    unknown = set(phases) - set(PHASES)
    if unknown:
        raise ValueError(f"phases must be among {PHASES}, got {sorted(unknown)}")
    nan = float("nan")
    ed, es = phases.get("ed") or {}, phases.get("es") or {}
    row = {"subject": subject, "lv_edv_ml": ed.get("lv_ml", nan), "lv_esv_ml": es.get("lv_ml", nan),
           "lv_mass_g": ed.get("lv_mass_g", nan), "rv_edv_ml": ed.get("rv_ml", nan), "rv_esv_ml": es.get("rv_ml", nan),
           "plausibility": nan}
    row["lv_ef"] = ejection_fraction(row["lv_edv_ml"], row["lv_esv_ml"]) if ed and es else nan
    row["rv_ef"] = ejection_fraction(row["rv_edv_ml"], row["rv_esv_ml"]) if ed and es else nan
    return {k: row[k] for k in MEASURE_COLUMNS if k != "qc_flag"}


def format_table(rows, columns=FILE_COLUMNS) -> str:
    """``rows`` as CSV text (floats with 2 decimals, missing values empty)."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{r[k]:.2f}" if isinstance(r.get(k), float) else r.get(k, "")) for k in columns})
    return buf.getvalue()


def write_table(rows, path: str | os.PathLike, *, overwrite: bool = False, columns=FILE_COLUMNS) -> None:
    """Write :func:`format_table` to ``path`` atomically; an existing file needs ``overwrite``."""
    from ..io import atomic_path

    if Path(path).exists() and not overwrite:
        raise InputError(f"{path} exists; pass --overwrite to replace it")
    text = format_table(rows, columns)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
