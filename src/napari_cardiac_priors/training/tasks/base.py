"""What every training task shares: the :class:`Task` interface the loop calls, batch
indices, per-class Dice, and the frozen T-L prior of ``train_options["prior"]``."""

from __future__ import annotations

import numpy as np

from ..recipes import Recipe
from .options import Options
from .prior import _tl_contract, load_frozen_tl, prior_identity


def _batches(n: int, batch_size: int, rng):
    """The index arrays of one epoch: a permutation of ``range(n)`` cut into full batches."""
    order = rng.permutation(n)
    return [order[b : b + batch_size] for b in range(0, n - batch_size + 1, batch_size)]


def _dice_per_class(pred: np.ndarray, ref: np.ndarray, classes) -> list[float]:
    from ...metrics import dice

    return [dice(pred == c, ref == c) for c in classes]


class Task:
    """What a model family brings to the training loop (:func:`..loop.train`): ``load(ids)``
    (cases), ``batches(items, rng)``, ``loss(net, batch, stage)`` (a scalar tensor, or a pair
    of it and a dict of its terms' values, averaged per epoch into the history's ``terms``),
    ``validate(net, items)`` (a dict with ``score``) and the hooks below."""

    #: the typed ``train_options`` this task reads (:mod:`.options`); any other key is refused
    Options = Options
    #: config keys of parts that :meth:`finish` fits afresh: ``--init`` may change them (their
    #: weights then start new), while any other change of the configuration is refused
    refitted: tuple = ()

    def __init__(self, recipe: Recipe, device: str, data_root=None):
        self.options = self.Options.parse(recipe.train_options, recipe=recipe.name)
        self.recipe, self.device, self.data_root = recipe, device, data_root
        self._prior = None
        self._prior_spacing = self._prior_pose = None

    def prior(self):
        """The frozen T-L network of the ``prior`` option (None: no shape prior), loaded once."""
        name = getattr(self.options, "prior", None)
        if not name:
            return None
        if self._prior is None:
            self._prior = load_frozen_tl(name, device=self.device)
            contract = _tl_contract(name)
            self._prior_spacing = tuple(float(v) for v in contract["spacing"])
            self._prior_pose = contract.get("pose")
        return self._prior

    def provenance(self) -> dict:
        """What the trained weights depend on besides the recipe's data, for the manifest's
        ``training``: the shape prior's identity (``{"prior": {"name", "version", "sha256"}}``)."""
        name = getattr(self.options, "prior", None)
        return {"prior": prior_identity(name)} if name else {}

    def stage(self, epoch: int) -> str:
        """The training stage of (0-based) ``epoch``."""
        return "train"

    def trainable(self, net, stage: str):
        return net.parameters()

    def calibrate(self, net, items) -> None:
        """Before a validation: bring statistics the network keeps outside its gradients (batch
        norm) in line with the data it will see; nothing by default."""

    def finish(self, net, items) -> bool:
        """Called once after training with the best weights loaded; True if it changed the network
        (the weights are then saved again)."""
        return False
