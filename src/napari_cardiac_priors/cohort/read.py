"""Reading a cohort: the subjects of an ACDC folder, a folder of images or a CSV file.

A cohort is read by :func:`read_cohort` from

- an ACDC-layout folder (``patientNNN/`` with ``Info.cfg``; ED and ES frames from Info.cfg,
  manual ``*_gt`` labels used for evaluation when present, ``Group`` kept for the report);
- a folder of images, one subject per image, or per ``<subject>_ed`` / ``<subject>_es`` pair
  (an ``ed`` or ``es`` part of the file name, split at ``_``, names the phase; an image with no
  phase part counts as ED). A file ``<stem>_labels`` or ``<stem>_gt`` beside an image
  ``<stem>`` (``<stem>_image``) holds its reference labels;
- a CSV file with the columns ``subject, ed`` and optionally ``es, ed_labels, es_labels,
  group`` (paths relative to the CSV's folder).
"""

from __future__ import annotations

import csv
import io as _io
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..conventions import PHASES
from ..errors import InputError

CSV_REQUIRED = ("subject", "ed")
CSV_OPTIONAL = ("es", "ed_labels", "es_labels", "group")
#: A subject id given in a CSV: letters, digits, '.', '_' or '-' (it names files and folders).
_SUBJECT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class Subject:
    """One subject of a cohort: image (and optional label) paths per phase ``"ed"``/``"es"``."""

    id: str
    images: dict
    labels: dict = field(default_factory=dict)
    group: str | None = None


def read_cohort(source) -> list[Subject]:
    """The subjects of a cohort folder or CSV file (see the module docstring), sorted by id.

    Raises :class:`InputError` for a missing source, a CSV without its required columns,
    an empty cohort and duplicate subject ids. Unreadable image files are not opened here:
    they fail their subject's task and are listed in ``failures.csv``.
    """
    source = Path(source)
    if source.is_file():
        if source.suffix.lower() != ".csv":
            raise InputError(f"{source}: a cohort is a folder or a .csv file")
        subjects = _read_csv(source)
    elif source.is_dir():
        subjects = _read_acdc(source) if _is_acdc(source) else _read_image_folder(source)
    else:
        raise InputError(f"{source}: no such cohort folder or CSV file")
    if not subjects:
        raise InputError(f"{source}: no subject found (ACDC patient folders, image files or CSV rows)")
    seen = {}
    for s in subjects:
        if s.id in seen:
            raise InputError(f"{source}: duplicate subject id {s.id!r}")
        seen[s.id] = s
    return sorted(subjects, key=lambda s: s.id)


def _is_acdc(folder: Path) -> bool:
    root = folder / "training" if (folder / "training").is_dir() else folder
    return any(p.is_dir() for p in root.glob("patient[0-9][0-9][0-9]"))


def _read_acdc(folder: Path) -> list[Subject]:
    from ..io.acdc import iter_patients

    subjects = []
    for p in iter_patients(folder):
        images = {ph: str(p.image_path(ph)) for ph in PHASES}
        labels = {ph: str(p.labels_path(ph)) for ph in PHASES if p.labels_path(ph).exists()}
        subjects.append(Subject(p.id, images, labels, p.group))
    return subjects


def _read_image_folder(folder: Path) -> list[Subject]:
    from ..io import VOLUME_SUFFIXES, full_suffix, is_labels_name, stem

    files = sorted(p for p in folder.iterdir() if p.is_file() and full_suffix(p) in VOLUME_SUFFIXES and not p.name.startswith("."))
    label_files = {stem(p): p for p in files if is_labels_name(p)}
    images, labels = {}, {}
    for p in files:
        if is_labels_name(p):
            continue
        key = stem(p)
        base = key[: -len("_image")] if key.lower().endswith("_image") else key
        parts = base.split("_")
        phases = [i for i, part in enumerate(parts) if part.lower() in PHASES]
        phase = parts[phases[-1]].lower() if phases else "ed"
        sid = "_".join(parts[: phases[-1]] + parts[phases[-1] + 1 :]) if phases else base
        if not sid:
            sid = base
        if phase in images.setdefault(sid, {}):
            raise InputError(f"{folder}: duplicate subject id {sid!r} ({Path(images[sid][phase]).name} and {p.name})")
        images[sid][phase] = str(p)
        for cand in (f"{base}_labels", f"{base}_label", f"{base}_gt", f"{key}_labels", f"{key}_gt"):
            if cand in label_files:
                labels.setdefault(sid, {})[phase] = str(label_files[cand])
                break
    return [Subject(sid, imgs, labels.get(sid, {})) for sid, imgs in images.items()]


def _read_csv(path: Path) -> list[Subject]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read the cohort CSV ({e})") from e
    reader = csv.DictReader(_io.StringIO(text))
    columns = [c.strip().lower() for c in (reader.fieldnames or [])]
    missing = [c for c in CSV_REQUIRED if c not in columns]
    if missing:
        raise InputError(f"{path}: the cohort CSV lacks the column(s) {', '.join(missing)} "
                         f"(required: {', '.join(CSV_REQUIRED)}; optional: {', '.join(CSV_OPTIONAL)})")
    subjects = []
    for n, raw in enumerate(reader, start=2):
        row = {k.strip().lower(): (v or "").strip() for k, v in raw.items() if k}
        sid = row.get("subject", "")
        if not sid or not row.get("ed"):
            raise InputError(f"{path}, line {n}: every row needs a subject and an ed image")
        if not _SUBJECT_ID.match(sid):
            raise InputError(f"{path}, line {n}: subject id {sid!r} must be letters, digits, '.', '_' or '-'")

        def resolve(v):
            return str((path.parent / v).resolve()) if v and not Path(v).is_absolute() else v

        images = {ph: resolve(row[ph]) for ph in PHASES if row.get(ph)}
        labels = {ph: resolve(row[f"{ph}_labels"]) for ph in PHASES if row.get(f"{ph}_labels")}
        subjects.append(Subject(sid, images, labels, row.get("group") or None))
    return subjects
