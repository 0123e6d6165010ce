"""A training run's output folder read as a model: its manifest entry and its network, the
weights checked against the entry's sha256. For a prior trained but not installed, and for
scoring an ablation beside the bundled models without installing it."""

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
