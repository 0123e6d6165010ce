"""Figures of the ACNN issue: Table I and III analogues on held-out phantoms, ACDC ACNN-Seg vs
U-Net with implausible-result counts, pathology classification from codes, code histograms.

Run: ``.venv/bin/python benchmarks/bench_acnn.py [--phantoms 10] [--parts tableI,stress,tableIII,srtime,acdc,classify,hist,conv3d,tlfit,tlorder]
[--runs training_runs/A,training_runs/B]``.
Models come from the registry (bundled, or installed with ``cardiac-priors models add``); a
part whose models are missing says so and is skipped. ``--runs`` adds the segmentation
networks of unbundled training runs (folders with ``model.safetensors`` and
``manifest_entry.json``, an ablation say) as extra rows of ``tableI`` and ``stress`` (T-L runs: of ``tlorder``). Held-out phantoms: seeds 9300+ (never
in a recipe). Distances are 3D in mm on the HR grid.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import warnings

import numpy as np

HELD_OUT = 9300


def _have(*names):
    from napari_cardiac_priors.registry import list_models

    have = {e.name for e in list_models()}
    missing = [n for n in names if n not in have]
    if missing:
        print(f"(skipped: model(s) {', '.join(missing)} not installed)\n")
    return not missing


def _pairs(n):
    from napari_cardiac_priors.training.pairs import phantom_pairs

    return phantom_pairs(range(HELD_OUT, HELD_OUT + n))


def _ms(values):
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    return f"{v.mean():.3f} ± {v.std():.3f}" if v.size else "n/a"


def _predict(model, lr):
    import torch

    with torch.inference_mode():
        return model.network(torch.from_numpy(np.ascontiguousarray(lr))[None, None])[0].float().numpy()


def _segmenters(names, runs):
    """``{label: model}``: registry models by name, then the training runs of ``runs`` (their
    networks in the shape of a loaded model: ``.network``)."""
    from pathlib import Path
    from types import SimpleNamespace

    from napari_cardiac_priors.inference import load_model
    from napari_cardiac_priors.training.runs import load_run_network

    out = {name: load_model(name) for name in names}
    out.update({f"run {Path(r).name}": SimpleNamespace(network=load_run_network(r)) for r in runs})
    return out


def table_one(n, runs=()):
    from napari_cardiac_priors.inference import keep_largest_component
    from napari_cardiac_priors.metrics import evaluate_labels

    names = ["seg3d-nomotion-phantom", "seg3d-phantom", "acnn-seg-phantom", "tl-phantom"]
    if not _have(*names):
        return
    pairs = _pairs(n)
    rows, rows_post = {}, {}
    for name, model in _segmenters(names, runs).items():
        scores = {k: [] for k in ("LV dice", "LV hd95", "LV msd", "LV hd", "MYO dice", "MYO hd95", "MYO msd", "MYO hd")}
        post = {k: [] for k in scores}  # the same after segment()'s default largest-component step
        for p in pairs:
            lr = p.test_stack()
            if name == "tl-phantom":  # T-L only: LR stack linearly upsampled -> predictor -> decoder
                import torch

                from napari_cardiac_priors.training.tasks import _pad_spec

                x = torch.nn.functional.interpolate(torch.from_numpy(lr)[None, None], size=p.hr_labels.shape,
                                                    mode="trilinear", align_corners=False)
                x = torch.nn.functional.pad(x, _pad_spec(x.shape[2:], model.network.predictor.shape))
                with torch.inference_mode():
                    seg = model.network.autoencoder.decode(model.network.predictor(x)).argmax(1)[0].numpy()
                seg = seg[: p.hr_labels.shape[0], : p.hr_labels.shape[1], : p.hr_labels.shape[2]]
            else:
                seg = _predict(model, lr).argmax(0)
            for target, labels in ((scores, seg), (post, keep_largest_component(seg.astype(np.uint8)))):
                ev = evaluate_labels(labels, p.hr_labels, p.hr_volume.spacing, structures=[1, 2])
                for s in ("LV", "MYO"):
                    for metric in ("dice", "hd95", "msd", "hd"):
                        target[f"{s} {metric}"].append(ev[s][metric])
        rows[name] = scores
        rows_post[name] = post
    for title, table in (("network output", rows), ("after the largest-component step of segment()", rows_post)):
        print(f"### Table I analogue ({title}): {n} held-out phantoms x ED/ES, LR stacks with breath-hold motion -> HR labels\n")
        print("| model | Dice LV | HD95 LV (mm) | MSD LV (mm) | Dice MYO | HD95 MYO (mm) | MSD MYO (mm) |\n|---|---|---|---|---|---|---|")
        for name, sc in table.items():
            print(f"| {_LABEL.get(name, name)} | " + " | ".join(_ms(sc[k]) for k in ("LV dice", "LV hd95", "LV msd", "MYO dice", "MYO hd95", "MYO msd")) + " |")
        print()
    _paired(rows, "seg3d-phantom", n)


def _paired(rows, baseline, n):
    """Each model minus ``baseline`` per stack (the same stacks): mean ± sd of the difference, on
    how many stacks the model was better (higher Dice, lower distance) and the two-sided Wilcoxon
    signed-rank p (the paper's test). HD is the Hausdorff distance (the paper's Table I), HD95
    its 95th percentile."""
    from scipy.stats import wilcoxon

    others = [k for k in rows if k not in (baseline, "tl-phantom")]
    if baseline not in rows or not others:
        return
    print(f"Paired against {_LABEL[baseline]} (network output, the same {2 * n} stacks): mean ± sd of the "
          "per-stack difference (the model minus the baseline), the stacks on which the model is better, "
          "Wilcoxon signed-rank p\n")
    keys = ("LV dice", "LV hd95", "LV hd", "MYO dice", "MYO hd95", "MYO hd")
    unit = {"dice": "Dice", "hd95": "HD95 (mm)", "hd": "HD (mm)"}
    print("| model | " + " | ".join(f"{k.split()[0]} {unit[k.split()[1]]}" for k in keys) + " |")
    print("|---|" + "---|" * len(keys))
    for name in others:
        cells = []
        for k in keys:
            a, b = np.asarray(rows[name][k], float), np.asarray(rows[baseline][k], float)
            d = a - b
            better = int(np.sum(d > 0)) if "dice" in k else int(np.sum(d < 0))
            p = wilcoxon(a, b).pvalue if np.any(d) and np.all(np.isfinite(d)) else float("nan")
            cells.append(f"{d.mean():+.3f} ± {d.std():.3f} ({better} of {d.size}, p {p:.2g})")
        print(f"| {_LABEL.get(name, name)} | " + " | ".join(cells) + " |")
    print()


_LABEL = {"seg3d-nomotion-phantom": "3D-Seg", "seg3d-phantom": "3D-Seg + motion augmentation",
          "acnn-seg-phantom": "ACNN-Seg (T-L prior)", "tl-phantom": "T-L only (predictor -> decoder)"}
STRESS = (("no motion", 0.0, 0), ("breath-hold motion as trained (x1)", 1.0, 0), ("motion x2", 2.0, 0),
          ("motion x3", 3.0, 0), ("motion x1 + 1 zero-filled slice", 1.0, 1),
          ("motion x1 + 2 zero-filled slices", 1.0, 2))


def stress(n, runs=()):
    """ACNN-Seg against 3D-Seg on inputs harder than their training: the held-out stacks with the
    phantom's own breath-hold shifts scaled (x0 to x3; training drew shifts of sd 2 mm, at most
    5 mm) and with one or two interior LR slices set to zero (seen in training only by runs with
    ``zero_slices_p``). Network output, no post-processing: mean Dice and HD95 per structure, and
    the count of stacks whose HD95 exceeds 10 mm (a stray island or a broken shape)."""
    from napari_cardiac_priors.metrics import evaluate_labels
    from napari_cardiac_priors.training.pairs import apply_motion, zero_slices

    names = ["seg3d-nomotion-phantom", "seg3d-phantom", "acnn-seg-phantom"]
    if not _have(*names):
        return
    pairs = _pairs(n)
    models = _segmenters(names, runs)
    rng = np.random.default_rng(HELD_OUT)
    zero = [sorted(rng.choice(np.arange(1, p.lr_image.shape[0] - 1), size=2, replace=False)) for p in pairs]
    print(f"### ACNN-Seg under harder inputs than trained: {n} held-out phantoms x ED/ES, network output\n")
    print("| input | model | Dice LV | HD95 LV (mm) | Dice MYO | HD95 MYO (mm) | stacks with HD95 > 10 mm (LV / MYO) |")
    print("|---|---|---|---|---|---|---|")
    for what, scale, n_zero in STRESS:
        stacks = []
        for p, z in zip(pairs, zero):
            lr = p.lr_image if p.motion_px is None or scale == 0 else apply_motion(p.lr_image, scale * p.motion_px)
            if n_zero:
                lr = zero_slices(lr, z[:n_zero])
            stacks.append(lr)
        for name, model in models.items():
            sc = {k: [] for k in ("LV dice", "LV hd95", "MYO dice", "MYO hd95")}
            for p, lr in zip(pairs, stacks):
                ev = evaluate_labels(_predict(model, lr).argmax(0), p.hr_labels, p.hr_volume.spacing, structures=[1, 2])
                for s in ("LV", "MYO"):
                    for metric in ("dice", "hd95"):
                        sc[f"{s} {metric}"].append(ev[s][metric])
            bad = " / ".join(str(int(np.sum(~(np.asarray(sc[f"{s} hd95"], float) <= 10.0)))) for s in ("LV", "MYO"))
            print(f"| {what} | {_LABEL.get(name, name)} | " + " | ".join(_ms(sc[k]) for k in sc) + f" | {bad} |", flush=True)
    print()


def _ssim(a, b):
    from skimage.metrics import structural_similarity

    return float(structural_similarity(a, b, data_range=1.0))


def _bspline(lr, shape):
    """Cubic B-spline through-plane upsampling with SimpleITK onto the LR-aligned HR grid."""
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(lr.astype(np.float32))
    img.SetSpacing((1.0, 1.0, 5.0))
    ref = sitk.Image(shape[2], shape[1], shape[0], sitk.sitkFloat32)
    ref.SetSpacing((1.0, 1.0, 1.0))
    ref.SetOrigin((0.0, 0.0, -2.0))  # HR slice 5k+2 on LR slice k
    return sitk.GetArrayFromImage(sitk.Resample(img, ref, sitk.Transform(), sitk.sitkBSpline, 0.0))


def table_three(n):
    import torch

    from napari_cardiac_priors.inference import load_model

    if not _have("sr-phantom", "acnn-sr-phantom"):
        return
    pairs = _pairs(n)
    res = {k: [] for k in ("linear", "B-spline (SimpleITK)", "SR without prior (sr-phantom)", "ACNN-SR (acnn-sr-phantom)")}
    models = {"SR without prior (sr-phantom)": load_model("sr-phantom"), "ACNN-SR (acnn-sr-phantom)": load_model("acnn-sr-phantom")}
    for p in pairs:
        lr = p.test_stack()
        lin = torch.nn.functional.interpolate(torch.from_numpy(lr)[None, None], size=p.hr_image.shape, mode="trilinear",
                                              align_corners=False)[0, 0].numpy()
        res["linear"].append(_ssim(np.clip(lin, 0, 1), p.hr_image))
        res["B-spline (SimpleITK)"].append(_ssim(np.clip(_bspline(lr, p.hr_image.shape), 0, 1), p.hr_image))
        for k, m in models.items():
            res[k].append(_ssim(np.clip(_predict(m, lr)[0], 0, 1), p.hr_image))
    print(f"### Table III analogue: SSIM against the HR truth, {n} held-out phantoms x ED/ES (LR stacks with motion)\n")
    print("| method | SSIM |\n|---|---|")
    for k, v in res.items():
        print(f"| {k} | {_ms(v)} |")
    print()


def sr_timing():
    """ACNN-SR network time per 12 x 120 x 120 stack (median of 10 after one warm-up call), with the
    linear and B-spline upsampling of the same stack measured in the same run as baselines."""
    import torch

    from napari_cardiac_priors.inference import load_model

    if not _have("acnn-sr-phantom"):
        return
    m = load_model("acnn-sr-phantom")
    stack = np.random.default_rng(0).random((12, 120, 120)).astype(np.float32)
    hr_shape = (60, 120, 120)
    methods = {
        "ACNN-SR network": lambda: _predict(m, stack),
        "linear (torch trilinear)": lambda: torch.nn.functional.interpolate(
            torch.from_numpy(stack)[None, None], size=hr_shape, mode="trilinear", align_corners=False),
        "B-spline (SimpleITK)": lambda: _bspline(stack, hr_shape),
    }
    print(f"### ACNN-SR inference time per 12 x 120 x 120 stack ({torch.get_num_threads()} threads)\n")
    print("| method | median of 10 (s) | first call (s) | ratio to ACNN-SR |\n|---|---|---|---|")
    medians = {}
    for name, fn in methods.items():
        times = []
        for _ in range(11):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        medians[name] = (statistics.median(times[1:]), times[0])
    ref = medians["ACNN-SR network"][0]
    for name, (med, first) in medians.items():
        print(f"| {name} | {med:.3f} | {first:.3f} | {med / ref:.2f} |")
    print()


def acdc_table():
    from napari_cardiac_priors.inference import load_model, segment
    from napari_cardiac_priors.io.acdc import default_root, iter_patients
    from napari_cardiac_priors.metrics import anatomy_errors, evaluate_labels
    from napari_cardiac_priors.training.recipes import ACDC_VALIDATION

    if not _have("unet-acdc", "acnn-seg-acdc"):
        return
    print("### ACDC held-out patients (20 x ED/ES): U-Net with and without the T-L prior\n")
    print("| model | Dice LV | Dice MYO | Dice RV | HD95 LV / MYO / RV (mm) | results with implausible errors |\n|---|---|---|---|---|---|")
    for name in ("unet-acdc", "acnn-seg-acdc"):
        model = load_model(name)
        d = {s: [] for s in ("LV", "MYO", "RV")}
        h = {s: [] for s in ("LV", "MYO", "RV")}
        bad = 0
        for p in iter_patients(default_root(), ids=ACDC_VALIDATION):
            for ph in ("ed", "es"):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    seg = segment(p.image(ph), model, postprocess=False).labels
                gt = p.labels(ph)
                ev = evaluate_labels(seg.array, gt.array, gt.spacing, structures=[1, 2, 3])
                for s in d:
                    d[s].append(ev[s]["dice"])
                    h[s].append(ev[s]["hd95"])
                bad += bool(anatomy_errors(seg.array))
        print(f"| {name} | {_ms(d['LV'])} | {_ms(d['MYO'])} | {_ms(d['RV'])} | "
              f"{np.nanmean(h['LV']):.1f} / {np.nanmean(h['MYO']):.1f} / {np.nanmean(h['RV']):.1f} | {bad} of 40 |")
    print("\n(no largest-component post-processing here, so that the count shows what the networks produce)\n")


def classification(repeats=5):
    from napari_cardiac_priors.classify import PCAFeatures, cross_validate, read_shapes, restrict, tl_features
    from napari_cardiac_priors.io.acdc import default_root

    if not _have("tl-acdc"):
        return
    print(f"### Pathology classification (stratified 10-fold CV on the 100 ACDC patients' manual labels, random "
          f"forest; mean ± sd over {repeats} repeats with other fold splits, then the first split alone)\n")
    print("| features | phases | NOR/DCM/HCM | all 5 groups | all 5 groups, first split |\n|---|---|---|---|---|")
    from napari_cardiac_priors.registry import get_model

    shapes = {ph: read_shapes(default_root(), phases=ph) for ph in (("ed",), ("ed", "es"))}
    rows = [("pca", ("ed",)), ("pca", ("ed", "es")), ("tl", ("ed",)), ("tl", ("ed", "es")), ("tl+change", ("ed", "es"))]
    name = {"pca": "PCA, 64 components", "tl": "T-L codes (tl-acdc)", "tl+change": "T-L codes + ES - ED code change",
            "pca-own": "PCA, 64 components, the stacks' own axes"}
    contract = get_model("tl-acdc").input
    if contract.get("pose"):  # the same features without the pose: what the pose brings
        name["pca"] += f" ({contract['pose']} pose)"
        own = {ph: read_shapes(default_root(), phases=ph, contract={**contract, "pose": None}) for ph in (("ed", "es"),)}
        rows.insert(2, ("pca-own", ("ed", "es")))
    confusions = {}
    for feat, ph in rows:
        cells = []
        for groups in (["NOR", "DCM", "HCM"], None):
            source = own if feat == "pca-own" else shapes
            sub = restrict(source[ph], groups) if groups else source[ph]
            x = PCAFeatures(64).fit_transform(sub) if feat.startswith("pca") else tl_features(sub)
            if feat == "tl+change":  # ED codes, ES codes, ES - ED: a forest splits on one feature at a time
                x = np.concatenate([x, x[:, x.shape[1] // 2 :] - x[:, : x.shape[1] // 2]], axis=1)
            result = cross_validate(x, sub.groups, repeats=repeats)
            acc = 100 * np.asarray(result["accuracies"])
            cells.append(f"{acc.mean():.1f} ± {acc.std():.1f} %")
            if groups is None:
                cells.append(f"{acc[0]:.1f} %")
                if len(ph) == 2:
                    confusions[feat] = result["confusion"]
        print(f"| {name[feat]} | {'+'.join(p.upper() for p in ph)} | " + " | ".join(cells) + " |", flush=True)
    print("\n(PCA is fitted on all patients before the folds, the T-L model was trained on the 80 training "
          "patients: both see the validation shapes' distribution, neither sees the groups)\n")
    for feat, confusion in confusions.items():  # rows: the true group, columns: the predicted one
        names = list(confusion)
        print(f"Confusion, all 5 groups, ED+ES, {name[feat]}, summed over the {repeats} repeats (rows: true, columns: predicted)\n")
        print("| | " + " | ".join(names) + " |\n|---|" + "---|" * len(names))
        for t in names:
            print(f"| {t} | " + " | ".join(str(confusion[t][p]) for p in names) + " |")
        print()


def tl_fit(n_phantom_subjects=20):
    """Why the shape models fall short: the autoencoder's reconstruction Dice on its own training
    cases against the held-out validation cases (under-fitting if both are low, over-fitting if
    training is far above validation). The recipe's own validation function scores both."""
    import torch

    from napari_cardiac_priors.inference import load_model
    from napari_cardiac_priors.registry import get_model
    from napari_cardiac_priors.training.recipes import get_recipe
    from napari_cardiac_priors.training.tasks import make_task

    print("### Shape models: reconstruction on the training cases against held-out cases\n")
    print("| model | cases | AE reconstruction Dice per structure | T-L only (predictor -> decoder) |\n|---|---|---|---|")
    for name in ("tl-acdc", "tl-phantom"):
        if not _have(name):
            continue
        recipe = get_recipe(get_model(name).training["recipe"])
        task = make_task(recipe)
        net = load_model(name).network.float()
        train_ids = recipe.train_ids if recipe.data == "acdc" else recipe.train_ids[:n_phantom_subjects]
        for what, ids, training in (("training", train_ids, True), ("validation", recipe.val_ids, False)):
            items = task.load(ids, training=training)
            with torch.inference_mode():
                val = task.validate(net, items)
            fmt = lambda v: " / ".join(f"{x:.3f}" for x in v)  # noqa: E731
            print(f"| {name} | {what} ({len(items)}) | {fmt(val['ae_dice'])} | {fmt(val['tl_dice'])} |")
    print()
    if _have("tl-acdc"):
        linear_ceiling()


def linear_ceiling(sizes=(16, 32, 64, 128)):
    """What a linear code of the ACDC training shapes can carry to held-out shapes: PCA with
    ``k`` components fitted to the one-hot maps of the tl-acdc training cases (on its grid),
    each held-out map projected and decoded by the largest class; and the held-out Dice of the
    training shape that overlaps each held-out case best (an oracle: how near the training set
    comes to a new heart). A non-linear decoder should beat the first; neither limit is learnt.
    Both on the stacks' own axes and on the heart's (``pose: lv-rv``)."""
    from dataclasses import replace

    from napari_cardiac_priors.registry import get_model
    from napari_cardiac_priors.training.recipes import get_recipe
    from napari_cardiac_priors.training.tasks import make_task

    recipe = get_recipe(get_model("tl-acdc").training["recipe"])
    print("### A linear code of the training shapes (PCA) and the nearest training shape, held-out ACDC\n")
    print("| grid | code | training cases | held-out cases |\n|---|---|---|---|")
    for pose in (None, "lv-rv"):
        grid = f"heart's axes ({pose})" if pose else "the stacks' own axes"
        _linear_ceiling(make_task(replace(recipe, input={**recipe.input, "pose": pose})), grid, sizes)
    print()


def _linear_ceiling(task, grid, sizes):
    from napari_cardiac_priors.training.tasks.base import _dice_per_class

    recipe = task.recipe
    classes = range(1, recipe.config["n_classes"])
    flat = lambda items: np.stack([np.stack([lab == c for c in classes]).ravel() for lab, _ in items]).astype(np.float32)  # noqa: E731
    train_items, val_items = task.load(recipe.train_ids), task.load(recipe.val_ids)
    x, y = flat(train_items), flat(val_items)
    mean = x.mean(0)
    gram = (x - mean) @ (x - mean).T  # (n, n): the principal axes from the small side
    w, v = np.linalg.eigh(gram)
    order = np.argsort(w)[::-1]
    axes = ((x - mean).T @ v[:, order]) / np.sqrt(np.maximum(w[order], 1e-12))  # (features, n), unit columns
    shape = train_items[0][0].shape

    def decode(row):
        prob = row.reshape(len(classes), *shape)
        return np.where(prob.max(0) > 1 - prob.sum(0), prob.argmax(0) + 1, 0)

    fmt = lambda v: " / ".join(f"{x:.3f}" for x in np.mean(v, axis=0))  # noqa: E731
    for k in sizes:
        if k >= len(x):
            continue
        a = axes[:, :k]
        rec = lambda m, items: [_dice_per_class(decode(mean + (r - mean) @ a @ a.T), lab, classes)  # noqa: E731
                                for r, (lab, _) in zip(m, items)]
        print(f"| {grid} | PCA {k} | {fmt(rec(x, train_items))} | {fmt(rec(y, val_items))} |")
    overlap = y @ x.T  # (held-out, training): the best-overlapping training shape per held-out case
    nearest = [_dice_per_class(train_items[int(np.argmax(o / (x.sum(1) + yi.sum())))][0], lab, classes)
               for o, yi, (lab, _) in zip(overlap, y, val_items)]
    print(f"| {grid} | nearest training shape | - | {fmt(nearest)} |", flush=True)


def tl_order(runs=()):
    """How far a T-L code moves when the same held-out ACDC label map is stored in another voxel
    order (the same heart in the world: mirrored, slices reversed, rows and columns swapped),
    in units of the spread of the training codes (the norm of their per-dimension std): the
    shipped ``tl-acdc`` and any T-L training run folders in ``runs`` (an older version, say)."""
    from pathlib import Path
    from types import SimpleNamespace

    from napari_cardiac_priors.inference import load_model
    from napari_cardiac_priors.io.acdc import default_root, iter_patients
    from napari_cardiac_priors.latent import tl_codes, tl_grid_labels
    from napari_cardiac_priors.training.recipes import ACDC_VALIDATION
    from napari_cardiac_priors.training.runs import load_run_network, run_entry
    from napari_cardiac_priors.volume import restored

    orders = {"x mirrored": dict(flip=("x",)), "slices reversed": dict(flip=("z",)), "x and y swapped": dict(swap_xy=True)}
    labels = [p.labels(ph) for p in iter_patients(default_root(), ids=ACDC_VALIDATION) for ph in ("ed", "es")]
    print("### T-L codes of a stack stored in another voxel order (held-out ACDC, ED + ES)\n")
    print("| model | pose | " + " | ".join(f"{k}: median (max)" for k in orders) + " |\n|---|---|" + "---|" * len(orders))
    for name in ["tl-acdc", *[r for r in runs if Path(r, "manifest_entry.json").is_file()
                              and run_entry(r).get("architecture") == "tl"]]:
        if Path(name).is_dir():  # a run folder: its network, read as tl_codes reads a loaded model
            model = SimpleNamespace(network=load_run_network(name), device="cpu")
            contract, version = run_entry(name)["input"], run_entry(name)["version"]
        else:
            model = load_model(name)
            contract, version = model.entry.input, model.entry.version
        codes = lambda vols: tl_codes(model, np.stack([tl_grid_labels(v, contract).array for v in vols]))  # noqa: E731
        spread = float(np.linalg.norm(model.network.code_std.float().numpy()))
        ref = codes(labels)
        cells = []
        for kw in orders.values():
            d = np.linalg.norm(codes([restored(v, **kw) for v in labels]) - ref, axis=1) / spread
            cells.append(f"{np.median(d):.3f} ({d.max():.3f})")
        print(f"| {Path(name).name} {version} | {contract.get('pose') or 'own axes'} | " + " | ".join(cells) + " |", flush=True)
    print()


def histograms(out="docs/tl_code_histograms.png"):
    """Fig. 5: histograms of 16 code dimensions of tl-acdc over the ACDC label maps, as a PNG."""
    from napari_cardiac_priors.classify import read_shapes, tl_features
    from napari_cardiac_priors.io.acdc import default_root
    from napari_cardiac_priors.latent import save_png

    if not _have("tl-acdc"):
        return
    codes = tl_features(read_shapes(default_root(), phases=("ed", "es")))
    dims = np.random.default_rng(0).choice(codes.shape[1], 16, replace=False)
    ph, pw, bins = 90, 140, 20
    canvas = np.ones((4 * ph, 4 * pw), np.float32)
    for i, d in enumerate(dims):
        counts, _ = np.histogram(codes[:, d], bins=bins)
        r, c = divmod(i, 4)
        top = counts.max()
        for b, k in enumerate(counts):
            h = int(round((ph - 12) * k / top))
            x0 = c * pw + 6 + b * (pw - 12) // bins
            canvas[r * ph + ph - 6 - h : r * ph + ph - 6, x0 : x0 + (pw - 12) // bins - 1] = 0.25
        canvas[r * ph + ph - 6, c * pw + 4 : c * pw + pw - 4] = 0.0
    save_png(canvas, out)
    print(f"Histograms of 16 randomly chosen dimensions of the {len(codes)} patients' tl-acdc codes (ED and ES codes side by side, {codes.shape[1]} dimensions): `{out}`.\n")


def conv3d_speed():
    """Single-volume inference with the package's Conv3d (oneDNN) against torch.nn.Conv3d's own kernel choice."""
    import torch

    from napari_cardiac_priors.inference import load_model
    from napari_cardiac_priors.nn.layers import Conv3d

    cases = []
    for name in ("tl-acdc", "tl-phantom"):
        if _have(name):
            net = load_model(name).network.float().eval()
            z = torch.zeros(1, net.code_mean.numel())
            cases.append((f"{name} decoder (code -> {' x '.join(map(str, net.autoencoder.shape))} labels)", net,
                          lambda net=net, z=z: net.autoencoder.decode(z)))
    if _have("acnn-sr-phantom"):
        net = load_model("acnn-sr-phantom").network.float().eval()
        x = torch.rand(1, 1, 12, 120, 120)
        cases.append(("acnn-sr-phantom (12 x 120 x 120 stack -> 60 x 120 x 120)", net, lambda net=net, x=x: net(x)))
    print(f"### Single-volume 3D inference: the package's Conv3d (oneDNN) vs torch.nn.Conv3d ({torch.get_num_threads()} threads)\n")
    print("| network | torch.nn.Conv3d, median ms | nn.layers.Conv3d, median ms | speed-up |\n|---|---|---|---|")
    for what, net, run in cases:
        res = {}
        for cls in (torch.nn.Conv3d, Conv3d):
            for m in net.modules():
                if isinstance(m, torch.nn.Conv3d):
                    m.__class__ = cls
            times = []
            with torch.inference_mode():
                run()
                for _ in range(10):
                    t0 = time.perf_counter()
                    run()
                    times.append(1000 * (time.perf_counter() - t0))
            res[cls] = statistics.median(times)
        print(f"| {what} | {res[torch.nn.Conv3d]:.0f} | {res[Conv3d]:.0f} | {res[torch.nn.Conv3d] / res[Conv3d]:.1f}x |")
    print()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--phantoms", type=int, default=10)
    ap.add_argument("--parts", default="tableI,tableIII,srtime,acdc,classify,hist,conv3d")
    ap.add_argument("--runs", default="", help="training run folders (comma-separated) added to tableI and stress")
    args = ap.parse_args()
    runs = [r for r in args.runs.split(",") if r]
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, date {time.strftime('%Y-%m-%d')}\n")
    parts = set(args.parts.split(","))
    if "tableI" in parts:
        table_one(args.phantoms, runs)
    if "stress" in parts:
        stress(args.phantoms, runs)
    if "srtime" in parts:
        sr_timing()
    if "tableIII" in parts:
        table_three(args.phantoms)
    if "acdc" in parts:
        acdc_table()
    if "classify" in parts:
        classification()
    if "hist" in parts:
        histograms()
    if "tlfit" in parts:
        tl_fit()
    if "tlorder" in parts:
        tl_order(runs)
    if "conv3d" in parts:
        conv3d_speed()


if __name__ == "__main__":
    main()
