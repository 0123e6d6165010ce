"""Developer tool: finish a slab-model training run for bundling.

``.venv/bin/python benchmarks/finish_slab_run.py training_runs/sslln-acdc [--bundle]``

The training loop keeps the weights with the best validation score it measured (with the
inference of the code it started with); this scores both those weights and the last epoch's
(``checkpoint.pt``), their batch-norm statistics re-estimated on the training slabs
(``SlabTask.calibrate``), on the recipe's validation patients with today's inference (the recipe's
current input contract), keeps the better, writes the manifest entry with those figures and
the training domain (for the out-of-domain notes), and with ``--bundle`` puts it into the
package's model library. Prints one line per candidate.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path


def main():
    import torch
    from safetensors.torch import load_file

    from napari_cardiac_priors.io.acdc import default_root
    from napari_cardiac_priors.nn import build
    from napari_cardiac_priors.quality import training_domain
    from napari_cardiac_priors.registry import save_weights, sha256_of
    from napari_cardiac_priors.training.data import acdc_cases
    from napari_cardiac_priors.training.loop import FLOAT32_BUFFERS
    from napari_cardiac_priors.training.recipes import get_recipe
    from napari_cardiac_priors.training.tasks import make_task

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("run")
    ap.add_argument("--bundle", action="store_true")
    ap.add_argument("--continued-from", metavar="MODEL",
                    help="the installed model the run was continued from (--init), recorded in the manifest when the "
                         "run's own entry lacks it; give it before --bundle replaces that model")
    ap.add_argument("--also", nargs="*", default=[], metavar="EPOCH=FILE",
                    help="more candidate weights (safetensors) of the same run, e.g. kept from an earlier stage")
    args = ap.parse_args()
    run = Path(args.run)
    entry = json.loads((run / "manifest_entry.json").read_text(encoding="utf-8"))
    recipe = get_recipe(entry["name"])
    task = make_task(recipe)
    cases = task.load(recipe.val_ids, training=False)
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    history = json.loads(state["history"])
    candidates = {}
    best = build(recipe.architecture, recipe.config)
    best.load_state_dict({k: v.float() for k, v in load_file(str(run / "model.safetensors")).items()})
    candidates[f"best-measured (epoch {entry['training']['epochs_trained']})"] = (best.eval(), entry["training"]["epochs_trained"])
    last = build(recipe.architecture, recipe.config)
    last.load_state_dict(state["model"])
    candidates[f"last (epoch {state['epoch']})"] = (last.eval(), int(state["epoch"]))
    for spec in args.also:
        epoch, file = spec.split("=", 1)
        net = build(recipe.architecture, recipe.config)
        net.load_state_dict({k: v.float() for k, v in load_file(file).items()})
        candidates[f"kept (epoch {epoch})"] = (net.eval(), int(epoch))
    items = task.load(recipe.train_ids)  # batch-norm statistics re-estimated on them (SlabTask.calibrate)
    scored = []
    for label, (net, epoch) in candidates.items():
        task.calibrate(net, items)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = task.validate(net, cases)
        scored.append((s["score"], label, net, epoch, s))
        sys.stdout.write(f"{run.name} {label}: Dice LV {s['dice_LV']:.3f} MYO {s['dice_MYO']:.3f} RV {s['dice_RV']:.3f} "
                         f"mean {s['dice_mean']:.3f}\n")
    # the best score; on a tie (a head-only stage leaves the segmentation as it was) the later epoch,
    # whose landmark head trained longer
    _, label, net, epoch, s = max(scored, key=lambda t: (round(t[0], 4), t[3]))
    save_weights({k: v.half() if v.is_floating_point() and not k.startswith(FLOAT32_BUFFERS) else v
                  for k, v in net.state_dict().items()}, run / "model.safetensors",
                 metadata={"recipe": recipe.name, "epoch": epoch})
    train_cases = acdc_cases(default_root(), recipe.train_ids)
    if args.continued_from and "continued_from" not in entry["training"]:
        from napari_cardiac_priors.registry import get_model

        e = get_model(args.continued_from)
        entry["training"]["continued_from"] = {"name": e.name, "version": e.version, "sha256": e.sha256,
                                               "epochs_trained": e.training.get("epochs_trained"), "continued": True}
    entry["version"] = recipe.version
    entry["input"] = recipe.input
    entry["description"] = recipe.description
    entry["sha256"] = sha256_of(run / "model.safetensors")
    entry["training"].update(epochs_trained=epoch, validation=s, domain=training_domain([c.image for c in train_cases]),
                             validation_history=[{"epoch": h["epoch"], **h["val"]} for h in history if "val" in h],
                             train_seconds=float(sum(h["seconds"] for h in history)))
    (run / "manifest_entry.json").write_text(json.dumps(entry, indent=2) + "\n", encoding="utf-8")
    sys.stdout.write(f"{run.name}: kept {label}\n")
    if args.bundle:
        from napari_cardiac_priors.registry.bundle import bundle

        e = bundle(run)
        sys.stdout.write(f"bundled {e.name} {e.version} ({e.path.name})\n")


if __name__ == "__main__":
    main()
