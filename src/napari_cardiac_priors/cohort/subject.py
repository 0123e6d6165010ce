"""One subject of a cohort run (a task on a dask worker): segment, refine, measure, evaluate.

:func:`process_subject` writes under ``OUT/subjects/<subject>/``: ``<subject>_<phase>_seg.nii.gz``,
``..._landmarks.json``, ``..._refined.nii.gz`` (with refinement), ``<subject>_provenance.json``
and, last, ``<subject>_result.json`` (the subject's measures, evaluation and QC: its presence
marks the subject as finished). Every file is written atomically. A rerun skips a subject whose
result exists and whose input files' sha256 and parameters are unchanged.

Models and atlases are loaded once per worker process (cached), not once per task: the
atlases by :func:`napari_cardiac_priors.workflows.refine.cached_atlases`.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from .measures import subject_measures
from .read import Subject
from .store import _finite, _write_json


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
        from .. import registry

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


def subject_dir(out_dir, subject_id: str) -> Path:
    """The folder of a subject's outputs in a run folder: ``out_dir/subjects/<subject_id>``."""
    return Path(out_dir) / "subjects" / subject_id


def _input_sha256(path) -> str:
    """sha256 of an input file (:func:`~napari_cardiac_priors.registry.sha256_of`), or of a
    DICOM folder's files (their relative names and contents, sorted, in one digest)."""
    from ..registry import sha256_of

    path = Path(path)
    if not path.is_dir():
        return sha256_of(path)
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)).encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _atlas_digest(name: str) -> str:
    from .. import registry
    from ..registry import sha256_of_folder
    from ..registry.atlases import AUTO, PHANTOM_ATLASES, REAL_ATLASES

    if name == AUTO:  # either set may be used: both decide the outputs
        return hashlib.sha256(f"{_atlas_digest(REAL_ATLASES)}:{_atlas_digest(PHANTOM_ATLASES)}".encode()).hexdigest()
    if Path(name).is_dir():
        return sha256_of_folder(Path(name))
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
                inputs[f"{phase}_{kind}"] = {"path": str(p), "sha256": _input_sha256(p)}
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

    from .. import __version__
    from ..inference import load_model
    from ..io import read_volume, write_landmarks, write_volume
    from ..metrics import anatomy_errors, cardiac_measures, evaluate_labels
    from ..volume import resample
    from ..workflows.segment import segment_image

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
            from ..workflows.refine import refine_subject  # atlases: workflows.refine.cached_atlases

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
            from ..latent import plausibility

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

    measures, qc = subject_measures(subject.id, phases, plaus)
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
