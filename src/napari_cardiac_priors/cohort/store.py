"""What a cohort run stores: each subject's JSON records and the run's CSV tables.

Every file is written atomically. The run's tables (``measures.csv``, ``evaluation.csv``,
``failures.csv``) are rebuilt from the subjects' ``<subject>_result.json`` files, so an
interrupted run loses no finished subject.
"""

from __future__ import annotations

import csv
import io as _io
import json
from pathlib import Path

import numpy as np

from ..conventions import MEASURE_COLUMNS
from ..errors import InputError

EVALUATION_COLUMNS = ("subject", "phase", "result", "structure", "dice", "hd95_mm")
FAILURE_COLUMNS = ("subject", "error")


def _finite(data):
    """``data`` with every NaN/inf float replaced by None (strict JSON; empty cells in the CSVs)."""
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_finite(v) for v in data]
    if isinstance(data, (float, np.floating)):
        return float(data) if np.isfinite(data) else None
    if isinstance(data, np.integer):
        return int(data)
    return data


def _write_json(path: Path, data) -> None:
    from ..io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(_finite(data), indent=2, allow_nan=False) + "\n", encoding="utf-8")


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if v != v else f"{v:.4g}" if abs(v) < 1 else f"{v:.2f}"
    return str(v)


def _write_csv(path: Path, columns, rows) -> None:
    from ..io import atomic_path

    buf = _io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([_fmt(r.get(c)) for c in columns])
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue(), encoding="utf-8")


def collect_results(out_dir, subjects=None) -> list[dict]:
    """The result records of the finished subjects under ``out_dir`` (restricted to ``subjects``)."""
    root = Path(out_dir) / "subjects"
    wanted = None if subjects is None else {s.id for s in subjects}
    records = []
    for p in sorted(root.glob("*/*_result.json")) if root.is_dir() else []:
        if wanted is not None and p.parent.name not in wanted:
            continue
        try:
            records.append(json.loads(p.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError):
            continue
    return records


def write_tables(out_dir, results: list[dict], failures: list[dict]) -> dict:
    """Write ``failures.csv`` (first: the smallest and the one a user needs when the disk is
    full), ``measures.csv`` and ``evaluation.csv`` (when any subject has labels)."""
    out = Path(out_dir)
    results = sorted(results, key=lambda r: r["subject"])
    paths = {"measures": out / "measures.csv", "failures": out / "failures.csv"}
    _write_csv(paths["failures"], FAILURE_COLUMNS, sorted(failures, key=lambda r: r["subject"]))
    _write_csv(paths["measures"], MEASURE_COLUMNS, [r["measures"] for r in results])
    ev = [row for r in results for row in r.get("evaluation", [])]
    if ev:
        paths["evaluation"] = out / "evaluation.csv"
        _write_csv(paths["evaluation"], EVALUATION_COLUMNS, ev)
    return paths


def read_measures(out_dir) -> list[dict]:
    """Rows of a run's ``measures.csv`` (strings), with each subject's folder; [] if absent."""
    path = Path(out_dir) / "measures.csv"
    if not path.exists():
        raise InputError(f"{out_dir}: no measures.csv; not a finished batch run folder")
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def remove_partial_files(out_dir) -> int:
    """Remove the temporary files that an interrupted write of this package left in ``out_dir``
    and its ``subjects/`` folders (``.NAME.XXXXXXXX.cardiac-priors-part*``, see
    :func:`~napari_cardiac_priors.io._atomic.is_own_temporary`; never a user's file, never
    through a link); returns how many."""
    from ..io._atomic import is_own_temporary

    root, n = Path(out_dir), 0
    if not root.is_dir():
        return 0
    subjects = root / "subjects"
    folders = [root]
    if subjects.is_dir() and not subjects.is_symlink():
        folders += [d for d in subjects.iterdir() if d.is_dir() and not d.is_symlink()]
    for folder in folders:
        for p in folder.iterdir():
            if is_own_temporary(p) and p.is_file() and not p.is_symlink():
                p.unlink()
                n += 1
    return n
