"""Train an ablation: a registry recipe with some of its training options changed.

Run: ``.venv/bin/python benchmarks/train_variant.py RECIPE --set lambda1=0.1 --init MODEL --epochs N
--out training_runs/NAME [--lr-schedule cosine-stage] [--config code_size=128]`` (``--config``
changes the network, so it trains from scratch). Values are JSON (``0.1``, ``true``, ``"text"``, ``{"a": 1}``).

The variant keeps the recipe's name (so that ``--init`` can continue a bundled model of that
recipe) and its output folder is a training run like any other: ``bench_acnn.py --runs FOLDER``
scores it beside the bundled models. It is for measurements only; a variant that should ship
becomes a recipe (with its own version and comment) first.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace


def main():
    from napari_cardiac_priors.cli.library import format_progress
    from napari_cardiac_priors.training.loop import train
    from napari_cardiac_priors.training.recipes import get_recipe

    ap = argparse.ArgumentParser()
    ap.add_argument("recipe")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=JSON", help="a training option to change")
    ap.add_argument("--config", action="append", default=[], metavar="KEY=JSON",
                    help="an architecture setting to change (train from scratch: --init needs the same network)")
    ap.add_argument("--init")
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--lr-schedule", choices=["constant", "cosine", "cosine-stage"],
                    help="the learning-rate schedule instead of the recipe's")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    recipe = get_recipe(args.recipe)
    options, config = dict(recipe.train_options), dict(recipe.config)
    for flag, items, target in (("--set", args.set, options), ("--config", args.config, config)):
        for item in items:
            key, sep, value = item.partition("=")
            if not sep:
                ap.error(f"{flag} {item!r}: KEY=JSON")
            target[key] = json.loads(value)
    changes = args.set + [f"config {c}" for c in args.config]
    changes += [f"lr_schedule={args.lr_schedule}"] if args.lr_schedule else []
    variant = replace(recipe, train_options=options, config=config, lr_schedule=args.lr_schedule or recipe.lr_schedule,
                      description=recipe.description + f" (ablation: {', '.join(changes) or 'none'})")
    print(f"{recipe.name} with {', '.join(changes) or 'no change'}", flush=True)
    weights = train(variant, args.out, epochs=args.epochs, resume=args.resume, init=args.init,
                    progress=lambda info: print(format_progress(info), flush=True))
    print(f"model written to {weights}", flush=True)


if __name__ == "__main__":
    main()
