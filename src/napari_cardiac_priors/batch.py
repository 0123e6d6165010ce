"""Cohort runs on dask.distributed: one task per subject, resumable, with provenance.

A cohort is read by :func:`read_cohort` from

- an ACDC-layout folder (``patientNNN/`` with ``Info.cfg``; ED and ES frames from Info.cfg,
  manual ``*_gt`` labels used for evaluation when present, ``Group`` kept for the report);
- a folder of images, one subject per image, or per ``<subject>_ed`` / ``<subject>_es`` pair
  (an ``ed`` or ``es`` part of the file name, split at ``_``, names the phase; an image with no
  phase part counts as ED). A file ``<stem>_labels`` or ``<stem>_gt`` beside an image
  ``<stem>`` (``<stem>_image``) holds its reference labels;
- a CSV file with the columns ``subject, ed`` and optionally ``es, ed_labels, es_labels,
  group`` (paths relative to the CSV's folder).

:func:`run_batch` sends one :func:`process_subject` task per subject to a dask.distributed
cluster (a LocalCluster unless a scheduler address is given). Each task writes under
``OUT/subjects/<subject>/``: ``<subject>_<phase>_seg.nii.gz``, ``..._landmarks.json``,
``..._refined.nii.gz`` (with refinement), ``<subject>_provenance.json`` and, last,
``<subject>_result.json`` (the subject's measures, evaluation and QC: its presence marks the
subject as finished). Every file is written atomically. A rerun skips a subject whose result
exists and whose input files' sha256 and parameters are unchanged. The run's tables
(``measures.csv``, ``evaluation.csv``, ``failures.csv``) and ``report.html`` are rebuilt from
the result files, so an interrupted run loses no finished subject.

Models and atlases are loaded once per worker process (cached), not once per task.
"""

from __future__ import annotations

import csv
import hashlib
import io as _io
import json
import os
import re
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .errors import InputError

PHASES = ("ed", "es")
MEASURE_COLUMNS = ("subject", "lv_edv_ml", "lv_esv_ml", "lv_ef", "lv_mass_g", "rv_edv_ml", "rv_esv_ml", "rv_ef",
                   "plausibility", "qc_flag")
EVALUATION_COLUMNS = ("subject", "phase", "result", "structure", "dice", "hd95_mm")
FAILURE_COLUMNS = ("subject", "error")
CSV_REQUIRED = ("subject", "ed")
CSV_OPTIONAL = ("es", "ed_labels", "es_labels", "group")
_SUBJECT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class Subject:
    """One subject of a cohort: image (and optional label) paths per phase ``"ed"``/``"es"``."""

    id: str
    images: dict
    labels: dict = field(default_factory=dict)
    group: str | None = None


@dataclass(frozen=True)
class BatchOptions:
    """What every subject of a run is processed with (the parameters of its provenance)."""

    model: str
    refine: bool = False
    atlases: str = "auto"  # registry.atlases.AUTO: each target's own (atlas_set_for)
    n_atlases: int = 5
    fusion: str = "majority"
    device: str = "cpu"
    shape_model: str | None = None  # a T-L model: the plausibility column (Mahalanobis distance of the shape)

    def parameters(self) -> dict:
        """The parameters that decide the outputs (the device does not), with model and atlas hashes."""
        from . import registry

        entry = registry.get_model(self.model)
        params = {"model": entry.name, "model_version": entry.version, "model_sha256": entry.sha256,
                  "refine": bool(self.refine)}
        if self.refine:
            params.update(atlases=self.atlases, atlases_sha256=_atlas_digest(self.atlases),
                          n_atlases=int(self.n_atlases), fusion=self.fusion)
        if self.shape_model:
            shape = registry.get_model(self.shape_model)
            if shape.architecture != "tl":
                raise InputError(f"{self.shape_model!r} is not a T-L shape model")
            params.update(shape_model=shape.name, shape_model_sha256=shape.sha256)
        return params


# -- reading a cohort ------------------------------------------------------------------------
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
    from .io.acdc import iter_patients

    subjects = []
    for p in iter_patients(folder):
        images = {ph: str(p.image_path(ph)) for ph in PHASES}
        labels = {ph: str(p.labels_path(ph)) for ph in PHASES if p.labels_path(ph).exists()}
        subjects.append(Subject(p.id, images, labels, p.group))
    return subjects


def _read_image_folder(folder: Path) -> list[Subject]:
    from .io import VOLUME_SUFFIXES, full_suffix, is_labels_name, stem

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


# -- one subject (runs on a worker) --------------------------------------------------------
def subject_dir(out_dir, subject_id: str) -> Path:
    return Path(out_dir) / "subjects" / subject_id


def sha256_file(path) -> str:
    """sha256 of a file, or of a DICOM folder's files (names and contents, sorted)."""
    path = Path(path)
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _atlas_digest(name: str) -> str:
    from . import registry
    from .registry.atlases import AUTO, PHANTOM_ATLASES, REAL_ATLASES

    if name == AUTO:  # either set may be used: both decide the outputs
        return hashlib.sha256(f"{_atlas_digest(REAL_ATLASES)}:{_atlas_digest(PHANTOM_ATLASES)}".encode()).hexdigest()
    if Path(name).is_dir():
        from .registry.atlases import _digest

        return _digest(Path(name))
    return registry.get_model(name).sha256


def _finished(sdir: Path, sid: str, inputs: dict, params: dict) -> dict | None:
    """The stored result of a finished subject whose inputs and parameters match, else None."""
    path = sdir / f"{sid}_result.json"
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if stored.get("inputs") != inputs or stored.get("parameters") != params:
        return None
    if not all((sdir / name).exists() for name in stored.get("outputs", [])):
        return None
    return stored


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
    from .io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(_finite(data), indent=2, allow_nan=False) + "\n", encoding="utf-8")


def process_subject(subject: Subject, out_dir, options: BatchOptions, parameters: dict | None = None) -> dict:
    """Segment (and refine) one subject, write its outputs, and return its result record.

    ``parameters``: ``options.parameters()`` when the caller has it already (a run computes it
    once, not once per subject: an atlas folder is hashed file by file).

    The record is ``{"subject", "status": "done" | "skipped" | "failed", "measures", "evaluation",
    "qc", "error", "seconds", ...}``. Failures are returned (with the error text), not raised,
    so that one bad subject never stops a cohort.
    """
    t_start = time.perf_counter()
    sdir = subject_dir(out_dir, subject.id)
    try:
        params = dict(parameters) if parameters is not None else options.parameters()
        inputs = {}
        for kind, paths in (("image", subject.images), ("labels", subject.labels)):
            for phase, p in sorted(paths.items()):
                if not Path(p).exists():
                    raise InputError(f"{kind} file of phase {phase} not found: {p}")
                inputs[f"{phase}_{kind}"] = {"path": str(p), "sha256": sha256_file(p)}
        stored = _finished(sdir, subject.id, inputs, params)
        if stored is not None:
            return {**stored, "status": "skipped", "seconds": time.perf_counter() - t_start}
        return _process(subject, sdir, options, params, inputs, t_start)
    except Exception as e:  # noqa: BLE001 - recorded in failures.csv, the cohort goes on
        message = f"{type(e).__name__}: {e}" if not isinstance(e, InputError) else str(e)
        return {"subject": subject.id, "status": "failed", "error": message.splitlines()[0] if message else type(e).__name__,
                "traceback": traceback.format_exc(), "seconds": time.perf_counter() - t_start}


def _process(subject: Subject, sdir: Path, options: BatchOptions, params: dict, inputs: dict, t_start: float) -> dict:
    import platform
    import socket

    from . import __version__
    from .inference import load_model
    from .io import read_volume, write_landmarks, write_volume
    from .workflows.segment import segment_image
    from .metrics import anatomy_errors, cardiac_measures, ejection_fraction, evaluate_labels
    from .volume import resample

    model = load_model(options.model, device=options.device)
    outputs, timings, phases, notes, evaluation, plaus, refined_with = [], {}, {}, [], [], {}, {}
    for phase, image_path in sorted(subject.images.items()):
        t0 = time.perf_counter()
        image = read_volume(image_path, kind="image")
        if image.is_cine:
            raise InputError(f"{Path(image_path).name} is a cine stack; list its ED and ES frames as separate files")
        done = segment_image(image, model)
        result = done.result
        notes += [f"{phase}: {n}" for n in done.notes]
        seg_name = f"{subject.id}_{phase}_seg.nii.gz"
        write_volume(result.labels, sdir / seg_name)
        outputs.append(seg_name)
        landmarks = result.landmarks
        if landmarks is not None:
            lm_name = f"{subject.id}_{phase}_landmarks.json"
            write_landmarks(landmarks, sdir / lm_name)
            outputs.append(lm_name)
        timings[f"{phase}_segment_s"] = time.perf_counter() - t0
        final = result.labels
        refined = None
        if options.refine and np.any(result.labels.array):
            from .workflows.refine import refine_subject

            t1 = time.perf_counter()
            done = refine_subject(result.labels, landmarks, atlases=options.atlases, n_atlases=options.n_atlases,
                                  fusion=options.fusion, image=image, device=options.device)
            refined = done.result
            notes += [f"{phase} refine: {n}" for n in done.notes]
            ref_name = f"{subject.id}_{phase}_refined.nii.gz"
            write_volume(refined.labels, sdir / ref_name)
            outputs.append(ref_name)
            final = refined.labels
            timings[f"{phase}_refine_s"] = time.perf_counter() - t1
            refined_with[phase] = {"atlas_set": Path(done.atlas_set).name, "atlases": refined.selected}
        if options.shape_model and np.any(final.array):
            from .latent import plausibility

            plaus[phase] = plausibility(final, load_model(options.shape_model, device=options.device))
        phases[phase] = {"measures": cardiac_measures(final.array, final.spacing),
                         "qc": anatomy_errors(result.labels.array),
                         "landmarks_missing": int(np.sum(~landmarks.valid)) if landmarks is not None else None}
        gt_path = subject.labels.get(phase)
        if gt_path:
            gt = read_volume(gt_path, kind="labels")
            rows = [("seg", result.labels)]
            if refined is not None:
                rows.append(("refined", resample(refined.labels, gt)))
            for kind, pred in rows:
                if pred.spatial_shape != gt.spatial_shape:
                    raise InputError(f"labels of phase {phase} ({gt.spatial_shape}) do not match the image grid ({pred.spatial_shape})")
                ev = evaluate_labels(pred.array, gt.array, gt.spacing, structures=[1, 2, 3])
                evaluation += [{"subject": subject.id, "phase": phase, "result": kind, "structure": s,
                                "dice": v["dice"], "hd95_mm": v["hd95"]} for s, v in ev.items()]

    measures = _measures_row(subject.id, phases, ejection_fraction)
    qc = [f"{ph}: {e}" for ph, info in phases.items() for e in info["qc"]]
    qc += [f"{ph}: {info['landmarks_missing']} landmark(s) not found" for ph, info in phases.items() if info["landmarks_missing"]]
    for key in ("lv_ef", "rv_ef"):
        ef = measures[key]
        if np.isfinite(ef) and not 0.0 < ef < 100.0:
            qc.append(f"{key} {ef:.0f} % out of (0, 100)")
    if plaus:
        worst = max(plaus.values(), key=lambda p: p["distance"])
        measures["plausibility"] = worst["distance"]
        if worst["percentile"] >= 99.0:
            qc.append(f"implausible shape (Mahalanobis distance {worst['distance']:.1f}, beyond "
                      f"{worst['percentile']:.0f} % of the training shapes)")
    measures["qc_flag"] = "; ".join(qc) if qc else "ok"
    provenance = {
        "subject": subject.id, "package": "napari-cardiac-priors", "version": __version__,
        "parameters": params, "device": str(model.device), "inputs": inputs, "outputs": outputs,
        "timings_s": {**timings, "total": time.perf_counter() - t_start},
        "host": socket.gethostname(), "python": platform.python_version(), "worker_pid": os.getpid(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "notes": notes, "refined_with": refined_with,
    }
    _write_json(sdir / f"{subject.id}_provenance.json", provenance)
    record = _finite({"subject": subject.id, "status": "done", "group": subject.group, "measures": measures,
                      "plausibility": plaus,
                      "evaluation": evaluation, "qc": qc, "parameters": params, "inputs": inputs,
                      "outputs": outputs + [f"{subject.id}_provenance.json"], "error": None,
                      "seconds": time.perf_counter() - t_start})
    _write_json(sdir / f"{subject.id}_result.json", record)  # last: marks the subject finished
    return record


def _measures_row(sid: str, phases: dict, ejection_fraction) -> dict:
    nan = float("nan")
    ed = phases.get("ed", {}).get("measures", {})
    es = phases.get("es", {}).get("measures", {})
    row = {"subject": sid,
           "lv_edv_ml": ed.get("lv_ml", nan), "lv_esv_ml": es.get("lv_ml", nan),
           "lv_mass_g": ed.get("lv_mass_g", nan),
           "rv_edv_ml": ed.get("rv_ml", nan), "rv_esv_ml": es.get("rv_ml", nan),
           "plausibility": nan}
    row["lv_ef"] = ejection_fraction(row["lv_edv_ml"], row["lv_esv_ml"]) if ed and es else nan
    row["rv_ef"] = ejection_fraction(row["rv_edv_ml"], row["rv_esv_ml"]) if ed and es else nan
    return {k: row.get(k) for k in MEASURE_COLUMNS if k != "qc_flag"}


# -- tables and report ----------------------------------------------------------------------
def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if v != v else f"{v:.4g}" if abs(v) < 1 else f"{v:.2f}"
    return str(v)


def _write_csv(path: Path, columns, rows) -> None:
    from .io import atomic_path

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


# -- the run --------------------------------------------------------------------------------
@dataclass
class BatchSummary:
    """What a run did: counts, the tables written and the dashboard address."""

    done: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    dashboard: str | None = None
    paths: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


def remove_partial_files(out_dir) -> int:
    """Remove the temporary files that an interrupted write of this package left in ``out_dir``
    and its ``subjects/`` folders (``.NAME.XXXXXXXX.cardiac-priors-part*``, see
    :func:`~napari_cardiac_priors.io._atomic.is_own_temporary`; never a user's file, never
    through a link); returns how many."""
    from .io._atomic import is_own_temporary

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


def connect(scheduler: str | None = None, *, workers: int | None = None, threads_per_worker: int = 1, timeout: float = 10.0):
    """A dask.distributed Client: to ``scheduler`` (an address) or to a new LocalCluster of
    ``workers`` processes. An unreachable scheduler raises :class:`InputError`."""
    from distributed import Client, LocalCluster

    if scheduler:
        return _client_within(scheduler, timeout)
    n = int(workers or max(1, min(2, os.cpu_count() or 1)))
    if n < 1:
        raise InputError(f"--workers must be at least 1, got {n}")
    cluster = LocalCluster(n_workers=n, threads_per_worker=threads_per_worker, processes=True,
                           dashboard_address=":0", silence_logs=40)
    return Client(cluster)


def _client_within(address: str, timeout: float):
    """A Client of the scheduler at ``address``, or :class:`InputError` within ``timeout`` + 5 s:
    something that is not a dask scheduler on that port (a silent listener, an HTTP server)
    can stall the handshake or answer with garbage, so the connection runs in a daemon thread."""
    import threading

    from distributed import Client

    box = {}

    def attempt():
        try:
            box["client"] = Client(address, timeout=timeout)
        except BaseException as e:  # noqa: BLE001 - reported below, whatever the other end sent
            box["error"] = e

    t = threading.Thread(target=attempt, daemon=True, name="dask-connect")
    t.start()
    t.join(timeout + 5.0)
    if "client" in box:
        return box["client"]
    e = box.get("error")
    why = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}" if e else f"no dask answer within {timeout + 5:.0f} s"
    raise InputError(f"cannot reach a dask scheduler at {address} ({why})")


def run_batch(cohort, out_dir, options: BatchOptions, *, scheduler: str | None = None, workers: int | None = None,
              client=None, retries: int = 2, progress=None) -> BatchSummary:
    """Process every subject of ``cohort`` (a folder, CSV or list of :class:`Subject`) on dask.

    ``progress(event: dict)`` gets ``{"event": "start", "total", "dashboard"}`` and one
    ``{"event": "subject", "subject", "status", "done", "total"}`` per finished task. A worker
    that dies is replaced by the cluster and its task retried (``retries`` times). Tables and
    the report are rewritten as subjects finish (at most every few seconds) and at the end,
    also when the run is interrupted.
    """
    from distributed import as_completed

    progress = progress or (lambda event: None)
    subjects = cohort if isinstance(cohort, list) else read_cohort(cohort)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    params = options.parameters()  # unknown model or atlas set: fail now, not once per subject
    remove_partial_files(out)
    t0, started = time.perf_counter(), time.time() - 1.0  # (file times may be rounded to the second)
    own = client is None
    client = client or connect(scheduler, workers=workers)
    summary = BatchSummary(dashboard=getattr(client, "dashboard_link", None))
    failures, finished = [], 0
    try:
        progress({"event": "start", "total": len(subjects), "dashboard": summary.dashboard})
        futures = [client.submit(process_subject, s, str(out), options, params, key=f"subject-{s.id}-{time.time_ns()}",
                                 retries=retries, pure=False) for s in subjects]
        by_key = {f.key: s for f, s in zip(futures, subjects)}
        last_write = time.monotonic()
        for fut in as_completed(futures):
            subject = by_key[fut.key]
            try:
                record = fut.result()
            except Exception as e:  # noqa: BLE001 - the task itself failed (e.g. workers kept dying)
                record = {"subject": subject.id, "status": "failed", "error": f"{type(e).__name__}: {e}".splitlines()[0]}
            status = record.get("status", "failed")
            setattr(summary, status, getattr(summary, status) + 1)
            if status == "failed":
                failures.append({"subject": subject.id, "error": record.get("error")})
            finished += 1
            progress({"event": "subject", "subject": subject.id, "status": status, "done": finished,
                      "total": len(subjects), "error": record.get("error")})
            if time.monotonic() - last_write > 5.0:
                try:
                    write_tables(out, collect_results(out, subjects), failures)
                except OSError:  # a full disk: the run goes on; the tables are written again at the end
                    pass
                last_write = time.monotonic()
    finally:
        summary.seconds = time.perf_counter() - t0
        results = collect_results(out, subjects)
        failed_ids = {f["subject"] for f in failures}
        results = [r for r in results if r["subject"] not in failed_ids]
        written = None
        try:
            summary.paths = write_tables(out, results, failures)
            from .report import write_report

            summary.paths["report"] = write_report(out, results, failures, subjects=subjects)
        except OSError as e:
            written = e
        if own:
            cluster = getattr(client, "cluster", None)
            client.close()
            if cluster is not None:
                cluster.close()
    if written is not None:
        table = out / "failures.csv"
        fresh = table.exists() and table.stat().st_mtime >= started
        kept = "failures.csv was written" if fresh else "not even failures.csv could be written"
        raise InputError(f"{out}: the run's tables could not be written ({written.strerror or written}); {kept}; "
                         f"{summary.done} subjects done, {summary.failed} failed (their results are in subjects/)")
    return summary


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
