"""``segment``, ``enhance``, ``latent``, ``refine``, ``measure`` and ``evaluate``: what a user does to
one subject's files. Each input of a multi-input command fails on its own line; the others still run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..errors import InputError
from .parser import EXIT_BAD_INPUT


def _each_input(command: str, inputs, work, *, unexpected: bool = False) -> int:
    """Run ``work(path)`` on each input; an input that fails prints one line on stderr and the
    others still run. Exit status 2 when any failed. ``unexpected``: also an unexpected error
    (a bug, a broken file) fails that input alone."""
    caught = Exception if unexpected else (InputError, OSError, IndexError)
    failed = 0
    for path in inputs:
        name = Path(path).name
        try:
            work(path)
        except caught as e:
            if isinstance(e, (InputError, OSError, IndexError)):
                text = f"{'' if name in str(e) else f'{name}: '}{e}"
            else:
                text = f"{name}: failed: {type(e).__name__}: {e}"
            print(f"cardiac-priors {command}: error: {text}", file=sys.stderr)
            failed += 1
    return EXIT_BAD_INPUT if failed else 0


def _read_stack(path, *, series: str | None, frame: int | None):
    """The 3D stack to segment: one DICOM series (warned about when the folder holds several) and
    one frame of a cine stack."""
    from ..io import read_volume

    name = Path(path).name
    volume = read_volume(path, kind="image", series_uid=series)
    if int(volume.metadata.get("n_series", 1)) > 1 and series is None:
        print(f"cardiac-priors segment: warning: {name} holds {volume.metadata['n_series']} DICOM series; "
              f"used {volume.metadata['series_uid']} ({volume.spatial_shape[0]} slices); choose another with --series UID "
              f"({', '.join(volume.metadata.get('series_uids', []))})", file=sys.stderr)
    if frame is not None and not volume.is_cine:
        raise InputError(f"{name} is a 3D stack; --frame applies to cine (4D) stacks only")
    if frame is not None and not 0 <= frame < volume.shape[0]:
        raise InputError(f"{name}: --frame {frame} is outside 0-{volume.shape[0] - 1}")
    if volume.is_cine:
        if frame is None:
            raise InputError(f"{name} is a cine stack of {volume.shape[0]} frames; choose one with --frame")
        volume = volume.frame(frame)
    return volume


def _refuse_existing(paths, overwrite: bool) -> None:
    existing = [p for p in paths if p.exists()]
    if existing and not overwrite:
        raise InputError(f"{existing[0]} exists; pass --overwrite to replace it")


def _segment(args) -> int:
    from ..inference import load_model, resolve_device
    from ..io import stem, write_landmarks, write_volume
    from ..registry import list_models, segmentation_choices
    from ..workflows.segment import segment_image

    if args.model not in [e.name for e in list_models()]:
        raise InputError(f"unknown model {args.model!r}; models that segment a stack: {', '.join(segmentation_choices())}")
    model = load_model(args.model, device=resolve_device(args.device))
    out = Path(args.out)

    def one(path):
        seg_path, lm_path = out / f"{stem(path)}_seg.nii.gz", out / f"{stem(path)}_landmarks.json"
        _refuse_existing((seg_path, lm_path), args.overwrite)
        done = segment_image(_read_stack(path, series=args.series, frame=args.frame), model, tta=args.tta)
        for note in done.notes:
            print(f"cardiac-priors segment: warning: {Path(path).name}: {note}", file=sys.stderr)
        write_volume(done.result.labels, seg_path)
        if done.result.landmarks is not None:
            write_landmarks(done.result.landmarks, lm_path)
        print(f"{Path(path).name}: {seg_path.name} ({done.result.info['total_seconds']:.2f} s)")

    return _each_input("segment", args.inputs, one, unexpected=True)


def _enhance(args) -> int:
    from ..inference import enhance, load_model, resolve_device
    from ..io import read_volume, stem, write_volume

    model = load_model(args.model, device=resolve_device(args.device))
    if model.entry.config.get("task") != "super-resolution":
        raise InputError(f"model {args.model!r} is not a super-resolution model")

    def one(path):
        target = Path(args.out) / f"{stem(path)}_sr.nii.gz"
        _refuse_existing((target,), args.overwrite)
        hr = enhance(read_volume(path, kind="image"), model)
        write_volume(hr, target)
        print(f"{Path(path).name}: {target.name} {hr.spatial_shape} at {tuple(round(s, 3) for s in hr.spacing)} mm")

    return _each_input("enhance", args.inputs, one)


def _latent(args) -> int:
    from ..inference import resolve_device
    from ..io import atomic_path, read_volume, stem, write_volume
    from ..latent import describe, grid_mosaic, load_explorer, save_png, traversal_grid

    ex = load_explorer(args.model, device=resolve_device(args.device))
    if args.from_image and ex.kind != "tl":
        raise InputError("--from-image is for T-L models; SDNet always encodes an image")
    if args.slice is not None and ex.kind != "sdnet":
        raise InputError("--slice is for SDNet models; a T-L model encodes the whole label map")

    def one(path):
        targets = {k: Path(args.out) / f"{stem(path)}_{k}" for k in ("code.json", "decoded.nii.gz", "traversal.png")}
        _refuse_existing(targets.values(), args.overwrite)
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
        info = {**describe(ex, code), "input": str(path), **({"slice": k} if ex.kind == "sdnet" else {})}
        write_volume(decoded, targets["decoded.nii.gz"])
        save_png(mosaic, targets["traversal.png"])
        with atomic_path(targets["code.json"]) as tmp:
            Path(tmp).write_text(json.dumps(info, indent=2))
        extra = f", Mahalanobis distance {info['distance']:.2f}" if ex.kind == "tl" else f", slice {k}"
        print(f"{Path(path).name}: {len(info['z'])}-dimensional code{extra}; wrote {', '.join(t.name for t in targets.values())}")
        for note in code.notes:
            print(f"  note: {note}")

    return _each_input("latent", args.inputs, one)


def _refine(args) -> int:
    from ..inference import resolve_device
    from ..io import atomic_path, read_landmarks, read_volume, stem, write_mesh, write_volume
    from ..surfaces import SURFACES
    from ..workflows.refine import refine_subject

    name = stem(args.image)
    out = Path(args.out)
    seg_path, json_path = out / f"{name}_refined.nii.gz", out / f"{name}_refine.json"
    mesh_paths = {s: out / f"{name}_{s}.{args.mesh}" for s in SURFACES} if args.mesh else {}
    _refuse_existing((seg_path, json_path, *mesh_paths.values()), args.overwrite)
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


def _evaluate(args) -> int:
    from ..workflows.evaluate import evaluate_folders

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
    from ..workflows.measure import format_table, measure_files, write_table

    if args.csv and Path(args.csv).exists() and not args.overwrite:
        raise InputError(f"{args.csv} exists; pass --overwrite to replace it")
    rows = measure_files(args.seg)
    if args.csv:
        write_table(rows, args.csv, overwrite=args.overwrite)
        print(f"wrote {len(rows)} row(s) to {args.csv}")
    else:
        sys.stdout.write(format_table(rows))
    return 0



COMMANDS = {"segment": _segment, "enhance": _enhance, "latent": _latent, "refine": _refine,
            "evaluate": _evaluate, "measure": _measure}
