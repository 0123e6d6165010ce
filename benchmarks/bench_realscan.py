"""Figures of the real-scan issue: the default models on held-out ACDC patients, stored every
which way, shifted like another vendor, and resampled to thin slices; speed; training cost.

Run: ``.venv/bin/python benchmarks/bench_realscan.py [--parts accuracy,orders,vendor,thin,speed,training]
[--baseline-commit 1eb219c] [--quick]``. Prints Markdown for BENCHMARKS.md.

Held-out data: ACDC patients 005, 010, ..., 100 (ED + ES; never trained on). Models: the
registry's ``sslln-acdc``, ``unet-acdc`` and ``acnn-seg-acdc`` (slab contract) and, for
comparison, the versions bundled at each ``--baseline-commit`` (read from git).
Landmark truth: the six landmarks derived from the manual labels (``derive_from_labels``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = "src/napari_cardiac_priors/registry"
ORDERS = {"flip x": dict(flip=("x",)), "flip y": dict(flip=("y",)), "swap x/y": dict(swap_xy=True),
          "reversed slices": dict(flip=("z",)), "flip x + reversed + swap": dict(flip=("x", "z"), swap_xy=True)}


def baseline_model(name: str, commit: str):
    """The model ``name`` as bundled at git ``commit`` (weights read from git into a temporary file)."""
    from safetensors.torch import load_file

    from napari_cardiac_priors.inference import LoadedModel
    from napari_cardiac_priors.nn import build
    from napari_cardiac_priors.registry import ModelEntry

    manifest = json.loads(subprocess.run(["git", "show", f"{commit}:{REGISTRY}/manifest.json"], cwd=ROOT,
                                         capture_output=True, check=True).stdout)
    doc = next(e for e in manifest["models"] if e["name"] == name)
    blob = subprocess.run(["git", "show", f"{commit}:{REGISTRY}/{doc['file']}"], cwd=ROOT, capture_output=True, check=True).stdout
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "w.safetensors"
        path.write_bytes(blob)
        state = load_file(str(path))
    net = build(doc["architecture"], doc["config"])
    net.load_state_dict({k: v.float() for k, v in state.items()})
    entry = ModelEntry.from_dict({**doc, "name": f"{name} {doc['version']}"}, root=tempfile.gettempdir())
    return LoadedModel(entry, net.eval(), "cpu")


#: the real-scan models measured (installed versions, and the versions at --baseline-commit)
MODELS = ("sslln-acdc", "unet-acdc", "acnn-seg-acdc")


def models(args):
    from napari_cardiac_priors.inference import load_model
    from napari_cardiac_priors.registry import runs_on_stacks

    out = {}
    for name in MODELS:
        m = load_model(name)
        if runs_on_stacks(m.entry) and "slab" in m.entry.input:
            out[f"{name} {m.entry.version}"] = m
    for commit in filter(None, (args.baseline_commit or "").split(",")):
        for name in MODELS:
            try:
                m = baseline_model(name, commit)
            except (StopIteration, subprocess.CalledProcessError):
                continue
            if m.entry.name not in out and runs_on_stacks(m.entry):
                out[m.entry.name] = m
    return out


def first(mods, prefix):
    """The label of the first measured model whose label starts with ``prefix`` (installed first),
    else the first measured model."""
    return next((k for k in mods if k.startswith(prefix)), next(iter(mods)))


def cases(ids):
    from napari_cardiac_priors.io.acdc import default_root, iter_patients

    for p in iter_patients(default_root(), ids=ids):
        for phase in ("ed", "es"):
            yield f"{p.id}_{phase}", phase, p.image(phase), p.labels(phase)


def run(model, image, **kw):
    from napari_cardiac_priors.inference import segment

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return segment(image, model, **kw)


def score(pred, gt):
    from napari_cardiac_priors.metrics import evaluate_labels

    ev = evaluate_labels(pred.array, gt.array, gt.spacing, structures=[1, 2, 3])
    return {k: ev[k]["dice"] for k in ("LV", "MYO", "RV")}, {k: ev[k]["hd95"] for k in ("LV", "MYO", "RV")}


def part_accuracy(args, mods, ids):
    from napari_cardiac_priors.conventions import LANDMARK_NAMES
    from napari_cardiac_priors.landmarks import derive_from_labels
    from napari_cardiac_priors.metrics import landmark_errors, mass_g, volumes_ml

    lines = ["| model | Dice LV | Dice MYO | Dice RV | HD95 LV | HD95 MYO | HD95 RV (mm) | LV EDV | LV ESV | RV EDV | LV mass |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    lm_lines = ["| model | " + " | ".join(LANDMARK_NAMES) + " | missing |", "|---|" + "---|" * (len(LANDMARK_NAMES) + 1)]
    default = first(mods, "sslln-acdc")
    variants = [(n, m, {}) for n, m in mods.items()] + [(f"{default} + test-time mirroring", mods[default], {"tta": True})]
    for name, model, kw in variants:
        d = {k: [] for k in ("LV", "MYO", "RV")}
        h = {k: [] for k in ("LV", "MYO", "RV")}
        err = {"LV EDV": [], "LV ESV": [], "RV EDV": [], "LV mass": []}
        lm, lm_head = [], []
        for cid, phase, img, gt in cases(ids):
            res = run(model, img, **kw)
            dice, hd = score(res.labels, gt)
            for k in d:
                d[k].append(dice[k])
                h[k].append(hd[k])
            vp, vg = volumes_ml(res.labels.array, gt.spacing), volumes_ml(gt.array, gt.spacing)
            if phase == "ed":
                err["LV EDV"].append(vp["LV"] - vg["LV"])
                err["RV EDV"].append(vp["RV"] - vg["RV"])
                err["LV mass"].append(mass_g(vp["MYO"]) - mass_g(vg["MYO"]))
            else:
                err["LV ESV"].append(vp["LV"] - vg["LV"])
            if res.landmarks is not None:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ref = derive_from_labels(gt)
                lm.append(landmark_errors(res.landmarks, ref))
                if "landmark_head" in res.info:
                    lm_head.append(landmark_errors(np.array([res.info["landmark_head"][n] for n in LANDMARK_NAMES]), ref))
        cell = lambda v: f"{np.mean(v):.3f}"  # noqa: E731
        hcell = lambda v: f"{np.nanmean(v):.1f}"  # noqa: E731
        ecell = lambda v: f"{np.mean(np.abs(v)):.1f} ({np.mean(v):+.1f})"  # noqa: E731
        lines.append(f"| {name} | {cell(d['LV'])} | {cell(d['MYO'])} | {cell(d['RV'])} | {hcell(h['LV'])} | {hcell(h['MYO'])} | "
                     f"{hcell(h['RV'])} | {ecell(err['LV EDV'])} | {ecell(err['LV ESV'])} | {ecell(err['RV EDV'])} | {ecell(err['LV mass'])} |")
        if lm:
            e = np.array(lm)
            lm_lines.append(f"| {name} | " + " | ".join(f"{v:.1f}" for v in np.nanmedian(e, axis=0)) + f" | {int(np.isnan(e).sum())} |")
        if lm_head:
            e = np.array(lm_head)
            lm_lines.append(f"| {name}: landmark head alone | " + " | ".join(f"{v:.1f}" for v in np.nanmedian(e, axis=0))
                            + f" | {int(np.isnan(e).sum())} |")
    print(f"\n### Held-out ACDC ({len(ids)} patients x ED/ES)\n")
    print("Volume errors: mean absolute (mean signed), mL; LV mass in g (ED, 1.05 g/mL).\n")
    print("\n".join(lines))
    print("\nLandmark error (median, mm) against the landmarks derived from the manual labels:\n")
    print("\n".join(lm_lines))


def part_orders(args, mods, ids):
    from napari_cardiac_priors.metrics import landmark_errors
    from napari_cardiac_priors.volume import restored

    print(f"\n### Stored voxel order ({len(ids)} patients x ED/ES, world geometry unchanged)\n")
    print("Mean Dice per storage; last columns: the worst drop against the original storage, and the largest "
          "landmark displacement (mm) between storages (median over cases).\n")
    print("| model | storage | Dice LV | Dice MYO | Dice RV |\n|---|---|---|---|---|")
    worst = []
    for name, model in mods.items():
        base = None
        lm_move = []
        rows = {}
        for label, kw in [("as stored", {})] + list(ORDERS.items()):
            d = {k: [] for k in ("LV", "MYO", "RV")}
            for cid, phase, img, gt in cases(ids):
                res = run(model, restored(img, **kw) if kw else img)
                g = restored(gt, **kw) if kw else gt
                dice, _ = score(res.labels, g)
                for k in d:
                    d[k].append(dice[k])
                if res.landmarks is not None:
                    rows.setdefault(cid, []).append(res.landmarks)
            m = {k: float(np.mean(v)) for k, v in d.items()}
            base = base or m
            print(f"| {name} | {label} | {m['LV']:.3f} | {m['MYO']:.3f} | {m['RV']:.3f} |")
            if kw:
                worst.append((name, label, {k: base[k] - m[k] for k in m}))
        for cid, lms in rows.items():
            lm_move.append(np.nanmax([landmark_errors(l, lms[0]) for l in lms[1:]], axis=0))
        rows_w = [w for w in worst if w[0] == name]
        drop = {k: max(w[2][k] for w in rows_w) for k in ("LV", "MYO", "RV")}
        print(f"| {name} | **worst drop** | {drop['LV']:+.3f} | {drop['MYO']:+.3f} | {drop['RV']:+.3f} |")
        if lm_move:
            print(f"| {name} | landmark moves (median of max over storages, mm) | "
                  + ", ".join(f"{v:.1f}" for v in np.nanmedian(np.array(lm_move), axis=0)) + " | | |")


def vendor_shift(image, kind: str, rng):
    """The image with a vendor-like intensity change (``gamma``, ``bias``, ``noise``, ``contrast``)."""
    a = np.asarray(image.array, np.float64)
    lo, hi = np.percentile(a, [1, 99])
    u = np.clip((a - lo) / (hi - lo), 0, None)
    if kind == "gamma 0.6":
        u = u**0.6
    elif kind == "gamma 1.6":
        u = u**1.6
    elif kind == "bias field":
        nz, ny, nx = a.shape
        yy, xx = np.meshgrid(np.linspace(-1, 1, ny), np.linspace(-1, 1, nx), indexing="ij")
        u = u * np.exp(0.4 * xx - 0.3 * yy)[None]
    elif kind == "noise":
        u = u + rng.normal(0, 0.05, u.shape)
    elif kind == "low contrast":
        u = 0.3 + 0.5 * u
    return image.with_array((u * (hi - lo) + lo).astype(np.float32))


def part_vendor(args, mods, ids):
    rng = np.random.default_rng(0)
    kinds = ["gamma 0.6", "gamma 1.6", "bias field", "noise", "low contrast"]
    print(f"\n### Vendor-like intensity shifts ({len(ids)} patients x ED/ES)\n")
    print("| model | shift | Dice LV | Dice MYO | Dice RV | drop (worst structure) |\n|---|---|---|---|---|---|")
    for name, model in mods.items():
        base = None
        for kind in [None] + kinds:
            d = {k: [] for k in ("LV", "MYO", "RV")}
            for cid, phase, img, gt in cases(ids):
                dice, _ = score(run(model, vendor_shift(img, kind, rng) if kind else img).labels, gt)
                for k in d:
                    d[k].append(dice[k])
            m = {k: float(np.mean(v)) for k, v in d.items()}
            base = base or m
            drop = max(base[k] - m[k] for k in m)
            print(f"| {name} | {kind or 'none'} | {m['LV']:.3f} | {m['MYO']:.3f} | {m['RV']:.3f} | {drop:+.3f} |")


def thin_stack(image, labels, spacing_mm=2.0):
    """ACDC resampled through-plane to ``spacing_mm`` slices (image linear, labels nearest)."""
    from napari_cardiac_priors.volume import resample

    nz = image.spatial_shape[0]
    k = image.spacing[0] / spacing_mm
    n = int(np.floor((nz - 1) * k)) + 1
    m = np.eye(4)
    m[2, 2] = 1.0 / k
    aff = image.affine @ m
    shape = (n, *image.spatial_shape[1:])
    return resample(image, affine=aff, shape=shape, order=1), resample(labels, affine=aff, shape=shape, order=0)


def part_thin(args, mods, ids):
    print(f"\n### Thin-slice stacks: ACDC resampled to 2 mm slices ({len(ids)} patients x ED/ES)\n")
    print("| model | slices (min-max) | Dice LV | Dice MYO | Dice RV | seconds per stack (median) |\n|---|---|---|---|---|---|")
    for name, model in mods.items():
        d = {k: [] for k in ("LV", "MYO", "RV")}
        times, counts, failed = [], [], []
        for cid, phase, img, gt in cases(ids):
            im2, gt2 = thin_stack(img, gt)
            counts.append(im2.spatial_shape[0])
            try:
                t0 = time.perf_counter()
                res = run(model, im2)
                times.append(time.perf_counter() - t0)
            except Exception as e:  # noqa: BLE001 - the old models refuse these stacks
                failed.append(str(e).splitlines()[0])
                continue
            dice, _ = score(res.labels, gt2)
            for k in d:
                d[k].append(dice[k])
        if failed:
            print(f"| {name} | {min(counts)}-{max(counts)} | refused: {len(failed)} of {len(counts)} ('{failed[0]}') | | | |")
        else:
            print(f"| {name} | {min(counts)}-{max(counts)} | {np.mean(d['LV']):.3f} | {np.mean(d['MYO']):.3f} | "
                  f"{np.mean(d['RV']):.3f} | {statistics.median(times):.2f} |")


def part_speed(args, mods, ids):
    import torch

    from napari_cardiac_priors.phantom import make_subject

    print(f"\n### Speed (torch threads {torch.get_num_threads()}; median of the held-out ACDC volumes, and of HR phantom stacks)\n")
    hr = []
    for seed in (9500, 9501, 9502):
        ph = make_subject(seed)["ed"]
        hr.append(ph.image)
    print("| model | ACDC volume (s) | HR stack (s), shape |\n|---|---|---|")
    default = first(mods, "sslln-acdc")
    variants = [(n, m, {}) for n, m in mods.items() if "slab" in m.entry.input] + [(f"{default} + mirroring", mods[default], {"tta": True})]
    for name, model, kw in variants:
        t_acdc = []
        for cid, phase, img, gt in cases(ids[:10]):
            t0 = time.perf_counter()
            run(model, img, **kw)
            t_acdc.append(time.perf_counter() - t0)
        t_hr = []
        for img in hr:
            t0 = time.perf_counter()
            run(model, img, **kw)
            t_hr.append(time.perf_counter() - t0)
        print(f"| {name} | {statistics.median(t_acdc):.2f} | {statistics.median(t_hr):.2f}, {hr[0].spatial_shape} at "
              f"{tuple(round(s, 2) for s in hr[0].spacing)} mm |")


def part_training(args):
    print("\n### Training cost and validation curve (this CPU, one core per run)\n")
    from napari_cardiac_priors.registry import get_model

    for name in MODELS:
        t = get_model(name).training
        hist = t.get("validation_history") or []
        curve = ", ".join(f"{h['epoch']}: {h['dice_mean']:.3f}" for h in hist if "dice_mean" in h)
        start = t.get("warm_start") or t.get("continued_from")
        how = ""
        if isinstance(start, dict):
            how = (f"continued from {start['name']} {start['version']} (epoch {start.get('epochs_trained')}); "
                   if start.get("continued") else f"started from {start['name']} {start['version']}; ")
        secs = t.get("train_seconds")
        cost = f"{secs / 60:.0f} min of training steps" if secs else "training time not recorded"
        print(f"- {name} {get_model(name).version}: {how}{t.get('epochs_trained')} epochs kept, {cost}; "
              f"validation mean Dice by epoch: {curve or '-'}")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--parts", default="accuracy,orders,vendor,thin,speed,training")
    ap.add_argument("--baseline-commit", default="1eb219c",
                    help="comma-separated git commits whose bundled versions are measured too (1eb219c: the 1.1 models; '' none)")
    ap.add_argument("--quick", action="store_true", help="2 validation patients only (a smoke run)")
    ap.add_argument("--models", help="comma-separated subset of the model labels, e.g. 'sslln-acdc 2.2'")
    ap.add_argument("--robust-n", type=int, default=10, help="validation patients for the storage, vendor and thin parts (default 10)")
    args = ap.parse_args()
    from napari_cardiac_priors.training.recipes import ACDC_VALIDATION

    ids = ACDC_VALIDATION[:2] if args.quick else ACDC_VALIDATION
    parts = args.parts.split(",")
    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"{time.strftime('%Y-%m-%d')}; `{' '.join([Path(sys.argv[0]).name, *sys.argv[1:]])}`")
    mods = models(args) if set(parts) - {"training"} else {}
    if args.models:
        keep = [m.strip() for m in args.models.split(",")]
        mods = {k: v for k, v in mods.items() if k in keep}
    for part in parts:
        if part == "training":
            part_training(args)
        elif part in ("orders", "vendor", "thin"):
            globals()[f"part_{part}"](args, mods, ids[: args.robust_n])
        else:
            globals()[f"part_{part}"](args, mods, ids)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
