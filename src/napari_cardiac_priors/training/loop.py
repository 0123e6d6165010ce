"""The one training loop: a recipe, its data, checkpoints every epoch, resume, validation.

Outputs in ``out_dir``: ``checkpoint.pt`` (model, optimiser, epoch, RNG state, history;
loaded with ``weights_only=True``), ``model.safetensors`` (the weights with the best
validation Dice) and ``manifest_entry.json`` (a registry entry with the validation figures).
Progress goes to a callback ``progress(dict)``, never to print.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ..io import atomic_path
from .recipes import Recipe


#: statistics kept in float32 when the weights are stored in float16 (an inverse covariance overflows fp16)
FLOAT32_BUFFERS = ("code_", "distance_", "z_")


def stored_weights(state: dict) -> dict:
    """A state dict as a run stores it: floating-point tensors in float16, but :data:`FLOAT32_BUFFERS`."""
    return {k: v.half() if v.is_floating_point() and not k.startswith(FLOAT32_BUFFERS) else v for k, v in state.items()}


def learning_rate(recipe: Recipe, epoch: int, epochs: int, *, stages=None) -> float:
    """The learning rate of (0-based) ``epoch`` out of ``epochs`` under the recipe's schedule.

    ``"cosine-stage"``: a cosine from ``lr`` towards 0 over each run of consecutive epochs of one
    training stage (``stages``: the stage of every epoch), so that each stage ends on small steps
    (without stages, the same as ``"cosine"``).
    """
    if recipe.lr_schedule == "constant":
        return float(recipe.lr)
    start, length = 0, max(epochs, 1)
    if recipe.lr_schedule == "cosine-stage" and stages:
        start = end = epoch
        while start > 0 and stages[start - 1] == stages[epoch]:
            start -= 1
        while end + 1 < len(stages) and stages[end + 1] == stages[epoch]:
            end += 1
        length = end - start + 1
    elif recipe.lr_schedule not in ("cosine", "cosine-stage"):
        raise ValueError(f"unknown learning-rate schedule {recipe.lr_schedule!r}")
    return float(recipe.lr * 0.5 * (1.0 + np.cos(np.pi * (epoch - start) / length)))


def train(recipe: Recipe, out_dir, *, data_root=None, epochs: int | None = None, resume: bool = False,
          init: str | None = None, device: str = "cpu", progress=None, max_train_cases: int | None = None) -> Path:
    """Train ``recipe`` into ``out_dir``; returns the path of ``model.safetensors``.

    The model family's :class:`~.tasks.Task` supplies data, batches, the loss of each training
    stage and validation; this loop owns the optimiser, the learning-rate schedule,
    checkpoints, resume and the saved weights (those with the best validation score).

    ``init`` names a registry model trained from the same recipe (a bundled one, say): training
    continues from its weights and its epoch count (``training.epochs_trained``), with a new
    optimiser, and its validation score (measured again before the first epoch) is the one to beat. This carries a long training across
    machines that keep no checkpoint; ``resume`` (the checkpoint in ``out_dir``) wins when both apply.
    """
    import torch

    from ..nn import build
    from ..registry import save_weights
    from .tasks import make_task

    progress = progress or (lambda info: None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    epochs = int(epochs or recipe.epochs)
    torch.manual_seed(recipe.seed)
    rng = np.random.default_rng(recipe.seed)
    task = make_task(recipe, device=device, data_root=data_root)
    net = build(recipe.architecture, recipe.config).to(device)
    betas = tuple(task.options.betas)
    opt = torch.optim.Adam(net.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay, betas=betas)
    start, history, best = 0, [], -float("inf")
    ckpt = out / "checkpoint.pt"
    resumed = bool(resume and ckpt.exists())
    started_from = None
    if resumed:
        state = torch.load(ckpt, map_location=device, weights_only=True)
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start = int(state["epoch"])
        history = json.loads(state["history"])
        best = float(state["best"])
        started_from = json.loads(state.get("started_from", "null"))
    elif resume and not init:
        raise FileNotFoundError(f"{ckpt}: no checkpoint to resume from")
    if init and started_from is None:  # (a checkpoint of an older version did not keep where it started)
        from ..registry import get_model

        e = get_model(init)
        done = (int(e.training.get("epochs_trained") or 0) if resumed
                else _init_from(net, init, recipe, device=device, refitted=task.refitted))
        started_from = {"name": e.name, "version": e.version, "sha256": e.sha256, "epochs_trained": done,
                        "continued": True}
    if init and not resumed:
        start = started_from["epochs_trained"]
    if recipe.warm_start and not start and not resumed:
        started_from = warm_start(net, recipe.warm_start, device=device)
    if start:  # a continued run draws its own reproducible sequence from where it starts
        rng = np.random.default_rng(np.random.SeedSequence([recipe.seed, start]))
        torch.manual_seed(recipe.seed + start)

    def save(path_net, record):
        save_weights(stored_weights(path_net.state_dict()), out / "model.safetensors",
                     metadata={"recipe": recipe.name, "epoch": record.get("epoch", 0)})
        _write_entry(recipe, out, record, domain=getattr(task, "domain", None), warm=started_from,
                     provenance=task.provenance())

    t_load = time.perf_counter()
    items = task.load(recipe.train_ids, max_cases=max_train_cases)
    val_items = task.load(recipe.val_ids, training=False) if recipe.val_ids else []
    progress({"event": "data", "train": len(items), "val": len(val_items), "seconds": time.perf_counter() - t_load})

    if started_from and started_from.get("continued") and val_items and not resumed:
        # the weights to beat, scored by this code's validation (the manifest's score may predate it)
        task.calibrate(net, items)
        first = {"epoch": start, "val": task.validate(net, val_items)}
        best = float(first["val"]["score"])
        history.append(first)
        save(net, first)  # kept unless an epoch beats it
        progress({"event": "init", "score": best})
    net.train()
    stages = [task.stage(e) for e in range(epochs)]
    for epoch in range(start, epochs):
        t0 = time.perf_counter()
        stage = stages[epoch]
        lr = learning_rate(recipe, epoch, epochs, stages=stages)
        for group in opt.param_groups:
            group["lr"] = lr
        trainable = {id(p) for p in task.trainable(net, stage)}
        for p in net.parameters():
            p.requires_grad_(id(p) in trainable)
        losses, terms = [], {}
        for batch in task.batches(items, rng):
            loss = task.loss(net, batch, stage)
            loss, parts = loss if isinstance(loss, tuple) else (loss, {})
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            for k, v in parts.items():
                terms.setdefault(k, []).append(v)
        record = {"epoch": epoch + 1, "stage": stage, "loss": float(np.mean(losses)) if losses else float("nan"),
                  "lr": lr, "seconds": time.perf_counter() - t0}
        if terms:  # each term's mean over the batches that had it
            record["terms"] = {k: float(np.mean(v)) for k, v in terms.items()}
        if val_items and ((epoch + 1) % recipe.val_every == 0 or epoch + 1 == epochs):
            task.calibrate(net, items)
            record["val"] = task.validate(net, val_items)
            if record["val"]["score"] > best:
                best = record["val"]["score"]
                save(net, record)
        history.append(record)
        state = {"model": net.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch + 1,
                 "history": json.dumps(history), "best": best, "started_from": json.dumps(started_from)}
        with atomic_path(ckpt) as tmp:
            torch.save(state, tmp)
        progress({"event": "epoch", **record})
    for p in net.parameters():
        p.requires_grad_(True)
    final = history[-1] if history else {}
    if val_items and (out / "model.safetensors").exists():
        from safetensors.torch import load_file

        net.load_state_dict({k: v.float() for k, v in load_file(str(out / "model.safetensors"), device=str(device)).items()})
        final = max((h for h in history if "val" in h), key=lambda h: h["val"]["score"], default=final)
    if task.finish(net, items) or not val_items:
        if val_items and "val" in final:  # the validation of the weights as saved
            task.calibrate(net, items)
            final = {**final, "val": task.validate(net, val_items)}
        save(net, final)
    return out / "model.safetensors"


def _init_from(net, name: str, recipe: Recipe, *, device, refitted=()) -> int:
    """Load the registry model ``name`` into ``net``; the number of epochs it was trained.

    The recipe may add parts to the model (a config key the model lacks) or change a part that is
    fitted after training (a key in ``refitted``): those parts start fresh, the rest must match.
    """
    from ..errors import InputError
    from ..registry import get_model, load_state_dict

    entry = get_model(name)
    fresh = {k for k, v in recipe.config.items() if k not in entry.config or (k in refitted and entry.config[k] != v)}
    kept = {k: v for k, v in entry.config.items() if k not in fresh}
    if entry.training.get("recipe") != recipe.name or kept != {k: v for k, v in recipe.config.items() if k not in fresh}:
        raise InputError(f"model {name!r} was not trained from recipe {recipe.name!r} with its configuration; "
                         "--init continues a training of the same recipe")
    own = net.state_dict()
    stored = {k: v.float() for k, v in load_state_dict(entry, device=str(device)).items()}
    if fresh:  # a changed part's tensors change shape: they are left as built
        stored = {k: v for k, v in stored.items() if k not in own or own[k].shape == v.shape}
    missing, unexpected = net.load_state_dict(stored, strict=not fresh)
    if unexpected or (missing and not fresh):
        raise InputError(f"model {name!r} does not fit recipe {recipe.name!r}: {sorted(unexpected or missing)[:3]}")
    return int(entry.training.get("epochs_trained") or 0)


def warm_start(net, name: str, *, device="cpu") -> dict:
    """Start ``net`` from the weights of the registry model ``name`` (another recipe): every
    tensor of the same name and shape is copied; a first convolution that reads fewer input
    channels (a 1-slice U-Net into a K-slice slab network) goes into the centre channels, the
    others start at zero, so the warm network first computes what ``name`` computes; the rest
    (a new landmark head) keeps its random start. Returns ``{"name", "version", "sha256"}``
    of the model used, for the manifest."""
    from ..errors import InputError
    from ..registry import get_model, load_state_dict

    entry = get_model(name)
    source = {k: v.float() for k, v in load_state_dict(entry, device=str(device)).items()}
    target = net.state_dict()
    copied = 0
    for key, value in source.items():
        if key not in target:
            continue
        want = target[key]
        if want.shape == value.shape:
            target[key] = value
        elif want.ndim == 4 and want.shape[0] == value.shape[0] and want.shape[2:] == value.shape[2:] \
                and want.shape[1] > value.shape[1] and (want.shape[1] - value.shape[1]) % 2 == 0:
            lo = (want.shape[1] - value.shape[1]) // 2
            widened = want.new_zeros(want.shape)
            widened[:, lo : lo + value.shape[1]] = value
            target[key] = widened
        else:
            raise InputError(f"model {name!r} cannot start this network: its {key} is {tuple(value.shape)}, "
                             f"the network's {tuple(want.shape)}")
        copied += 1
    if not copied:
        raise InputError(f"model {name!r} shares no weights with this network; it cannot start it")
    net.load_state_dict(target)
    return {"name": entry.name, "version": entry.version, "sha256": entry.sha256, "tensors_copied": copied}


def _write_entry(recipe: Recipe, out: Path, record: dict, *, domain: dict | None = None, warm: dict | None = None,
                 provenance: dict | None = None) -> None:
    from ..conventions import LABELS, LANDMARK_NAMES
    from ..registry import sha256_of

    n_classes = recipe.config.get("n_classes", 4)
    entry = {
        "name": recipe.name,
        "version": recipe.version,
        "task": {"tl": "shape-prior", "sdnet": "disentanglement"}.get(recipe.architecture,
                                                                     recipe.config.get("task", "segmentation")),
        "architecture": recipe.architecture,
        "file": f"{recipe.name}.safetensors",
        "sha256": sha256_of(out / "model.safetensors"),
        "description": recipe.description,
        "config": recipe.config,
        "labels": {str(c): c for c in range(n_classes)},
        "label_names": {str(c): LABELS[c] for c in range(n_classes)},
        "landmarks": list(LANDMARK_NAMES) if recipe.architecture == "sslln" or recipe.config.get("n_landmarks") else [],
        "input": recipe.input,
        "training": {
            "data": recipe.data,
            "recipe": recipe.name,
            "seed": recipe.seed,
            "epochs_trained": record.get("epoch"),
            "epochs_planned": recipe.epochs,
            "lr": recipe.lr,
            "lr_schedule": recipe.lr_schedule,
            "train_crop": list(recipe.train_crop) if recipe.train_crop else None,
            "train_options": recipe.train_options,
            **(provenance or {}),
            "train_ids": list(recipe.train_ids),
            "validation_ids": list(recipe.val_ids),
            "validation": record.get("val", {}),
            **({"domain": domain} if domain else {}),
            **({("continued_from" if warm.get("continued") else "warm_start"): warm} if warm else {}),
        },
        "license": recipe.license,
        "citation": recipe.citation,
    }
    with atomic_path(out / "manifest_entry.json") as tmp:
        tmp.write_text(json.dumps(entry, indent=2) + "\n", encoding="utf-8")
