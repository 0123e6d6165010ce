"""Landmark files in world mm: JSON (the project format), CSV and legacy-VTK POLYDATA points.

JSON::

    {"space": "world_mm_ras",
     "landmarks": [{"name": "apex", "position": [x, y, z], "confidence": 0.9, "source": "model"}, ...]}

CSV: a header ``name,x,y,z,confidence,source`` and one row per landmark (RAS+ mm).

VTK: an ASCII legacy ``POLYDATA`` file with six ``POINTS`` in the order of
``LANDMARK_NAMES`` (as IRTK/MIRTK landmark pipelines write them). IRTK/MIRTK files carry no
names and no statement of the world frame: ``space="ras"`` (default) reads the coordinates as
NIfTI world, ``space="lps"`` flips x and y. Files this package writes name their frame in the
title line, which takes precedence on reading.
"""

from __future__ import annotations

import csv
import io as _io
import json
import math
import os
from pathlib import Path

import numpy as np

from ..conventions import LANDMARK_NAMES, LANDMARK_SPACE
from ..errors import InputError
from ..landmarks import Landmarks
from ._atomic import atomic_path, full_suffix

LANDMARK_SUFFIXES = (".json", ".csv", ".vtk")
_VTK_TITLE = "napari-cardiac-priors landmarks"


def read_landmarks(path: str | os.PathLike, *, space: str = "ras") -> Landmarks:
    """Read a landmark file (``.json``, ``.csv`` or legacy ``.vtk``); positions in RAS+ mm."""
    path = Path(path)
    suffix = full_suffix(path)
    if suffix not in LANDMARK_SUFFIXES:
        raise InputError(f"{path.name}: landmark files are .json, .csv or .vtk, not {suffix or 'no suffix'}")
    if not path.is_file():
        raise InputError(f"{path}: no such landmark file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path.name}: cannot read landmark file ({e})") from e
    try:
        if suffix == ".json":
            return _from_json(text)
        if suffix == ".csv":
            return _from_csv(text)
        return _from_vtk(text, space=space)
    except (ValueError, KeyError, TypeError, IndexError) as e:
        raise InputError(f"{path.name}: not a valid {suffix[1:].upper()} landmark file ({e})") from e


def write_landmarks(landmarks: Landmarks, path: str | os.PathLike, *, space: str = "ras") -> Path:
    """Write landmarks atomically as JSON, CSV or VTK (chosen by the suffix of ``path``)."""
    path = Path(path)
    suffix = full_suffix(path)
    if suffix == ".json":
        text = _to_json(landmarks)
    elif suffix == ".csv":
        text = _to_csv(landmarks)
    elif suffix == ".vtk":
        text = _to_vtk(landmarks, space=space)
    else:
        raise InputError(f"{path.name}: landmark files are .json, .csv or .vtk, not {suffix or 'no suffix'}")
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


# -- JSON ------------------------------------------------------------------------------
def _num(v):
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def _to_json(lm: Landmarks) -> str:
    rows = []
    for name, p, c, s, ok in zip(lm.names, lm.positions, lm.confidence, lm.source, lm.valid):
        rows.append({
            "name": name,
            "position": [float(v) for v in p] if ok else None,
            "confidence": _num(float(c)),
            "source": s,
        })
    return json.dumps({"space": LANDMARK_SPACE, "landmarks": rows}, indent=2) + "\n"


def _from_json(text: str) -> Landmarks:
    doc = json.loads(text)
    if not isinstance(doc, dict) or "landmarks" not in doc:
        raise ValueError('expected an object with a "landmarks" list')
    if doc.get("space", LANDMARK_SPACE) != LANDMARK_SPACE:
        raise ValueError(f'space is {doc.get("space")!r}; this package reads "{LANDMARK_SPACE}"')
    return _from_rows(
        (r["name"], r.get("position"), r.get("confidence"), r.get("source", "file")) for r in doc["landmarks"]
    )


def _from_rows(rows) -> Landmarks:
    n = len(LANDMARK_NAMES)
    pos = np.full((n, 3), np.nan)
    conf = np.full(n, np.nan)
    src = ["file"] * n
    seen = set()
    for name, p, c, s in rows:
        if name not in LANDMARK_NAMES:
            raise ValueError(f"unknown landmark name {name!r}")
        if name in seen:
            raise ValueError(f"landmark {name!r} is given twice")
        seen.add(name)
        i = LANDMARK_NAMES.index(name)
        if p is not None:
            p = [float(v) for v in p]
            if len(p) != 3:
                raise ValueError(f"position of {name!r} must have 3 values")
            pos[i] = p
        conf[i] = np.nan if c is None or c == "" else float(c)
        src[i] = s or "file"
    return Landmarks(pos, conf, tuple(src))


# -- CSV -------------------------------------------------------------------------------
_CSV_HEADER = ["name", "x", "y", "z", "confidence", "source"]


def _to_csv(lm: Landmarks) -> str:
    buf = _io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(_CSV_HEADER)
    for name, p, c, s in zip(lm.names, lm.positions, lm.confidence, lm.source):
        w.writerow([name, *("" if np.isnan(v) else repr(float(v)) for v in p), "" if np.isnan(c) else repr(float(c)), s])
    return buf.getvalue()


def _from_csv(text: str) -> Landmarks:
    reader = csv.DictReader(_io.StringIO(text))
    missing = {"name", "x", "y", "z"} - set(reader.fieldnames or ())
    if missing:
        raise ValueError(f"missing column(s) {', '.join(sorted(missing))}")

    def pos(r):
        vals = [r[k].strip() for k in ("x", "y", "z")]
        return None if any(v == "" or v.lower() == "nan" for v in vals) else [float(v) for v in vals]

    return _from_rows((r["name"].strip(), pos(r), r.get("confidence"), (r.get("source") or "file").strip()) for r in reader)


# -- legacy VTK ------------------------------------------------------------------------
def _flip_xy(p: np.ndarray) -> np.ndarray:
    return p * np.array([-1.0, -1.0, 1.0])


def _to_vtk(lm: Landmarks, *, space: str = "ras") -> str:
    if space not in ("ras", "lps"):
        raise ValueError(f"space must be 'ras' or 'lps', got {space!r}")
    p = lm.positions if space == "ras" else _flip_xy(lm.positions)
    lines = ["# vtk DataFile Version 3.0", f"{_VTK_TITLE} world_mm_{space} {' '.join(lm.names)}", "ASCII",
             "DATASET POLYDATA", f"POINTS {len(p)} float"]
    lines += [" ".join(repr(float(v)) for v in row) for row in p]
    lines += [f"VERTICES {len(p)} {2 * len(p)}"] + [f"1 {i}" for i in range(len(p))]
    return "\n".join(lines) + "\n"


def _from_vtk(text: str, *, space: str = "ras") -> Landmarks:
    lines = text.splitlines()
    if len(lines) < 5 or not lines[0].startswith("# vtk DataFile"):
        raise ValueError("missing the '# vtk DataFile' header")
    if lines[2].strip().upper() != "ASCII":
        raise ValueError("only ASCII legacy VTK files are supported")
    if "POLYDATA" not in lines[3].upper():
        raise ValueError("expected DATASET POLYDATA")
    title = lines[1]
    if title.startswith(_VTK_TITLE):
        space = "lps" if "world_mm_lps" in title else "ras"
    if space not in ("ras", "lps"):
        raise ValueError(f"space must be 'ras' or 'lps', got {space!r}")
    tokens = " ".join(lines[4:]).split()
    upper = [t.upper() for t in tokens]
    i = upper.index("POINTS")
    n = int(tokens[i + 1])
    values = np.array([float(v) for v in tokens[i + 3 : i + 3 + 3 * n]])
    if values.size != 3 * n:
        raise ValueError(f"POINTS announces {n} points but holds {values.size // 3}")
    if n != len(LANDMARK_NAMES):
        raise ValueError(f"expected {len(LANDMARK_NAMES)} points ({', '.join(LANDMARK_NAMES)}), found {n}")
    p = values.reshape(n, 3)
    if space == "lps":
        p = _flip_xy(p)
    return Landmarks(p, np.full(n, np.nan), ("file",) * n)
