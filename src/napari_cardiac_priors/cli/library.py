"""``models``, ``atlases``, ``train`` and ``phantom``: the model and atlas library and what fills it."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from ..errors import InputError
from .parser import EXIT_BAD_INPUT


def _models(args) -> int:
    from .. import registry

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


def _phantom(args) -> int:
    from ..phantom import PATHOLOGIES, make_subject, subject_seed, write_subject

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


def _atlases(args) -> int:
    from ..inference import resolve_device
    from ..io import VOLUME_SUFFIXES, full_suffix
    from ..atlases.from_images import build_from_images
    from ..registry.atlases import write_atlas_set

    from ..registry import check_name

    folder = Path(args.dir)
    check_name(args.name or folder.name, what="atlas set")  # before any work: a name is never a path
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder")
    images = [p for p in sorted(folder.iterdir()) if full_suffix(p) in VOLUME_SUFFIXES]
    if not images:
        raise InputError(f"{folder}: no image files ({', '.join(VOLUME_SUFFIXES)})")
    from ..registry import list_models

    if not args.overwrite and any(e.name == (args.name or folder.name) for e in list_models()):
        raise InputError(f"{args.name or folder.name!r} is already installed; pass --overwrite to replace it")
    failed = 0
    if args.from_labels:
        from ..atlases.from_labels import build_from_label_files

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
    if info["event"] == "init":
        return f"the weights continued from: validation score {info['score']:.3f}"
    val = info.get("val") or {}
    score = val.get("dice_mean", val.get("score"))
    extra = f", validation {'Dice' if 'dice_mean' in val else 'score'} {score:.3f}" if score is not None else ""
    if "reconstruction_corr" in val:
        extra += f", reconstruction r {val['reconstruction_corr']:.3f}"
    stage = f" [{info['stage']}]" if info.get("stage") not in (None, "train") else ""
    terms = info.get("terms") or {}
    parts = f" = {' + '.join(f'{k} {v:.4f}' for k, v in terms.items())}" if len(terms) > 1 else ""
    return f"epoch {info['epoch']}{stage}: loss {info['loss']:.4f}{parts} ({info['seconds']:.0f} s){extra}"


def _train(args) -> int:
    from ..inference import resolve_device
    from ..training.loop import train
    from ..training.recipes import get_recipe

    recipe = get_recipe(args.recipe)
    out = Path(args.out or Path("training_runs") / recipe.name)

    def progress(info):
        print(format_progress(info), flush=True)

    weights = train(recipe, out, data_root=args.data, epochs=args.epochs, resume=args.resume, init=args.init,
                    device=resolve_device(args.device), progress=progress)
    print(f"model written to {weights}; its manifest entry to {weights.parent / 'manifest_entry.json'}")
    return 0



COMMANDS = {"models": _models, "phantom": _phantom, "atlases": _atlases, "train": _train}
