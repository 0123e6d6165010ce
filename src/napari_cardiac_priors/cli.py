"""The ``cardiac-priors`` command.

Every command exits 0 on success; bad input gives one line on stderr and exit status 2;
an unexpected failure gives one line and status 1. Outputs are written atomically.
"""

from __future__ import annotations

import argparse
import json
import logging
import warnings
import os
import sys
from pathlib import Path

from . import __version__
from .conventions import DEFAULT_MODEL
from .errors import InputError

EXIT_BAD_INPUT = 2
EXIT_FAILURE = 1


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, as for every other bad input
        raise InputError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="cardiac-priors", description="Cardiac MR analysis with anatomical priors.")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    models = sub.add_parser("models", help="list, inspect and install models and atlas sets")
    msub = models.add_subparsers(dest="models_command", required=True, parser_class=_Parser)
    m = msub.add_parser("list", help="list the installed models")
    m.add_argument("--json", action="store_true", help="print JSON")
    m = msub.add_parser("info", help="show one model's manifest entry")
    m.add_argument("name")
    m.add_argument("--json", action="store_true", help="print JSON")
    m = msub.add_parser("add", help="install a safetensors model into the user model folder")
    m.add_argument("weights", help=".safetensors file")
    m.add_argument("--manifest", required=True, help="JSON file with the manifest entry (name, version, task, ...)")
    m.add_argument("--overwrite", action="store_true", help="replace an installed user model of the same name")
    m = msub.add_parser("remove", help="remove a user model")
    m.add_argument("name")

    ph = sub.add_parser("phantom", help="generate phantom subjects (HR image, labels, landmarks; LR stacks)")
    ph.add_argument("out_dir")
    ph.add_argument("--n", type=int, default=1, help="number of subjects (default 1)")
    ph.add_argument("--seed", type=int, default=0, help="seed of the set (default 0)")
    ph.add_argument("--pathology", choices=["NOR", "DCM", "HCM", "MINF", "RV"],
                    help="one pathology for all subjects (default: cycle through all five)")
    ph.add_argument("--lr", action="store_true", help="also write the artefact-corrupted LR stacks")
    ph.add_argument("--overwrite", action="store_true", help="replace existing phantom files")

    sg = sub.add_parser("segment", help="segment short-axis stacks (labels and, for SSLLN models, landmarks)")
    sg.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or DICOM folders")
    sg.add_argument("--model", default=DEFAULT_MODEL,
                    help=f"model name (default {DEFAULT_MODEL}, for real scans; see `cardiac-priors models list`)")
    sg.add_argument("--tta", action="store_true", help="average the four in-plane mirrorings (slab models; slower)")
    sg.add_argument("--out", required=True, help="output folder")
    sg.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default auto)")
    sg.add_argument("--frame", type=int, help="frame of a cine (4D) input")
    sg.add_argument("--series", help="DICOM series UID, for a folder that holds several (default: the one with most slices)")
    sg.add_argument("--overwrite", action="store_true", help="replace existing outputs")

    en = sub.add_parser("enhance", help="super-resolve short-axis stacks with an SR model (ACNN-SR)")
    en.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or DICOM folders")
    en.add_argument("--model", required=True, help="super-resolution model name, e.g. acnn-sr-phantom")
    en.add_argument("--out", required=True, help="output folder")
    en.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default auto)")
    en.add_argument("--overwrite", action="store_true", help="replace existing outputs")

    la = sub.add_parser("latent", help="encode with a T-L or SDNet model: code, reconstruction and traversal grid")
    la.add_argument("inputs", nargs="+", metavar="INPUT",
                    help="label maps (T-L) or image stacks (SDNet, or T-L with --from-image)")
    la.add_argument("--model", required=True, help="T-L or SDNet model name, e.g. tl-acdc or sdnet-acdc")
    la.add_argument("--out", required=True, help="output folder")
    la.add_argument("--slice", type=int, help="SDNet: the slice to encode (default: the middle one)")
    la.add_argument("--from-image", action="store_true", help="T-L: encode an image through the model's predictor")
    la.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default auto)")
    la.add_argument("--overwrite", action="store_true", help="replace existing outputs")

    rf = sub.add_parser("refine", help="refine a segmentation into a smooth HR shape by atlas propagation")
    rf.add_argument("image", help="the target image (its grid must match --seg)")
    rf.add_argument("--seg", required=True, help="the target segmentation (canonical labels)")
    rf.add_argument("--landmarks", required=True, help="the target landmarks (.json, .csv or .vtk)")
    rf.add_argument("--out", required=True, help="output folder")
    rf.add_argument("--atlases", default="auto", help="atlas set name or folder (default auto: atlases-acdc, or "
                    "atlases-phantom for labels with an RV wall)")
    rf.add_argument("--n-atlases", type=int, default=5, help="atlases kept after NMI ranking (default 5)")
    rf.add_argument("--fusion", choices=["majority", "patch"], default="majority", help="label fusion (default majority)")
    rf.add_argument("--init", choices=["landmarks", "labels"], default="landmarks", help="affine initialisation")
    rf.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    rf.add_argument("--mesh", nargs="?", const="vtk", choices=["vtk", "stl", "ply"],
                    help="also write smooth surfaces of the refined labels (LV endocardium, LV epicardium, RV) as "
                         "DIR/<stem>_<surface>.vtk (or stl, ply), world RAS mm")
    rf.add_argument("--overwrite", action="store_true", help="replace existing outputs")

    at = sub.add_parser("atlases", help="build atlas sets for refinement")
    asub = at.add_subparsers(dest="atlases_command", required=True, parser_class=_Parser)
    ab = asub.add_parser("build", help="install an atlas set: HR images segmented by an SSLLN-HR model, or "
                         "(--from-labels) labelled stacks of any slice thickness")
    ab.add_argument("dir", help="folder of HR images, or with --from-labels of label maps (.nii, .nii.gz, .mha, .nrrd)")
    ab.add_argument("--from-labels", action="store_true", help="build from label maps (e.g. manual labels of cine "
                    "short-axis stacks): breath-hold shifts corrected, shape-based interpolation to the HR grid")
    ab.add_argument("--label-values", choices=["canonical", "acdc"], default="canonical",
                    help="with --from-labels: canonical (1 LV, 2 MYO, 3 RV) or acdc (1 RV, 2 MYO, 3 LV)")
    ab.add_argument("--model", default="sslln-hr-phantom", help="SSLLN-HR model (default sslln-hr-phantom)")
    ab.add_argument("--name", help="atlas set name (default: the folder name)")
    ab.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    ab.add_argument("--overwrite", action="store_true", help="replace an installed set of the same name")

    tr = sub.add_parser("train", help="train a model from a recipe (reproducible, resumable)")
    tr.add_argument("recipe", help="recipe name, e.g. sslln-acdc")
    tr.add_argument("--data", help="data folder (ACDC: the folder holding training/)")
    tr.add_argument("--out", help="output folder (default training_runs/RECIPE)")
    tr.add_argument("--epochs", type=int, help="number of epochs (default: the recipe's)")
    tr.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    tr.add_argument("--init", metavar="MODEL", help="continue from an installed model of the same recipe "
                    "(its weights and epoch count; for machines that kept no checkpoint)")
    tr.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")

    ev = sub.add_parser("evaluate", help="Dice, HD95 and surface distance of predictions against references")
    ev.add_argument("--pred", required=True, help="folder of predicted label maps (and landmark JSON)")
    ev.add_argument("--gt", required=True, help="folder of reference label maps (and landmark JSON)")
    ev.add_argument("--json", action="store_true", help="print JSON instead of a table")

    me = sub.add_parser("measure", help="volumes (mL), masses (g) and ejection fractions of label maps")
    me.add_argument("seg", nargs="+", help="label map files")
    me.add_argument("--csv", help="write the table to this CSV file")
    me.add_argument("--overwrite", action="store_true", help="replace an existing --csv file")

    cl = sub.add_parser("classify", help="pathology classification from T-L shape codes (or PCA) of ACDC-layout patients")
    cl.add_argument("--train", required=True, help="ACDC-layout folder of training patients (Group in Info.cfg)")
    cl.add_argument("--test", help="ACDC-layout folder of patients to predict")
    cl.add_argument("--features", choices=["tl", "pca"], default="tl", help="T-L codes or the PCA baseline (default tl)")
    cl.add_argument("--phases", choices=["ed", "ed+es"], default="ed+es", help="segmentations used (default ed+es)")
    cl.add_argument("--groups", help="restrict to these groups, comma-separated (e.g. NOR,DCM,HCM)")
    cl.add_argument("--shape-model", default="tl-acdc", help="T-L model (default tl-acdc; also the PCA grid)")
    cl.add_argument("--model", default=DEFAULT_MODEL, help=f"segmentation model for phases without manual labels (default {DEFAULT_MODEL})")
    cl.add_argument("--out", required=True, help="JSON file: predictions with --test, else the cross-validation report")
    cl.add_argument("--overwrite", action="store_true", help="replace an existing --out file")

    ba = sub.add_parser("batch", help="segment (and refine) a cohort on dask.distributed, resumable, with provenance")
    ba.add_argument("cohort", help="ACDC-layout folder, folder of images, or CSV (subject, ed[, es, ed_labels, es_labels, group])")
    ba.add_argument("--out", required=True, help="output folder (a rerun skips finished subjects)")
    ba.add_argument("--model", default=DEFAULT_MODEL, help=f"segmentation model name (default {DEFAULT_MODEL})")
    ba.add_argument("--refine", action="store_true", help="refine each segmentation by atlas propagation")
    ba.add_argument("--atlases", default="auto", help="atlas set name or folder (default auto: atlases-acdc, or "
                    "atlases-phantom for labels with an RV wall)")
    ba.add_argument("--n-atlases", type=int, default=5, help="atlases kept after NMI ranking (default 5)")
    ba.add_argument("--scheduler", help="address of a running dask scheduler (default: a local cluster)")
    ba.add_argument("--workers", type=int, help="local cluster worker processes (default: 2 or the CPU count if smaller)")
    ba.add_argument("--device", default="auto", help="auto, cpu, cuda or mps, on every worker (default auto, as every "
                    "other command: decided here, where the run starts)")
    ba.add_argument("--shape-model", help="T-L shape model for the plausibility column (e.g. tl-phantom)")

    de = sub.add_parser("demo", help="napari with the plugin and sample data, or a headless run of the pipeline")
    de.add_argument("--out", help="output folder of the headless demo (default: the user cache folder's "
                    "napari-cardiac-priors/demo, never the current folder)")
    de.add_argument("--headless", action="store_true", help="no viewer: run the pipeline and print a summary")
    return p


def main(argv=None) -> int:
    """Entry point of the ``cardiac-priors`` console script."""
    try:
        args = build_parser().parse_args(argv)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except SystemExit as e:  # --help / --version
        return int(e.code or 0)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    shown = warnings.showwarning
    warnings.showwarning = _warning_printer(args.command)
    try:
        return _run(args)
    finally:
        warnings.showwarning = shown


def _run(args) -> int:
    handler = {
        "models": _models, "phantom": _phantom, "segment": _segment, "enhance": _enhance, "latent": _latent, "train": _train, "refine": _refine,
        "atlases": _atlases, "batch": _batch, "classify": _classify,
        "evaluate": _evaluate, "measure": _measure, "demo": _demo,
    }[args.command]
    try:
        return int(handler(args) or 0)
    except (InputError, OSError) as e:  # bad input or a file system refusal: the user's to fix
        print(f"cardiac-priors {args.command}: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"cardiac-priors {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # one line, not a traceback; -v shows it
        if args.verbose:
            logging.exception("unexpected failure")
        print(f"cardiac-priors {args.command}: failed: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_FAILURE


def _warning_printer(command: str):
    """A ``warnings.showwarning``: warnings that reach the top (not collected by a command as
    notes of its own) print as one line each, this package's as a note, a library's (nibabel,
    ITK, torch) only with -v."""

    def show(message, category, filename, lineno, file=None, line=None):
        text = " ".join(str(message).split())
        if "napari_cardiac_priors" in str(filename).replace(os.sep, "/").replace("-", "_"):
            print(f"cardiac-priors {command}: note: {text}", file=sys.stderr)
        else:
            logging.getLogger("cardiac_priors.libraries").info("%s: %s", category.__name__, text)

    return show


# -- models --------------------------------------------------------------------------------
def _models(args) -> int:
    from . import registry

    if args.models_command == "list":
        entries = registry.list_models()
        if args.json:
            print(json.dumps([e.to_dict() for e in entries], indent=2))
        elif not entries:
            print("no models installed")
        else:
            for e in entries:
                print(f"{e.name:24s} {e.version:8s} {e.task:18s} {e.license or '-':18s} {e.description}")
    elif args.models_command == "info":
        e = registry.get_model(args.name)
        if args.json:
            print(json.dumps(e.to_dict(), indent=2))
        else:
            for k, v in e.to_dict().items():
                print(f"{k:13s} {json.dumps(v) if isinstance(v, (dict, list)) else v}")
    elif args.models_command == "add":
        try:
            entry = json.loads(Path(args.manifest).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise InputError(f"{args.manifest}: cannot read the manifest entry ({err})") from err
        e = registry.add_model(args.weights, entry, overwrite=args.overwrite)
        print(f"installed {e.name} {e.version} in {e.root}")
    elif args.models_command == "remove":
        registry.remove_model(args.name)
        print(f"removed {args.name}")
    return 0


# -- phantom -------------------------------------------------------------------------------
def _phantom(args) -> int:
    from .phantom import PATHOLOGIES, make_subject, subject_seed, write_subject

    if args.n < 1:
        raise InputError(f"--n must be at least 1, got {args.n}")
    out = Path(args.out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    if not args.overwrite and out.is_dir():
        clash = sorted(out.glob("phantom_[0-9][0-9][0-9]_*"))
        wanted = {f"phantom_{i:03d}_" for i in range(args.n)}
        clash = [c for c in clash if c.name[:12] in wanted]
        if clash:
            raise InputError(f"{clash[0]} exists; pass --overwrite to replace phantom files or choose another folder")
    for i in range(args.n):
        pathology = args.pathology or PATHOLOGIES[i % len(PATHOLOGIES)]
        subject = make_subject(subject_seed(args.seed, i), pathology=pathology, lr=args.lr)
        paths = write_subject(subject, out, i)
        logging.getLogger(__name__).info("subject %d (%s): %d files", i, pathology, len(paths))
    print(f"wrote {args.n} phantom subject(s) to {out}")
    return 0


# -- segment / train -----------------------------------------------------------------------
def _segment(args) -> int:
    from .inference import load_model, resolve_device
    from .workflows.segment import segment_image
    from .io import read_volume, stem, write_landmarks, write_volume

    from .registry import list_models, segmentation_choices

    if args.model not in [e.name for e in list_models()]:
        raise InputError(f"unknown model {args.model!r}; models that segment a stack: {', '.join(segmentation_choices())}")
    device = resolve_device(args.device)
    model = load_model(args.model, device=device)
    out = Path(args.out)
    failed = 0
    for path in args.inputs:
        name = stem(path)
        seg_path, lm_path = out / f"{name}_seg.nii.gz", out / f"{name}_landmarks.json"
        try:
            if not args.overwrite and (seg_path.exists() or lm_path.exists()):
                raise InputError(f"{seg_path if seg_path.exists() else lm_path} exists; pass --overwrite to replace it")
            volume = read_volume(path, kind="image", series_uid=args.series)
            if int(volume.metadata.get("n_series", 1)) > 1 and args.series is None:
                print(f"cardiac-priors segment: warning: {Path(path).name} holds {volume.metadata['n_series']} DICOM series; "
                      f"used {volume.metadata['series_uid']} ({volume.spatial_shape[0]} slices); choose another with --series UID "
                      f"({', '.join(volume.metadata.get('series_uids', []))})", file=sys.stderr)
            if args.frame is not None and not volume.is_cine:
                raise InputError(f"{Path(path).name} is a 3D stack; --frame applies to cine (4D) stacks only")
            if args.frame is not None and not 0 <= args.frame < volume.shape[0]:
                raise InputError(f"{Path(path).name}: --frame {args.frame} is outside 0-{volume.shape[0] - 1}")
            if volume.is_cine:
                if args.frame is None:
                    raise InputError(f"{Path(path).name} is a cine stack of {volume.shape[0]} frames; choose one with --frame")
                volume = volume.frame(args.frame)
            done = segment_image(volume, model, tta=args.tta)
            result = done.result
            for note in done.notes:
                print(f"cardiac-priors segment: warning: {Path(path).name}: {note}", file=sys.stderr)
            write_volume(result.labels, seg_path)
            if result.landmarks is not None:
                write_landmarks(result.landmarks, lm_path)
            print(f"{Path(path).name}: {seg_path.name} ({result.info['total_seconds']:.2f} s)")
        except (InputError, IndexError) as e:
            where = "" if Path(path).name in str(e) else f"{Path(path).name}: "
            print(f"cardiac-priors segment: error: {where}{e}", file=sys.stderr)
            failed += 1
        except Exception as e:  # noqa: BLE001 - one input fails on its own line, the others still run
            print(f"cardiac-priors segment: error: {Path(path).name}: failed: {type(e).__name__}: {e}", file=sys.stderr)
            failed += 1
    return EXIT_BAD_INPUT if failed else 0


def _enhance(args) -> int:
    from .inference import enhance, load_model, resolve_device
    from .io import read_volume, stem, write_volume

    model = load_model(args.model, device=resolve_device(args.device))
    if model.entry.config.get("task") != "super-resolution":
        raise InputError(f"model {args.model!r} is not a super-resolution model")
    out = Path(args.out)
    failed = 0
    for path in args.inputs:
        target = out / f"{stem(path)}_sr.nii.gz"
        try:
            if target.exists() and not args.overwrite:
                raise InputError(f"{target} exists; pass --overwrite to replace it")
            hr = enhance(read_volume(path, kind="image"), model)
            write_volume(hr, target)
            print(f"{Path(path).name}: {target.name} {hr.spatial_shape} at {tuple(round(s, 3) for s in hr.spacing)} mm")
        except InputError as e:
            print(f"cardiac-priors enhance: error: {e}", file=sys.stderr)
            failed += 1
    return EXIT_BAD_INPUT if failed else 0


def _latent(args) -> int:
    from .inference import resolve_device
    from .io import atomic_path, read_volume, stem, write_volume
    from .latent import describe, grid_mosaic, load_explorer, save_png, traversal_grid

    ex = load_explorer(args.model, device=resolve_device(args.device))
    if args.from_image and ex.kind != "tl":
        raise InputError("--from-image is for T-L models; SDNet always encodes an image")
    if args.slice is not None and ex.kind != "sdnet":
        raise InputError("--slice is for SDNet models; a T-L model encodes the whole label map")
    out = Path(args.out)
    failed = 0
    for path in args.inputs:
        targets = {k: out / f"{stem(path)}_{k}" for k in ("code.json", "decoded.nii.gz", "traversal.png")}
        try:
            existing = [t for t in targets.values() if t.exists()]
            if existing and not args.overwrite:
                raise InputError(f"{existing[0]} exists; pass --overwrite to replace it")
            vol = read_volume(path, kind="labels" if ex.kind == "tl" and not args.from_image else "image")
            if vol.is_cine:
                raise InputError(f"a cine stack of {vol.shape[0]} frames; `latent` takes one 3D frame")
            if ex.kind == "sdnet":
                k = vol.spatial_shape[0] // 2 if args.slice is None else args.slice
                if not 0 <= k < vol.spatial_shape[0]:
                    raise InputError(f"--slice {k} is outside the stack's {vol.spatial_shape[0]} slices")
                source = vol.slice(k)
                code = ex.encode(source)
            else:
                source = vol
                code = ex.encode_image(source) if args.from_image else ex.encode(source)
            decoded = source.with_array(ex.decode(code), kind="labels" if ex.kind == "tl" else "image")
            dims = None if ex.kind == "sdnet" else ex.order_by_variance()[:8]
            mosaic = grid_mosaic(traversal_grid(ex, code, dims=dims))
            info = {**describe(ex, code), "input": str(path)}
            if ex.kind == "sdnet":
                info["slice"] = k
            write_volume(decoded, targets["decoded.nii.gz"])
            save_png(mosaic, targets["traversal.png"])
            with atomic_path(targets["code.json"]) as tmp:
                Path(tmp).write_text(json.dumps(info, indent=2))
            extra = (f", Mahalanobis distance {info['distance']:.2f}" if ex.kind == "tl"
                     else f", slice {k}")
            print(f"{Path(path).name}: {len(info['z'])}-dimensional code{extra}; wrote {', '.join(t.name for t in targets.values())}")
            for note in code.notes:
                print(f"  note: {note}")
        except (InputError, FileNotFoundError) as e:
            print(f"cardiac-priors latent: error: {Path(path).name}: {e}", file=sys.stderr)
            failed += 1
    return EXIT_BAD_INPUT if failed else 0


def _refine(args) -> int:
    from .inference import resolve_device
    from .io import atomic_path, read_landmarks, read_volume, stem, write_mesh, write_volume
    from .surfaces import SURFACES
    from .workflows.refine import refine_subject

    name = stem(args.image)
    out = Path(args.out)
    seg_path, json_path = out / f"{name}_refined.nii.gz", out / f"{name}_refine.json"
    mesh_paths = {s: out / f"{name}_{s}.{args.mesh}" for s in SURFACES} if args.mesh else {}
    for p in (seg_path, json_path, *mesh_paths.values()):
        if p.exists() and not args.overwrite:
            raise InputError(f"{p} exists; pass --overwrite to replace it")
    image = read_volume(args.image, kind="image")
    labels = read_volume(args.seg, kind="labels")
    landmarks = read_landmarks(args.landmarks)
    done = refine_subject(labels, landmarks, atlases=args.atlases, n_atlases=args.n_atlases, fusion=args.fusion,
                          image=image, surfaces=bool(mesh_paths), device=resolve_device(args.device), init=args.init)
    result = done.result
    write_volume(result.labels, seg_path)
    meshes = [write_mesh(m.vertices, m.faces, mesh_paths[m.name]).name for m in done.surfaces]
    report = {
        "image": str(args.image), "segmentation": str(args.seg), "atlas_set": done.atlas_set,
        "selected_atlases": result.selected, "nmi": result.nmi, "timings_s": result.timings, **result.info,
        "landmarks_used": {n: (list(p) if ok else None) for n, p, ok in zip(done.landmarks.names, done.landmarks.positions.tolist(), done.landmarks.valid)},
        "landmark_sources": list(done.landmarks.source), **({"meshes": meshes} if mesh_paths else {}),
        "notes": done.notes,
    }
    with atomic_path(json_path) as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    for note in done.notes:
        print(f"cardiac-priors refine: note: {note}", file=sys.stderr)
    print(f"{seg_path.name}: refined with {len(result.selected)} atlases of {Path(done.atlas_set).name} "
          f"in {result.timings['total']:.1f} s")
    return 0


def _atlases(args) -> int:
    from .inference import resolve_device
    from .io import VOLUME_SUFFIXES, full_suffix
    from .atlases.from_images import build_from_images
    from .registry.atlases import write_atlas_set

    from .registry import check_name

    folder = Path(args.dir)
    check_name(args.name or folder.name, what="atlas set")  # before any work: a name is never a path
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder")
    images = [p for p in sorted(folder.iterdir()) if full_suffix(p) in VOLUME_SUFFIXES]
    if not images:
        raise InputError(f"{folder}: no image files ({', '.join(VOLUME_SUFFIXES)})")
    from .registry import list_models

    if not args.overwrite and any(e.name == (args.name or folder.name) for e in list_models()):
        raise InputError(f"{args.name or folder.name!r} is already installed; pass --overwrite to replace it")
    failed = 0
    if args.from_labels:
        from .atlases.from_labels import build_from_label_files

        atlases, skipped = build_from_label_files(images, acdc_values=args.label_values == "acdc")
        for path, reason in skipped.items():
            where = "" if reason.startswith(Path(path).name) else f"{Path(path).name}: "
            print(f"cardiac-priors atlases: error: {where}{reason}", file=sys.stderr)
        failed = len(skipped)
        if not atlases:
            return EXIT_BAD_INPUT
        how = {"method": "from-labels", "label_values": args.label_values, "skipped": [Path(p).name for p in skipped]}
        what = "label maps (shift-corrected, shape-based interpolation)"
    else:
        atlases = build_from_images(images, args.model, device=resolve_device(args.device))
        how, what = {"model": args.model}, f"HR images segmented with {args.model}"
    entry = write_atlas_set(atlases, args.name or folder.name, overwrite=args.overwrite,
                            description=f"{len(atlases)} atlases built from {what} in {folder.name}",
                            training={**how, "source": str(folder)})
    print(f"installed atlas set {entry.name} ({len(atlases)} atlases) in {entry.root}")
    return EXIT_BAD_INPUT if failed else 0


def format_progress(info: dict) -> str:
    """One line for a training progress event (any model family)."""
    if info["event"] == "data":
        return f"data: {info['train']} training and {info['val']} validation cases ({info['seconds']:.0f} s)"
    val = info.get("val") or {}
    score = val.get("dice_mean", val.get("score"))
    extra = f", validation {'Dice' if 'dice_mean' in val else 'score'} {score:.3f}" if score is not None else ""
    stage = f" [{info['stage']}]" if info.get("stage") not in (None, "train") else ""
    return f"epoch {info['epoch']}{stage}: loss {info['loss']:.4f} ({info['seconds']:.0f} s){extra}"


def _train(args) -> int:
    from .inference import resolve_device
    from .training.loop import train
    from .training.recipes import get_recipe

    recipe = get_recipe(args.recipe)
    out = Path(args.out or Path("training_runs") / recipe.name)

    def progress(info):
        print(format_progress(info), flush=True)

    weights = train(recipe, out, data_root=args.data, epochs=args.epochs, resume=args.resume, init=args.init,
                    device=resolve_device(args.device), progress=progress)
    print(f"model written to {weights}; its manifest entry to {weights.parent / 'manifest_entry.json'}")
    return 0


# -- classify --------------------------------------------------------------------------------
def _classify(args) -> int:
    from .classify import PCAFeatures, cross_validate, fit_predict, read_shapes, restrict, tl_features
    from .io import atomic_path

    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise InputError(f"{out} exists; pass --overwrite to replace it")
    phases = ("ed", "es") if args.phases == "ed+es" else ("ed",)
    train = read_shapes(args.train, phases=phases, shape_model=args.shape_model, seg_model=args.model)
    if args.groups:
        train = restrict(train, [g.strip() for g in args.groups.split(",")])
    if any(g is None for g in train.groups):
        raise InputError(f"{args.train}: every training patient needs a Group in its Info.cfg")
    if min(train.groups.count(g) for g in set(train.groups)) < 10:
        raise InputError("10-fold cross-validation needs at least 10 training patients per group")
    if args.features == "tl":
        x = tl_features(train, shape_model=args.shape_model)
    else:
        pca = PCAFeatures(n_components=int(x_dim(args.shape_model)))
        x = pca.fit_transform(train)
    cv = cross_validate(x, train.groups)
    print(f"{args.features} features, {'+'.join(p.upper() for p in phases)}: 10-fold CV accuracy "
          f"{100 * cv['accuracy']:.1f} % on {cv['n']} training patients ({', '.join(sorted(set(train.groups)))})")
    result = {"features": args.features, "phases": list(phases), "shape_model": args.shape_model, "cross_validation": cv}
    if args.test:
        test = read_shapes(args.test, phases=phases, shape_model=args.shape_model, seg_model=args.model)
        xt = tl_features(test, shape_model=args.shape_model) if args.features == "tl" else pca.transform(test)
        result = dict(zip(test.ids, fit_predict(x, train.groups, xt)))
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


def x_dim(shape_model: str) -> int:
    """The code size of a T-L model (the PCA baseline gets as many components)."""
    from . import registry

    return int(registry.get_model(shape_model).config.get("code_size", 64))


# -- batch ---------------------------------------------------------------------------------
def _batch(args) -> int:
    from .cohort import BatchOptions, read_cohort, run_batch
    from .inference import resolve_device

    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers must be at least 1, got {args.workers}")
    if args.n_atlases < 1:
        raise InputError(f"--n-atlases must be at least 1, got {args.n_atlases}")
    if not args.verbose:  # the dask cluster's own INFO lines would bury the progress bar
        for handler in logging.getLogger().handlers:
            handler.addFilter(lambda r: not r.name.startswith(("distributed", "bokeh", "tornado")) or r.levelno >= logging.ERROR)
    subjects = read_cohort(args.cohort)
    options = BatchOptions(model=args.model, refine=args.refine, atlases=args.atlases, n_atlases=args.n_atlases,
                           device=resolve_device(args.device), shape_model=args.shape_model)
    bar = _ProgressBar(len(subjects))
    where = f"the scheduler at {args.scheduler}" if args.scheduler else "a local dask cluster"
    print(f"{len(subjects)} subject(s): connecting to {where} (the first results follow once models are loaded)...",
          file=sys.stderr, flush=True)

    def progress(event):
        if event["event"] == "start":
            print(f"{event['total']} subject(s); dask dashboard: {event['dashboard'] or '-'}", file=sys.stderr, flush=True)
        else:
            bar.update(event)

    summary = run_batch(subjects, args.out, options, scheduler=args.scheduler, workers=args.workers, progress=progress)
    bar.close()
    print(f"{summary.done} done, {summary.skipped} skipped (unchanged), {summary.failed} failed in {summary.seconds:.0f} s; "
          f"{summary.paths['measures']}, report {summary.paths['report']}")
    return EXIT_FAILURE if summary.failed else 0


class _ProgressBar:
    """A one-line progress bar on stderr (redrawn in place on a terminal, one line per 10 % otherwise)."""

    def __init__(self, total: int, width: int = 30):
        import time

        self.total, self.width, self.t0, self.failed = total, width, time.monotonic(), 0
        self.tty = sys.stderr.isatty()
        self._last_decile = -1

    def update(self, event) -> None:
        import time

        self.failed += event["status"] == "failed"
        done = event["done"]
        fill = int(self.width * done / max(self.total, 1))
        rate = done / max(time.monotonic() - self.t0, 1e-9) * 60
        line = (f"[{'#' * fill}{'.' * (self.width - fill)}] {done}/{self.total} subjects, "
                f"{self.failed} failed, {rate:.1f}/min")
        if self.tty:
            print(f"\r{line}", end="", file=sys.stderr, flush=True)
        elif done * 10 // max(self.total, 1) != self._last_decile or event["status"] == "failed":
            self._last_decile = done * 10 // max(self.total, 1)
            msg = f" ({event['subject']}: {event['error']})" if event["status"] == "failed" else ""
            print(line + msg, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.tty:
            print(file=sys.stderr, flush=True)


# -- evaluate / measure ----------------------------------------------------------------------
def _evaluate(args) -> int:
    from .workflows.evaluate import evaluate_folders

    result = evaluate_folders(args.pred, args.gt)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{'case':28s} {'structure':9s} {'Dice':>6s} {'HD95 mm':>8s} {'MSD mm':>7s}")
    rows = [(key, c["structures"]) for key, c in result["cases"].items()] + [("mean", result["mean"])]
    for key, structures in rows:
        for name, m in structures.items():
            print(f"{key:28s} {name:9s} {m['dice']:6.3f} {m['hd95']:8.2f} {m['msd']:7.2f}")
    return 0


def _measure(args) -> int:
    from .workflows.measure import format_table, measure_files, write_table

    if args.csv and Path(args.csv).exists() and not args.overwrite:
        raise InputError(f"{args.csv} exists; pass --overwrite to replace it")
    rows = measure_files(args.seg)
    if args.csv:
        write_table(rows, args.csv, overwrite=args.overwrite)
        print(f"wrote {len(rows)} row(s) to {args.csv}")
    else:
        sys.stdout.write(format_table(rows))
    return 0


# -- demo ------------------------------------------------------------------------------------
def _has_display() -> bool:
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def _demo_folder() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("napari-cardiac-priors")) / "demo"


def _demo(args) -> int:
    from .demo import run_headless

    if args.headless or not _has_display():
        if not args.headless:
            print("no display found: running the headless demo", file=sys.stderr)
        out = Path(args.out) if args.out else _demo_folder()
        summary = run_headless(out)
        print(summary)
        print(f"outputs in {out}")
        return 0
    from ._napari.demo import run_viewer  # the one place where the CLI reaches the GUI

    run_viewer()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
