"""Figures of the refinement issue (SSLLN section III-F, Table III and Fig. 12), speed, memory.

Run: ``.venv/bin/python benchmarks/bench_refine.py [--subjects 30] [--speed 10] [--sitk 3]``.
Held-out phantom subjects (seeds 9900+, never used for training, validation or atlases):
LR stacks simulated from the HR truth (10 mm, shifted and missing slices), segmented by
``sslln-lr-phantom`` (labels and landmarks), then refined with ``atlases-phantom``. Dice and
HD95 (3D, mm) per class against the HR truth on the HR grid. Prints Markdown.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import time
import warnings

import numpy as np

SEED0 = 9900
STRUCTS = ("LV", "MYO", "RV")


def _cases(n):
    from napari_cardiac_priors.inference import load_model, segment
    from napari_cardiac_priors.phantom import PATHOLOGIES, make_subject

    model = load_model("sslln-lr-phantom")
    for i in range(n):
        ph = make_subject(SEED0 + i, pathology=PATHOLOGIES[i % 5], lr=True)["ed"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            seg = segment(ph.lr_image, model)
        yield ph, seg


def _score(pred, ph):
    from napari_cardiac_priors.metrics import evaluate_labels
    from napari_cardiac_priors.volume import resample

    return evaluate_labels(resample(pred, ph.labels).array, ph.labels.array, ph.labels.spacing, structures=[1, 2, 3])


def _row(name, scores):
    cells = []
    for k in STRUCTS:
        d = np.array([s[k]["dice"] for s in scores])
        h = np.array([s[k]["hd95"] for s in scores])
        cells.append(f"{np.nanmean(d):.3f} ± {np.nanstd(d):.3f} | {np.nanmean(h):.1f} ± {np.nanstd(h):.1f}")
    return f"| {name} | " + " | ".join(cells) + " |"


def _perturb(landmarks, mm, rng):
    from napari_cardiac_priors.landmarks import Landmarks

    d = rng.normal(size=landmarks.positions.shape)
    d *= mm / np.linalg.norm(d, axis=1, keepdims=True)
    return Landmarks(landmarks.positions + d, landmarks.confidence, landmarks.source)


def accuracy(n, atlases, n_variants):
    from napari_cardiac_priors.registration.refine import refine

    rng = np.random.default_rng(0)
    runs = {k: [] for k in ("unrefined (LR segmentation upsampled)", "refined, majority vote", "refined, patch fusion",
                            "refined (majority), label-based affine", "refined (majority), landmarks + 5 mm",
                            "refined (majority), landmarks + 10 mm")}
    missing = 0
    for i, (ph, seg) in enumerate(_cases(n)):
        runs["unrefined (LR segmentation upsampled)"].append(_score(seg.labels, ph))
        lm = seg.landmarks
        if lm.valid.sum() < 4:
            missing += 1
            continue
        runs["refined, majority vote"].append(_score(refine(seg.labels, lm, atlases, fusion="majority").labels, ph))
        runs["refined, patch fusion"].append(_score(refine(seg.labels, lm, atlases, fusion="patch").labels, ph))
        if i >= n_variants:
            continue
        runs["refined (majority), label-based affine"].append(_score(refine(seg.labels, lm, atlases, init="labels").labels, ph))
        for mm in (5, 10):
            runs[f"refined (majority), landmarks + {mm} mm"].append(
                _score(refine(seg.labels, _perturb(lm, mm, rng), atlases).labels, ph))
    head = ("| method | Dice LV | HD95 LV (mm) | Dice MYO | HD95 MYO | Dice RV | HD95 RV |\n"
            "|---|---|---|---|---|---|---|")
    rows = [_row(k, v) for k, v in runs.items() if v]
    return head + "\n" + "\n".join(rows), missing


def speed(n, atlases):
    from napari_cardiac_priors.registration.refine import refine

    per_step = {}
    totals = []
    for ph, seg in _cases(n):
        r = refine(seg.labels, seg.landmarks, atlases, fusion="majority")
        totals.append(r.timings["total"])
        for k, v in r.timings.items():
            per_step.setdefault(k, []).append(v)
        r = refine(seg.labels, seg.landmarks, atlases, fusion="patch")
        per_step.setdefault("fusion (patch)", []).append(r.timings["fusion"])
    rows = [f"| {k} | {statistics.median(v):.2f} s |" for k, v in per_step.items() if k != "total"]
    rows.append(f"| **total (majority vote)** | **{statistics.median(totals):.1f} s** |")
    return "| step (5 atlases) | median |\n|---|---|\n" + "\n".join(rows), statistics.median(totals)


def sitk_refine(labels, landmarks, atlases, chosen, reference):
    """The same pipeline with SimpleITK: landmark affine, B-spline registration of label maps
    (mean squares on 20 % random samples, L-BFGS-B, 30 iterations, 2 levels), nearest
    resampling onto the HR grid, label voting."""
    import SimpleITK as sitk

    def to_sitk(vol, dtype=np.float32):
        img = sitk.GetImageFromArray(vol.array.astype(dtype))
        lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ vol.affine
        sz, sy, sx = vol.spacing
        img.SetSpacing((sx, sy, sz))
        img.SetDirection(tuple((lps[:3, :3] / np.array([sx, sy, sz])).ravel()))
        img.SetOrigin(tuple(lps[:3, 3]))
        return img

    def lps(points):
        return list((points * np.array([-1.0, -1.0, 1.0])).ravel())

    fixed = to_sitk(labels)
    ref = to_sitk(reference, np.uint8)
    warped = []
    for i in chosen:
        atlas = atlases[i]
        ok = atlas.landmarks.valid & landmarks.valid
        init = sitk.LandmarkBasedTransformInitializer(
            sitk.AffineTransform(3), lps(landmarks.positions[ok]), lps(atlas.landmarks.positions[ok]))
        moving = to_sitk(atlas.labels)
        mesh = [max(1, int(round(sz * sp / 20.0))) for sz, sp in zip(fixed.GetSize(), fixed.GetSpacing())]
        bspline = sitk.BSplineTransformInitializer(fixed, mesh)
        reg = sitk.ImageRegistrationMethod()
        reg.SetMetricAsMeanSquares()
        reg.SetMetricSamplingStrategy(reg.RANDOM)
        reg.SetMetricSamplingPercentage(0.2, seed=0)
        reg.SetInterpolator(sitk.sitkLinear)
        reg.SetOptimizerAsLBFGSB(gradientConvergenceTolerance=1e-5, numberOfIterations=30)
        reg.SetShrinkFactorsPerLevel([2, 1])
        reg.SetSmoothingSigmasPerLevel([1, 0])
        reg.SetMovingInitialTransform(init)
        reg.SetInitialTransform(bspline, inPlace=True)
        reg.Execute(fixed, moving)
        composite = sitk.CompositeTransform([init, bspline])
        out = sitk.Resample(to_sitk(atlas.labels, np.uint8), ref, composite, sitk.sitkNearestNeighbor, 0)
        warped.append(out)
    voted = sitk.LabelVoting(warped, 0)
    return sitk.GetArrayFromImage(voted)


def sitk_comparison(n, atlases):
    from napari_cardiac_priors.registration.affine import landmark_affine
    from napari_cardiac_priors.registration.refine import hr_grid, refine
    from napari_cardiac_priors.registration.select import select_atlases
    from napari_cardiac_priors.volume import Volume

    ours_t, sitk_t, ours_s, sitk_s = [], [], [], []
    for ph, seg in _cases(n):
        t = time.perf_counter()
        r = refine(seg.labels, seg.landmarks, atlases, fusion="majority")
        ours_t.append(time.perf_counter() - t)
        ours_s.append(_score(r.labels, ph))
        affines = [landmark_affine(a.landmarks, seg.landmarks) for a in atlases]
        chosen, _ = select_atlases(seg.labels, [a.labels for a in atlases], affines, top=5)
        affine, shape = hr_grid(seg.labels)
        reference = Volume(np.zeros(shape, np.uint8), affine=affine, kind="labels")
        t = time.perf_counter()
        fused = sitk_refine(seg.labels, seg.landmarks, atlases, [int(i) for i in chosen], reference)
        sitk_t.append(time.perf_counter() - t)
        sitk_s.append(_score(reference.with_array(fused.astype(np.uint8)), ph))
    ratio = statistics.median(sitk_t) / statistics.median(ours_t)
    head = "| pipeline | median time | " + " | ".join(f"Dice {k}" for k in STRUCTS) + " |\n|---|---|---|---|---|"
    rows = [f"| this package (torch, CPU) | {statistics.median(ours_t):.1f} s | " + " | ".join(f"{np.mean([s[k]['dice'] for s in ours_s]):.3f}" for k in STRUCTS) + " |",
            f"| SimpleITK baseline | {statistics.median(sitk_t):.1f} s | " + " | ".join(f"{np.mean([s[k]['dice'] for s in sitk_s]):.3f}" for k in STRUCTS) + " |"]
    return head + "\n" + "\n".join(rows) + f"\n\nSimpleITK / this package time ratio: {ratio:.1f}x", ratio


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--subjects", type=int, default=30)
    ap.add_argument("--variants", type=int, default=10, help="subjects for the initialisation variants (Fig. 12)")
    ap.add_argument("--speed", type=int, default=10)
    ap.add_argument("--sitk", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="torch and SimpleITK threads")
    args = ap.parse_args()
    import SimpleITK as sitk
    import torch

    from napari_cardiac_priors.registry.atlases import load_atlases

    torch.set_num_threads(args.threads)
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(args.threads)
    atlases = load_atlases("atlases-phantom")
    print(f"# bench_refine.py, {time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} CPU cores, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    table, missing = accuracy(args.subjects, atlases, args.variants)
    print(f"## Accuracy on {args.subjects} held-out phantoms (ED), against the HR truth "
          f"(initialisation variants on the first {args.variants})\n")
    print(table)
    if missing:
        print(f"\n{missing} subject(s) had fewer than 4 landmarks and were not refined.")
    print(f"\n## Speed, median over {args.speed} subjects (5 atlases of 20, sslln-lr-phantom targets)\n")
    table, total = speed(args.speed, atlases)
    print(table)
    print(f"\nThe paper reports 15-20 min per subject for this stage: {15 * 60 / total:.0f}-{20 * 60 / total:.0f}x faster.")
    if args.sitk:
        print(f"\n## SimpleITK baseline of the same pipeline ({args.sitk} subjects, same atlases and selection)\n")
        print(sitk_comparison(args.sitk, atlases)[0])
    print(f"\nPeak RSS of the benchmark process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
