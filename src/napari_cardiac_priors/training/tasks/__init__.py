"""What the one training loop (:mod:`..loop`) needs to know about each model family.

A task loads a recipe's data, cuts an epoch into batches, computes the loss of a batch (for
the training stage of the epoch), says which parameters the stage trains, validates, and may
finish the network after training (the T-L code statistics). :func:`make_task` picks the task
from the recipe's architecture. One module per family; the loss arithmetic is in
:mod:`napari_cardiac_priors.nn.losses`.

- :mod:`.base`: the :class:`Task` interface and what all share; :mod:`.prior`: the frozen T-L
  network as a shape prior (hash-checked loading, where its grid lies in a volume).
- :class:`SegmentationTask` (:mod:`.segmentation`): SSLLN and the 2D U-Net on volumes
  (squared Dice + landmark CE).
- :class:`TLTask` (:mod:`.tl`): the T-L network in the paper's stages
  (``train_options["stages"]``: ``[["ae", epochs], ["predictor", epochs], ["joint", epochs]]``).
- :class:`ACNNTask` (:mod:`.acnn`): ACNN-Seg / ACNN-SR on phantom LR/HR pairs, with the prior
  of a frozen T-L model (``train_options["prior"]``: a registry name or a run folder; None = no prior).
- :class:`SliceTask` (:mod:`.slices`): SDNet (and the 2D U-Net baseline of its Table 1) on
  ACDC slices, with labels from only some training subjects (``train_options["labelled_subjects"]``).
- :class:`~napari_cardiac_priors.training.tasks.slab.SlabTask`: the slab network (``architecture="slab2d"``).
"""

from __future__ import annotations

from ..recipes import Recipe
from .acnn import ACNNTask, _pad_spec, _stack_slices, pad_probabilities
from .base import Task, _batches, _dice_per_class
from .prior import _tl_contract, load_frozen_tl, tl_sample_grid, volume_prior_loss
from .segmentation import SegmentationTask, validate_volumes
from .slices import SliceTask, acdc_slices
from .tl import TLTask, _fit_to, set_code_statistics, shift_inplane

__all__ = [
    "ACNNTask", "SegmentationTask", "SliceTask", "TLTask", "Task", "acdc_slices", "load_frozen_tl", "make_task",
    "pad_probabilities", "set_code_statistics", "shift_inplane", "tl_sample_grid", "validate_volumes", "volume_prior_loss",
    # private helpers that tests and benchmarks import from here
    "_batches", "_dice_per_class", "_fit_to", "_pad_spec", "_stack_slices", "_tl_contract",
]


def make_task(recipe: Recipe, *, device: str = "cpu", data_root=None) -> Task:
    """The training task of ``recipe`` (by its architecture, or ``data="acdc-slices"``)."""
    if recipe.architecture == "sdnet" or recipe.data == "acdc-slices":
        return SliceTask(recipe, device, data_root)
    if recipe.architecture == "slab2d":
        from .slab import SlabTask

        return SlabTask(recipe, device, data_root)
    if recipe.architecture in ("sslln", "unet2d"):
        return SegmentationTask(recipe, device, data_root)
    if recipe.architecture == "tl":
        return TLTask(recipe, device, data_root)
    if recipe.architecture == "acnn3d":
        return ACNNTask(recipe, device, data_root)
    raise ValueError(f"no training task for architecture {recipe.architecture!r}")
