"""Figures of the SSLLN issue: accuracy on held-out ACDC and phantoms, timing, memory, robustness.

Run: ``.venv/bin/python benchmarks/bench_sslln.py [--quick]``. Uses the models of the
registry (bundled ``sslln-acdc``, ``unet-acdc``, ``sslln-hr-phantom``, ``sslln-lr-phantom``)
and prints Markdown tables for BENCHMARKS.md. Held-out data: ACDC patients 005, 010, ...,
100 (never trained on) and phantom seeds outside every recipe's training and validation sets.
Distances are 3D (HD95 in mm on each image's own grid).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import warnings

import numpy as np

HELD_OUT_PHANTOMS = tuple(range(9500, 9510))
HELD_OUT_LR_PHANTOMS = tuple(range(9600, 9610))


def _mean_sd(values):
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return f"{v.mean():.3f} ± {v.std():.3f}" if v.size else "n/a"


def acdc_table(models, ids):
    from napari_cardiac_priors.inference import load_model, segment
    from napari_cardiac_priors.io.acdc import default_root, iter_patients
    from napari_cardiac_priors.metrics import evaluate_labels, volumes_ml

    from napari_cardiac_priors.conventions import LANDMARK_NAMES
    from napari_cardiac_priors.landmarks import derive_from_labels
    from napari_cardiac_priors.metrics import landmark_errors

    rows, lm_rows = [], []
    for name in models:
        model = load_model(name)
        errs = []
        res = {k: [] for k in ("LV", "MYO", "RV")}
        hd = {k: [] for k in ("LV", "MYO", "RV")}
        dv = {"LV": [], "RV": []}
        for p in iter_patients(default_root(), ids=ids):
            for phase in ("ed", "es"):
                img, gt = p.image(phase), p.labels(phase)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    result = segment(img, model)
                    if result.landmarks is not None:
                        errs.append(landmark_errors(result.landmarks, derive_from_labels(gt)))
                pred = result.labels
                ev = evaluate_labels(pred.array, gt.array, gt.spacing, structures=[1, 2, 3])
                vp, vg = volumes_ml(pred.array, gt.spacing), volumes_ml(gt.array, gt.spacing)
                for k in res:
                    res[k].append(ev[k]["dice"])
                    hd[k].append(ev[k]["hd95"])
                for k in dv:
                    dv[k].append(abs(vp[k] - vg[k]))
        rows.append(f"| {name} | {_mean_sd(res['LV'])} | {_mean_sd(res['MYO'])} | {_mean_sd(res['RV'])} | "
                    f"{np.nanmean(hd['LV']):.1f} / {np.nanmean(hd['MYO']):.1f} / {np.nanmean(hd['RV']):.1f} | "
                    f"{np.mean(dv['LV']):.1f} | {np.mean(dv['RV']):.1f} |")
        if errs:
            e = np.array(errs)
            lm_rows.append(f"| {name} | " + " | ".join(f"{np.nanmedian(e[:, j]):.1f}" for j in range(6)) + f" | {int(np.isnan(e).any(1).sum())} |")
    head = ("| model | Dice LV | Dice MYO | Dice RV | HD95 LV / MYO / RV (mm) | abs. LV volume error (mL) | abs. RV volume error (mL) |\n"
            "|---|---|---|---|---|---|---|")
    table = head + "\n" + "\n".join(rows)
    if lm_rows:
        table += ("\n\nLandmarks against those derived from the manual labels (median mm; cases with a missing landmark):\n\n"
                  "| model | " + " | ".join(LANDMARK_NAMES) + " | missing |\n|---|" + "---|" * 7 + "\n" + "\n".join(lm_rows))
    return table


def phantom_table(name, seeds, *, lr: bool):
    from napari_cardiac_priors.conventions import LANDMARK_NAMES
    from napari_cardiac_priors.inference import load_model, segment
    from napari_cardiac_priors.metrics import evaluate_labels, landmark_errors
    from napari_cardiac_priors.phantom import PATHOLOGIES, make_subject
    from napari_cardiac_priors.volume import resample

    model = load_model(name)
    dice = {k: [] for k in ("LV", "MYO", "RV", "RVW")}
    dice_lr = {k: [] for k in dice}
    errs = []
    for i, seed in enumerate(seeds):
        for ph in make_subject(seed, pathology=PATHOLOGIES[i % 5], lr=lr).values():
            image = ph.lr_image if lr else ph.image
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = segment(image, model)
            pred = resample(result.labels, ph.labels) if lr else result.labels  # HR truth grid
            ev = evaluate_labels(pred.array, ph.labels.array, ph.labels.spacing, structures=[1, 2, 3, 4])
            for k in dice:
                dice[k].append(ev[k]["dice"])
            if lr:
                target = resample(ph.labels, ph.lr_image)
                ev_lr = evaluate_labels(result.labels.array, target.array, target.spacing, structures=[1, 2, 3, 4])
                for k in dice_lr:
                    dice_lr[k].append(ev_lr[k]["dice"])
            errs.append(landmark_errors(result.landmarks, ph.landmarks))
    e = np.array(errs)
    out = [f"| {name}{' vs HR truth on the HR grid' if lr else ''} | " + " | ".join(_mean_sd(dice[k]) for k in dice) + " |"]
    if lr:
        out.append(f"| {name} vs HR truth sampled on the LR grid | " + " | ".join(_mean_sd(dice_lr[k]) for k in dice) + " |")
    lm = " | ".join(f"{np.nanmedian(e[:, j]):.1f} ({np.nanmean(e[:, j]):.1f} ± {np.nanstd(e[:, j]):.1f})" for j in range(6))
    lm_row = f"| {name} | {lm} | {int(np.isnan(e[:, 0]).sum() + np.isnan(e[:, 1:]).sum())} |"
    lm_head = "| model | " + " | ".join(LANDMARK_NAMES) + " | missing |\n|---|" + "---|" * 7
    return out, lm_head + "\n" + lm_row


def robustness_table(name, seeds, ks=(2, 4, 6)):
    """SSLLN Fig. 8: zero-fill k consecutive mid-ventricular slices; Dice inside the gap."""
    from napari_cardiac_priors.inference import load_model, segment
    from napari_cardiac_priors.metrics import dice
    from napari_cardiac_priors.phantom import PATHOLOGIES, make_subject

    model = load_model(name)
    rows = []
    for k in ks:
        d = {v: [] for v in (1, 2, 3)}
        for i, seed in enumerate(seeds):
            ph = make_subject(seed, pathology=PATHOLOGIES[i % 5])["ed"]
            lv_z = np.nonzero((ph.labels.array == 1).any(axis=(1, 2)))[0]
            mid = int(lv_z.mean())
            gap = slice(mid - k // 2, mid - k // 2 + k)
            img = ph.image.array.copy()
            img[gap] = 0
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pred = segment(ph.image.with_array(img), model).labels.array
            for v in d:
                d[v].append(dice(pred[gap] == v, ph.labels.array[gap] == v))
        rows.append(f"| {k} slices ({2 * k} mm) | {_mean_sd(d[1])} | {_mean_sd(d[2])} | {_mean_sd(d[3])} |")
    return "| zero-filled gap | Dice LV in the gap | Dice MYO | Dice RV |\n|---|---|---|---|\n" + "\n".join(rows)


_CHILD = r"""
import json, resource, statistics, sys, time, warnings
import torch
torch.set_num_threads(2)
from napari_cardiac_priors.inference import load_model, segment
from napari_cardiac_priors.io import read_volume
name, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
vol = read_volume(path)
model = load_model(name)
warnings.simplefilter("ignore")
segment(vol, model)
times, net = [], []
for _ in range(n):
    t = time.perf_counter(); r = segment(vol, model); times.append(time.perf_counter() - t); net.append(r.info["network_seconds"])
print(json.dumps({"median": statistics.median(times), "network_median": statistics.median(net),
                  "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def timing_rows(cases):
    rows = []
    for name, path, label in cases:
        out = subprocess.run([sys.executable, "-c", _CHILD, name, str(path), "10"], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(f"| {name} | {label} | {r['median']:.2f} s | {r['network_median']:.2f} s | {r['max_rss_mb']:.0f} MB |")
    return ("| model | input | segment() median of 10 | of which network + resampling to the model grid | peak RSS of the process |\n"
            "|---|---|---|---|---|\n" + "\n".join(rows))


def training_rows(names, root="training_runs"):
    import torch

    rows = []
    for name in names:
        ck = os.path.join(root, name, "checkpoint.pt")
        if not os.path.exists(ck):
            rows.append(f"| {name} | (no checkpoint here) | | |")
            continue
        hist = json.loads(torch.load(ck, weights_only=True)["history"])
        secs = sum(h["seconds"] for h in hist)
        best = max((h for h in hist if "val" in h), key=lambda h: h["val"]["dice_mean"], default=None)
        val = f"{best['val']['dice_mean']:.3f} at epoch {best['epoch']}" if best else ""
        rows.append(f"| {name} | {len(hist)} epochs | {secs / 60:.0f} min | {val} |")
    return "| recipe | trained | wall time (2 CPU cores) | best validation mean Dice |\n|---|---|---|---|\n" + "\n".join(rows)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer cases (a smoke run)")
    ap.add_argument("--parts", default="acdc,phantoms,robustness,timing,training",
                    help="comma-separated parts to run (default: all)")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    from napari_cardiac_priors.io.acdc import default_root
    from napari_cardiac_priors.registry import list_models
    from napari_cardiac_priors.training.recipes import ACDC_VALIDATION

    have = {e.name for e in list_models()}
    date = time.strftime("%Y-%m-%d")
    print(f"# bench_sslln.py, {date}, {platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}\n")
    ids = ACDC_VALIDATION[:4] if args.quick else ACDC_VALIDATION
    acdc_models = [m for m in ("sslln-acdc", "unet-acdc") if m in have]
    if acdc_models and "acdc" in parts:
        print(f"## ACDC held-out patients ({len(ids)} patients x ED/ES, original grid)\n")
        print(acdc_table(acdc_models, ids) + "\n")
    seeds = HELD_OUT_PHANTOMS[:2] if args.quick else HELD_OUT_PHANTOMS
    head = "| model | Dice LV | Dice MYO | Dice RV | Dice RVW |\n|---|---|---|---|---|"
    lm_tables = []
    seg_rows = []
    if "sslln-hr-phantom" in have and "phantoms" in parts:
        rows, lm = phantom_table("sslln-hr-phantom", seeds, lr=False)
        seg_rows += rows
        lm_tables.append(lm)
    if "sslln-lr-phantom" in have and "phantoms" in parts:
        rows, lm = phantom_table("sslln-lr-phantom", HELD_OUT_LR_PHANTOMS[: len(seeds)], lr=True)
        seg_rows += rows
        lm_tables.append(lm)
    if seg_rows:
        print(f"## Held-out phantoms ({len(seeds)} subjects x ED/ES)\n\n{head}\n" + "\n".join(seg_rows) + "\n")
        print("Landmark point-to-point error (mm): median (mean ± sd)\n")
        print("\n\n".join(lm_tables) + "\n")
    if "sslln-hr-phantom" in have and "robustness" in parts:
        print("## Robustness (SSLLN Fig. 8): zero-filled consecutive HR slices, sslln-hr-phantom\n")
        print(robustness_table("sslln-hr-phantom", seeds) + "\n")
    cases = []
    acdc_img = default_root() / "training" / "patient005" / "patient005_frame01.nii.gz"
    if "sslln-acdc" in have:
        cases.append(("sslln-acdc", acdc_img, "ACDC patient005 ED (10 x 256 x 216)"))
    if "unet-acdc" in have:
        cases.append(("unet-acdc", acdc_img, "ACDC patient005 ED (10 x 256 x 216)"))
    sample = os.path.join(os.path.dirname(__file__), "..", "sample_data")
    if "sslln-hr-phantom" in have:
        cases.append(("sslln-hr-phantom", os.path.join(sample, "phantom_000_ed_image.nii.gz"), "HR phantom (64 x 144 x 144)"))
    if "sslln-lr-phantom" in have:
        cases.append(("sslln-lr-phantom", os.path.join(sample, "phantom_000_ed_lr_image.nii.gz"), "LR phantom stack"))
    if cases and "timing" in parts:
        print("## Inference time on this CPU (2 threads)\n")
        print(timing_rows(cases) + "\n")
    if "training" in parts:
        print("## Training time\n")
        print(training_rows(["sslln-acdc", "unet-acdc", "sslln-hr-phantom", "sslln-lr-phantom"]))


if __name__ == "__main__":
    main()
