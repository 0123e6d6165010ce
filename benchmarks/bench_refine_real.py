"""Refinement on real hearts (issue 15): ACDC validation patients, thick stacks simulated from them.

``.venv/bin/python benchmarks/bench_refine_real.py [--patients N] [--variants SET:FUSION[:N[:fast]] ...]``

Real data has no HR truth here, so refinement is scored on what was held back. For each
validation patient (never a training patient of the models or of ``atlases-acdc``), ED and ES:

1. each slice of the image shifted in-plane by a simulated breath-hold offset (normal,
   ``--shift-mm`` per axis), segmented by the default model, and every other slice of its
   labels kept: a thick stack (twice the slice spacing) as the slice-by-slice model segments
   it; landmarks measured on those labels;
2. (the held-back slices are the dropped ones);
3. unrefined: those labels put back on the original grid (nearest slice); refined: each
   variant (atlas set x fusion) resampled onto the original grid;
4. scored against the manual labels: Dice per structure on the held-back slices and on all
   slices, HD95 on all slices, LV/RV volume and LV mass errors (original grid), and the time.

Prints a Markdown section for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import warnings

import numpy as np

VARIANTS = ("atlases-phantom:majority", "atlases-acdc:majority", "atlases-acdc:patch")
STRUCTS = {1: "LV", 2: "MYO", 3: "RV"}


def shifted(image, *, shift_mm: float, rng):
    """``image`` with each slice shifted in-plane by a random breath-hold offset (normal, sd mm)."""
    from scipy import ndimage

    _, sy, sx = image.spacing
    arr = np.asarray(image.array, np.float32)
    return image.with_array(np.stack([ndimage.shift(sl, rng.normal(0, shift_mm, 2) / (sy, sx), order=1, mode="nearest")
                                      for sl in arr]))


def every_other_slice(volume):
    """Slices 0, 2, 4, ... of ``volume``: the same world space, twice the slice spacing."""
    m = np.eye(4)
    m[2, 2] = 2.0
    return type(volume)(np.ascontiguousarray(volume.array[::2]), affine=volume.affine @ m, kind=volume.kind)


def score(pred, ref, spacing, held):
    from napari_cardiac_priors.metrics import cardiac_measures, dice, hd95

    out = {}
    for v, name in STRUCTS.items():
        out[f"dice_{name}"] = dice(pred == v, ref == v)
        out[f"held_{name}"] = dice(pred[held] == v, ref[held] == v)
        out[f"hd95_{name}"] = hd95(pred == v, ref == v, spacing)
    mp, mr = cardiac_measures(pred, spacing), cardiac_measures(ref, spacing)
    out["lv_ml_err"] = mp["lv_ml"] - mr["lv_ml"]
    out["rv_ml_err"] = mp["rv_ml"] - mr["rv_ml"]
    out["lv_mass_err"] = mp["lv_mass_g"] - mr["lv_mass_g"]
    return out


def main():
    import torch

    from napari_cardiac_priors.conventions import DEFAULT_MODEL
    from napari_cardiac_priors.inference import load_model, segment
    from napari_cardiac_priors.io.acdc import default_root, iter_patients
    from napari_cardiac_priors.landmarks import derive_from_labels
    from napari_cardiac_priors.registration.ffd import DEFAULT_LEVELS, FAST_LEVELS
    from napari_cardiac_priors.registration.refine import refine
    from napari_cardiac_priors.registry.atlases import load_atlases
    from napari_cardiac_priors.training.recipes import ACDC_VALIDATION
    from napari_cardiac_priors.volume import resample

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--patients", type=int, default=len(ACDC_VALIDATION), help="validation patients (first N)")
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS),
                    help="ATLAS_SET:FUSION[:N_ATLASES[:default|fast]] (registration levels of registration.ffd)")
    ap.add_argument("--shift-mm", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--scaling", action="store_true",
                    help="only time refinement against the number of atlases in the set (20, 40, 80, all of atlases-acdc)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.scaling:
        return scaling(args)
    rng = np.random.default_rng(args.seed)
    model = load_model(DEFAULT_MODEL)
    sets = {v.split(":")[0]: load_atlases(v.split(":")[0]) for v in args.variants}
    rows = {"unrefined": []} | {v: [] for v in args.variants}
    times = {v: [] for v in args.variants}
    steps = {v: [] for v in args.variants}
    for p in iter_patients(default_root(), ids=ACDC_VALIDATION[: args.patients]):
        for phase in ("ed", "es"):
            image, ref = p.image(phase), p.labels(phase)
            held = np.arange(1, ref.spatial_shape[0], 2)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                # the slice-by-slice default model segments each slice on its own: segmenting the shifted
                # stack and keeping every other slice is segmenting the thick stack (whose 16-20 mm slice
                # spacing the model's input check refuses)
                labels = every_other_slice(segment(shifted(image, shift_mm=args.shift_mm, rng=rng), model).labels)
                landmarks = derive_from_labels(labels)
                rows["unrefined"].append(score(resample(labels, ref).array, ref.array, ref.spacing, held))
                for v in args.variants:
                    name, fusion, n, levels = (v.split(":") + ["5", "default"])[:4]
                    r = refine(labels, landmarks, sets[name], fusion=fusion, n_atlases=int(n),
                               levels=FAST_LEVELS if levels == "fast" else DEFAULT_LEVELS)
                    times[v].append(r.timings["total"])
                    steps[v].append(r.timings)
                    rows[v].append(score(resample(r.labels, ref).array, ref.array, ref.spacing, held))
            sys.stderr.write(f"{p.id} {phase}: " + ", ".join(f"{k} RV {rows[k][-1]['held_RV']:.3f}" for k in rows) + "\n")
    n = len(rows["unrefined"])
    out = [f"# bench_refine_real.py, {time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} CPU cores, "
           f"torch {torch.__version__}, {torch.get_num_threads()} threads",
           f"`{' '.join(['benchmarks/bench_refine_real.py'] + sys.argv[1:])}`: {n} targets ({n // 2} validation patients x "
           f"ED/ES), every other slice kept (twice the slice spacing), breath-hold shifts sd {args.shift_mm} mm, "
           f"segmented by {DEFAULT_MODEL}; scored on the original grid against the manual labels.", "",
           "| labels | Dice LV / MYO / RV, held-back slices | Dice LV / MYO / RV, all slices | HD95 LV / MYO / RV (mm) "
           "| LV vol. err. (mL) | RV vol. err. (mL) | LV mass err. (g) | median time |",
           "|---|---|---|---|---|---|---|---|"]
    for k, rs in rows.items():
        m = lambda key: float(np.nanmean([r[key] for r in rs]))  # noqa: E731
        a = lambda key: f"{np.nanmean([r[key] for r in rs]):+.1f} ± {np.nanstd([r[key] for r in rs]):.1f}"  # noqa: E731
        t = f"{statistics.median(times[k]):.1f} s" if k in times else "-"
        out.append(f"| {k} | {m('held_LV'):.3f} / {m('held_MYO'):.3f} / {m('held_RV'):.3f} "
                   f"| {m('dice_LV'):.3f} / {m('dice_MYO'):.3f} / {m('dice_RV'):.3f} "
                   f"| {m('hd95_LV'):.1f} / {m('hd95_MYO'):.1f} / {m('hd95_RV'):.1f} "
                   f"| {a('lv_ml_err')} | {a('rv_ml_err')} | {a('lv_mass_err')} | {t} |")
    out += ["", "Median time per step (s): " + "; ".join(
        f"{k}: " + ", ".join(f"{s} {statistics.median([d[s] for d in steps[k]]):.1f}"
                             for s in ("affine", "selection", "registration", "warping", "fusion")) for k in steps)]
    sys.stdout.write("\n".join(out) + "\n")


def scaling(args) -> None:
    """Median time per step of one refinement (5 selected, majority vote) against the size of
    the atlas set, on the first ``--patients`` validation patients' ED labels (manual, every
    other slice)."""
    import torch

    from napari_cardiac_priors.io.acdc import default_root, iter_patients
    from napari_cardiac_priors.landmarks import derive_from_labels
    from napari_cardiac_priors.registration.refine import refine
    from napari_cardiac_priors.registry.atlases import load_atlases
    from napari_cardiac_priors.training.recipes import ACDC_VALIDATION

    atlases = load_atlases("atlases-acdc")
    targets = []
    for p in iter_patients(default_root(), ids=ACDC_VALIDATION[: args.patients]):
        labels = every_other_slice(p.labels("ed"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            targets.append((labels, derive_from_labels(labels)))
    rows = []
    for n in (20, 40, 80, len(atlases)):
        steps = [refine(labels, lm, atlases[:n], n_atlases=5).timings for labels, lm in targets]
        med = {k: statistics.median(t[k] for t in steps) for k in steps[0]}
        rows.append(f"| {n} | " + " | ".join(f"{med[k]:.1f}" for k in ("selection", "registration", "warping", "fusion", "total")) + " |")
    sys.stdout.write(f"# bench_refine_real.py --scaling, {time.strftime('%Y-%m-%d')}, {platform.machine()}, "
                     f"{os.cpu_count()} CPU cores, torch {torch.__version__}, {torch.get_num_threads()} threads\n\n"
                     "| atlases in the set | selection | registration | warping | fusion | total (s, median) |\n"
                     "|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
