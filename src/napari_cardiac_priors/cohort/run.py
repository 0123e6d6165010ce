"""A cohort run on dask.distributed: one :func:`~.subject.process_subject` task per subject.

:func:`run_batch` sends the tasks to a dask.distributed cluster (a LocalCluster unless a
scheduler address is given), rewrites the run's tables and ``report.html`` from the result
files as subjects finish and at the end, so an interrupted run loses no finished subject.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import InputError
from .read import read_cohort
from .report import write_report
from .store import collect_results, remove_partial_files, write_tables
from .subject import BatchOptions, process_subject


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
    """Process every subject of ``cohort`` (a folder, CSV or list of :class:`~.read.Subject`) on dask.

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
