"""Figures of the cohort issue: throughput with 1 and 2 workers (with and without refinement),
agreement of measures.csv with manual-label volumes on the held-out ACDC patients, crash test.

Run: ``.venv/bin/python benchmarks/bench_batch.py [--refine-subjects 10] [--kills 5]``.
Uses ``cardiac-priors batch`` itself (a subprocess per run, as a user would) on the ACDC
training folder (100 patients = 200 volumes) with the bundled ``sslln-acdc``; prints Markdown
for BENCHMARKS.md. Each worker process gets one torch thread.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CLI = [sys.executable, "-m", "napari_cardiac_priors.cli"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _run(args, **kw):
    t0 = time.perf_counter()
    p = subprocess.run(CLI + args, env=ENV, capture_output=True, text=True, **kw)
    if p.returncode not in (0, 1):
        raise RuntimeError(p.stderr[-2000:])
    return time.perf_counter() - t0, p


def _csv(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _subset(root: Path, ids, dst: Path) -> Path:
    """A cohort folder of links to some ACDC patients."""
    dst.mkdir(parents=True, exist_ok=True)
    for i in ids:
        (dst / f"patient{i:03d}").symlink_to(root / "training" / f"patient{i:03d}")
    return dst


def throughput(cohort: Path, work: Path, *, refine: bool, n_subjects: int):
    rows = []
    for workers in (1, 2):
        out = work / f"tp_{'refine' if refine else 'seg'}_{workers}"
        args = ["batch", str(cohort), "--out", str(out), "--model", "sslln-acdc", "--workers", str(workers)]
        seconds, p = _run(args + (["--refine"] if refine else []))
        done = len(_csv(out / "measures.csv"))
        rows.append((workers, seconds, done, done / seconds * 60))
    return rows


def agreement(out: Path, root: Path, ids):
    from napari_cardiac_priors.io.acdc import iter_patients
    from napari_cardiac_priors.metrics import cardiac_measures, ejection_fraction

    rows = {r["subject"]: r for r in _csv(out / "measures.csv")}
    pairs = {k: [] for k in ("lv_edv_ml", "lv_esv_ml", "lv_ef", "lv_mass_g", "rv_edv_ml")}
    for p in iter_patients(root, ids=ids):
        ed, es = (cardiac_measures(p.labels(ph).array, p.labels(ph).spacing) for ph in ("ed", "es"))
        ref = {"lv_edv_ml": ed["lv_ml"], "lv_esv_ml": es["lv_ml"], "lv_ef": ejection_fraction(ed["lv_ml"], es["lv_ml"]),
               "lv_mass_g": ed["lv_mass_g"], "rv_edv_ml": ed["rv_ml"]}
        for k in pairs:
            if rows.get(p.id, {}).get(k):
                pairs[k].append((float(rows[p.id][k]), ref[k]))
    out_rows = []
    for k, v in pairs.items():
        a = np.array(v)
        diff = a[:, 0] - a[:, 1]
        out_rows.append((k, len(a), np.abs(diff).mean(), diff.mean(), np.corrcoef(a[:, 0], a[:, 1])[0, 1]))
    return out_rows


def qc_base_rate(root: Path):
    """How often the QC checks fire on the manual ACDC labels (all 100 patients, ED and ES)."""
    import collections

    from napari_cardiac_priors.io.acdc import iter_patients
    from napari_cardiac_priors.metrics import anatomy_errors

    counts, n, flagged = collections.Counter(), 0, 0
    for p in iter_patients(root):
        for ph in ("ed", "es"):
            errors = anatomy_errors(p.labels(ph).array)
            n += 1
            flagged += bool(errors)
            for e in errors:
                counts["in several pieces: " + e.split()[0] if "pieces" in e else e.split(" on ")[0]] += 1
    return n, flagged, counts


def _partial_or_broken(out: Path):
    """Hidden temporary files, and files under their final names that do not parse."""
    import nibabel as nib

    temps = [p for p in out.rglob(".*.part*")]
    broken = []
    for p in out.rglob("*"):
        if not p.is_file() or p.name.startswith("."):
            continue
        try:
            if p.name.endswith(".nii.gz"):
                np.asarray(nib.load(p).dataobj)
            elif p.suffix == ".json":
                json.loads(p.read_text())
            elif p.suffix == ".csv":
                _csv(p)
        except Exception:  # noqa: BLE001 - counted
            broken.append(p)
    return temps, broken


def crash_test(cohort: Path, work: Path, kills: int, seed: int = 0):
    rng = random.Random(seed)
    ref_out = work / "crash_ref"
    t_full, _ = _run(["batch", str(cohort), "--out", str(ref_out), "--model", "sslln-acdc", "--workers", "2"])
    out = work / "crash"
    log = []
    for k in range(kills):
        delay = rng.uniform(4.0, 12.0)  # short enough that every round leaves subjects to do
        proc = subprocess.Popen(CLI + ["batch", str(cohort), "--out", str(out), "--model", "sslln-acdc", "--workers", "2"],
                                env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(delay)
        how = "SIGKILL of the whole run" if k % 2 == 0 else "SIGKILL of the scheduler process only"
        if k % 2 == 0:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        time.sleep(3.0)
        if k % 2 == 1:  # orphaned workers of the killed scheduler: still alive after 3 s?
            alive = subprocess.run(["pgrep", "-s", str(proc.pid)], capture_output=True, text=True).stdout.split()
            os.killpg(proc.pid, signal.SIGKILL) if alive else None
        else:
            alive = []
        finished = len(list(out.rglob("*_result.json")))
        temps, broken = _partial_or_broken(out)
        log.append((k + 1, how, delay, finished, len(temps), len(broken), len(alive)))
    _run(["batch", str(cohort), "--out", str(out), "--model", "sslln-acdc", "--workers", "2"])
    temps, broken = _partial_or_broken(out)
    a, b = _csv(out / "measures.csv"), _csv(ref_out / "measures.csv")
    same_csv = a == b
    import nibabel as nib

    segs = sorted(p.relative_to(ref_out) for p in ref_out.rglob("*_seg.nii.gz"))
    same_segs = all(np.array_equal(np.asarray(nib.load(ref_out / s).dataobj), np.asarray(nib.load(out / s).dataobj)) for s in segs)
    return log, same_csv, same_segs, len(segs), len(temps), len(broken), t_full


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--refine-subjects", type=int, default=10, help="patients for the refinement throughput")
    ap.add_argument("--crash-subjects", type=int, default=30)
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--work", help="working folder (default: a temporary folder)")
    ap.add_argument("--parts", default="throughput,agreement,qc,crash", help="comma-separated parts (default: all)")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    from napari_cardiac_priors.io.acdc import default_root
    from napari_cardiac_priors.training.recipes import ACDC_VALIDATION

    root = default_root()
    work = Path(args.work or tempfile.mkdtemp(prefix="bench_batch_"))
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; date {time.strftime('%Y-%m-%d')}\n")

    if "throughput" in parts:
        print("### Throughput, ACDC training folder, sslln-acdc (subjects = patients, ED + ES each)\n")
        print("| run | workers | subjects | wall time (s) | subjects / min | ratio 2 vs 1 worker |\n|---|---|---|---|---|---|")
        seg = throughput(root, work, refine=False, n_subjects=100)
        for w, s, n, rate in seg:
            print(f"| segmentation | {w} | {n} | {s:.0f} | {rate:.1f} | {'' if w == 1 else f'{rate / seg[0][3]:.2f}'} |")
        sub = _subset(root, list(range(1, 1 + args.refine_subjects)), work / "refine_cohort")
        ref = throughput(sub, work, refine=True, n_subjects=args.refine_subjects)
        for w, s, n, rate in ref:
            print(f"| segmentation + refinement | {w} | {n} | {s:.0f} | {rate:.2f} | {'' if w == 1 else f'{rate / ref[0][3]:.2f}'} |")

    if "agreement" in parts:
        val = _subset(root, list(ACDC_VALIDATION), work / "validation_cohort")
        _run(["batch", str(val), "--out", str(work / "validation_run"), "--model", "sslln-acdc", "--workers", "2"])
        print("\n### Agreement of measures.csv with the manual labels, held-out patients (no refinement)\n")
        print("| measure | n | mean abs. difference | mean difference (bias) | Pearson r |\n|---|---|---|---|---|")
        for k, n, mad, bias, r in agreement(work / "validation_run", root, ACDC_VALIDATION):
            unit = "%" if k.endswith("ef") else ("g" if k.endswith("_g") else "mL")
            print(f"| {k} | {n} | {mad:.1f} {unit} | {bias:+.1f} {unit} | {r:.3f} |")

    if "qc" in parts:
        n, flagged, counts = qc_base_rate(root)
        print(f"\n### QC checks on the manual labels ({n} ACDC label maps)\n")
        print(f"{flagged} of {n} manual label maps ({100 * flagged / n:.0f} %) are flagged by at least one check:\n")
        print("| check | label maps |\n|---|---|")
        for k, v in counts.most_common():
            print(f"| {k} | {v} |")

    if "crash" in parts:
        crash = _subset(root, list(range(11, 11 + args.crash_subjects)), work / "crash_cohort")
        log, same_csv, same_segs, n_segs, temps, broken, t_full = crash_test(crash, work, args.kills)
        print(f"\n### Crash test ({args.crash_subjects} patients, 2 workers; uninterrupted run {t_full:.0f} s)\n")
        print("| kill | how | after (s) | subjects finished | leftover temp files | broken files under final names | orphan processes after 3 s |")
        print("|---|---|---|---|---|---|---|")
        for k, how, delay, fin, t, b, alive in log:
            print(f"| {k} | {how} | {delay:.1f} | {fin} | {t} | {b} | {alive} |")
        print(f"\nAfter the final (completing) run: measures.csv equal to the uninterrupted run's: {same_csv}; "
              f"{n_segs} segmentations identical: {same_segs}; temp files left: {temps}; broken files: {broken}.")


if __name__ == "__main__":
    main()
