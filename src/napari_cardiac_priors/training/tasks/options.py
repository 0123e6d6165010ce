"""Typed training options: what each task reads from a recipe's ``train_options``, with its
default, in one place. A key the task does not read is refused, so a misspelt key never falls
back to a default in silence. Lists (as JSON and recipes write them) become tuples."""

from __future__ import annotations

from dataclasses import dataclass, field, fields


@dataclass(frozen=True)
class Options:
    """Read by every task (the training loop)."""

    #: Adam's betas
    betas: tuple = (0.9, 0.999)

    @classmethod
    def parse(cls, values: dict, *, recipe: str = "?"):
        """``cls`` from a recipe's ``train_options`` dict; ValueError names any unknown key."""
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ValueError(f"recipe {recipe!r}: unknown train_options {unknown}; {cls.__name__} reads {sorted(names)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


@dataclass(frozen=True)
class PriorOptions(Options):
    """A segmentation task with ACNN's optional shape prior."""

    #: a frozen T-L model (a registry name or a run folder) whose code distance is the prior; None: none
    prior: str | None = None
    #: the prior's weight (ACNN eq. 2)
    lambda1: float = 0.01


@dataclass(frozen=True)
class ACNNOptions(PriorOptions):
    """ACNN-Seg / ACNN-SR on phantom LR/HR pairs."""

    #: simulated breath-hold motion between the LR slices
    motion: bool = True
    #: Gaussian noise sd of the LR input (normalised intensities)
    noise_sd: float = 0.02
    #: in-plane crop (y, x) voxels of the pairs
    crop: tuple = (120, 120)
    #: probability that a training stack has 1 to ``max_zero_slices`` interior LR slices set to
    #: zero (a lost or failed slice of a real acquisition); 0 disables it
    zero_slices_p: float = 0.0
    #: the most LR slices zero-filled in one stack
    max_zero_slices: int = 2


@dataclass(frozen=True)
class SlabOptions(PriorOptions):
    """Slab networks (sslln-acdc, unet-acdc, acnn-seg-acdc)."""

    #: ``((name, epochs), ...)`` of "trunk", "head", "joint"; None: "joint" throughout
    stages: tuple | None = None
    #: slab samples drawn per epoch
    samples_per_epoch: int = 2000
    #: augmentation strength (0 disables it)
    augment_strength: float = 1.0
    #: batches of plain training slabs that re-estimate batch norm before a validation (0: none)
    calibration_batches: int = 100
    #: the prior's whole case joins every this many batches
    prior_every: int = 1


@dataclass(frozen=True)
class TLOptions(Options):
    """The T-L network."""

    #: ``((ae|predictor|joint, epochs), ...)``; None: "ae" throughout
    stages: tuple | None = None
    #: label swap noise of the autoencoder's input
    swap_p: float = 0.1
    #: weight of a squared-Dice term beside the autoencoder's cross-entropy
    dice_weight: float = 0.0
    #: random in-plane shifts of each training case by up to this many voxels
    shift_px: int = 0
    #: weight of the code distance in the joint stage (scaled to the cross-entropy's range)
    joint_code_weight: float = 0.01
    #: phantom pairs: in-plane crop (y, x) and the LR -> HR factor
    crop: tuple = (120, 120)
    factor: int = 5
    #: a model with a preview head (config ``preview_blocks``): steps fitting it to the full
    #: decoding after training (:func:`~napari_cardiac_priors.nn.tl.fit_preview`)
    preview_steps: int = 300


@dataclass(frozen=True)
class SliceOptions(Options):
    """SDNet or a 2D U-Net on ACDC slices."""

    #: None: every training patient labelled; k: the first k of a seeded permutation
    labelled_subjects: int | None = None
    #: SDNet: the mask critic joins from this 0-based epoch (the epochs before: stage "warmup")
    adversarial_from_epoch: int = 0
    #: SDNet: from this 0-based epoch on (None: never) only the modality encoder and the decoder
    #: train, on the reconstruction, KL and z terms (stage "decoder"); the anatomy encoder, the
    #: segmentor and the critic stay as they are, batch norm statistics too
    decoder_from_epoch: int | None = None
    #: slice size (y, x) and pixel spacing (mm)
    size: tuple = (224, 224)
    spacing: tuple = (1.37, 1.37)
    #: uniform in-plane rotation in +- this many degrees (the paper's 90)
    rotation_deg: float = 90.0
    #: SDNet with labels withheld: labelled slices put into a batch that has none
    labelled_per_batch: int = 1
    #: SDNet: loss weights over the paper's
    weights: dict = field(default_factory=dict)
    #: SDNet: the validation score that picks the weights kept: "dice+reconstruction" (their mean,
    #: the reconstruction as Pearson r) or "dice" (a model whose use is its segmentation)
    select_by: str = "dice+reconstruction"

    def __post_init__(self):
        if self.select_by not in ("dice", "dice+reconstruction"):
            raise ValueError(f"select_by is 'dice' or 'dice+reconstruction', not {self.select_by!r}")
