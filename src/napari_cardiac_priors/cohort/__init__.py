"""Cohort runs as a small package: read the cohort, process one subject, store results, run on
dask.distributed, report.

- :mod:`.read`: :func:`read_cohort` (an ACDC folder, a folder of images or a CSV file) and
  :class:`Subject`;
- :mod:`.subject`: :func:`process_subject`, one subject's task (resumable: a subject whose
  inputs and parameters are unchanged is skipped), with :class:`BatchOptions`;
- :mod:`.measures`: the subject's measures row (ED/ES pairing) and QC flags;
- :mod:`.store`: the subjects' JSON records and the run's CSV tables;
- :mod:`.run`: :func:`run_batch` on a dask.distributed cluster (:func:`connect`);
- :mod:`.runs`: queries on a finished run folder (:func:`subject_files`);
- :mod:`.report`: the run's self-contained ``report.html``.

A run writes under ``OUT/``: ``subjects/<subject>/`` (segmentations, landmarks, refined labels,
``<subject>_provenance.json`` and, last, ``<subject>_result.json``), ``measures.csv``,
``evaluation.csv`` (when labels are given), ``failures.csv`` and ``report.html``.
"""

from __future__ import annotations

from .read import Subject, read_cohort
from .report import write_report
from .run import BatchSummary, connect, run_batch
from .runs import subject_files
from .store import (
    EVALUATION_COLUMNS, FAILURE_COLUMNS, MEASURE_COLUMNS, collect_results, read_measures, remove_partial_files, write_tables,
)
from .subject import BatchOptions, process_subject, subject_dir

__all__ = [
    "EVALUATION_COLUMNS", "FAILURE_COLUMNS", "MEASURE_COLUMNS", "BatchOptions", "BatchSummary", "Subject",
    "collect_results", "connect", "process_subject", "read_cohort", "read_measures", "remove_partial_files",
    "run_batch", "subject_dir", "subject_files", "write_report", "write_tables",
]
