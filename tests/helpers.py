"""Test helpers: tiny untrained models installed into the per-test user registry."""

from __future__ import annotations

import torch

from napari_cardiac_priors import registry
from napari_cardiac_priors.nn import build

TINY_CONTRACT = {
    "size": [16, 112, 112],
    "spacing": [None, 1.25, 1.25],
    "slice_spacing_range": [6.0, 12.0],
    "inplane_spacing_range": [0.9, 2.0],
    "normalisation": "percentile_1_99",
}


def install_tiny_sslln(tmp_path, *, name="tiny-sslln", n_classes=5, seed=0, contract=None) -> str:
    """An untrained SSLLN with the LR-phantom contract, installed as a user model."""
    torch.manual_seed(seed)
    config = {"n_slices": 16, "n_classes": n_classes, "n_landmarks": 7}
    net = build("sslln", config)
    path = tmp_path / f"{name}.safetensors"
    registry.save_weights(net.state_dict(), path)
    registry.add_model(path, {
        "name": name, "version": "0", "task": "segmentation", "architecture": "sslln", "config": config,
        "labels": {str(c): c for c in range(n_classes)}, "input": contract or TINY_CONTRACT,
        "description": "untrained test model", "license": "CC0-1.0",
    })
    return name


ACNN_CONTRACT = {"size": [None, 120, 120], "spacing": [10.0, 1.25, 1.25], "factor": 5, "normalisation": "percentile_1_99",
                 "slice_spacing_range": [8.0, 12.0], "inplane_spacing_range": [0.9, 2.0]}


def install_tiny_acnn(tmp_path, *, name="tiny-acnn", task="segmentation", seed=0) -> str:
    """An untrained ACNN 3D model (LR -> HR, factor 5), installed as a user model."""
    torch.manual_seed(seed)
    config = {"n_classes": 5 if task == "segmentation" else 1, "factor": 5, "widths": [4, 4, 4, 4], "up_channels": 2,
              "head_channels": 4, "task": task}
    net = build("acnn3d", config)
    path = tmp_path / f"{name}.safetensors"
    registry.save_weights(net.state_dict(), path)
    registry.add_model(path, {
        "name": name, "version": "0", "task": task, "architecture": "acnn3d", "config": config,
        "labels": {str(c): c for c in range(5)} if task == "segmentation" else {}, "input": ACNN_CONTRACT,
        "description": "untrained test model", "license": "CC0-1.0",
    })
    return name


def install_tiny_tl(tmp_path, *, name="tiny-tl", n_classes=5, shape=(48, 48, 48), spacing=(2.0, 1.25, 1.25), seed=0,
                    preview_blocks=None, pose=None) -> str:
    """An untrained T-L model with code statistics of random codes, installed as a user model
    (``pose``: the contract's, e.g. ``"lv-rv"``)."""
    import numpy as np

    from napari_cardiac_priors.training.tasks import set_code_statistics

    torch.manual_seed(seed)
    config = {"n_classes": n_classes, "shape": list(shape), "code_size": 8, "ae_widths": [4, 4, 4],
              "predictor_widths": [4, 4, 4, 4], **({"preview_blocks": preview_blocks} if preview_blocks else {})}
    net = build("tl", config)
    # an untrained encoder's last ReLU can zero the whole map (every code = the FC bias): shift it on
    torch.nn.init.constant_(net.autoencoder.encoder[-1][1].bias, 1.0)
    set_code_statistics(net, np.random.default_rng(seed).normal(size=(40, 8)))
    path = tmp_path / f"{name}.safetensors"
    registry.save_weights(net.state_dict(), path)
    registry.add_model(path, {
        "name": name, "version": "0", "task": "shape-prior", "architecture": "tl", "config": config,
        "input": {"size": list(shape), "spacing": list(spacing), **({"pose": pose} if pose else {})},
        "description": "untrained test model", "license": "CC0-1.0",
    })
    return name


SLAB_CONTRACT = {"slab": 3, "slab_spacing_mm": 8.0, "spacing": [None, 1.6, 1.6], "multiple": 16, "roi_size": [32, 32],
                 "slice_spacing_range": [1.0, 12.0], "inplane_spacing_range": [0.5, 2.5],
                 "normalisation": "percentile_1_99", "min_slices": 2}


def install_tiny_slab(tmp_path, *, name="tiny-slab", seed=0, n_landmarks=4, slab=3) -> str:
    """An untrained small slab network (the sslln-acdc contract), installed as a user model."""
    torch.manual_seed(seed)
    config = {"slab": slab, "n_classes": 4, "n_landmarks": n_landmarks, "base": 4, "depth": 2}
    net = build("slab2d", config)
    path = tmp_path / f"{name}.safetensors"
    registry.save_weights(net.state_dict(), path)
    registry.add_model(path, {
        "name": name, "version": "0", "task": "segmentation", "architecture": "slab2d", "config": config,
        "labels": {str(c): c for c in range(4)}, "input": {**SLAB_CONTRACT, "slab": slab},
        "description": "untrained test model", "license": "CC0-1.0",
    })
    return name
