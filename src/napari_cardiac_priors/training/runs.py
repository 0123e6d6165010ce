"""A training run's output folder read as a model: its manifest entry and its network, the
weights checked against the entry's sha256. For a prior trained but not installed, and for
scoring an ablation beside the bundled models without installing it; :func:`last_epoch_run`
turns a run's checkpoint (its last epoch, which the run may not have kept as its best) into a
run folder of its own."""

from __future__ import annotations

import json
from pathlib import Path


def run_entry(folder) -> dict:
    """The manifest entry that a training run wrote into ``folder`` (``manifest_entry.json``)."""
    return json.loads((Path(folder) / "manifest_entry.json").read_text(encoding="utf-8"))


def load_run_network(folder, *, device: str = "cpu"):
    """The network in ``folder``'s ``model.safetensors`` (its entry's architecture and config), in
    eval mode, float32. A file that does not match the entry's sha256 raises
    :class:`~napari_cardiac_priors.registry.RegistryError` naming the folder and the file; a
    folder whose entry records no sha256 is loaded unchecked."""
    from ..nn import build
    from ..registry import ModelEntry, RegistryError, load_state_dict

    path = Path(folder)
    doc = run_entry(path)
    if doc.get("sha256"):
        try:
            state = load_state_dict(ModelEntry.from_dict({**doc, "file": "model.safetensors"}, root=path))
        except RegistryError as e:
            raise RegistryError(f"run folder {path}: {e}") from e
    else:
        from safetensors.torch import load_file

        state = load_file(str(path / "model.safetensors"))
    net = build(doc["architecture"], doc["config"])
    net.load_state_dict({k: v.float() for k, v in state.items()})
    return net.to(device).eval()


def last_epoch_run(folder, out) -> Path:
    """Write the weights of ``folder``'s ``checkpoint.pt`` (the last epoch trained) as a training
    run folder ``out`` (``model.safetensors`` + ``manifest_entry.json``: ``folder``'s entry with
    this file's sha256, the checkpoint's epoch and its last validation). ``out`` must not be
    ``folder``; returns ``out``."""
    import torch

    from ..registry import save_weights
    from .loop import stored_weights

    src, dst = Path(folder), Path(out)
    if dst.resolve() == src.resolve():
        raise ValueError(f"{out}: the last epoch goes into a folder of its own, not the run's")
    state = torch.load(src / "checkpoint.pt", map_location="cpu", weights_only=True)
    history = json.loads(state["history"])
    dst.mkdir(parents=True, exist_ok=True)
    doc = run_entry(src)
    doc["sha256"] = save_weights(stored_weights(state["model"]), dst / "model.safetensors",
                                 metadata={"recipe": doc["training"]["recipe"], "epoch": int(state["epoch"])})
    doc["training"] = {**doc["training"], "epochs_trained": int(state["epoch"]),
                       "validation": next((h["val"] for h in reversed(history) if h.get("val")), None)}
    (dst / "manifest_entry.json").write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return dst
