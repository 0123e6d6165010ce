"""Training recipes: everything a bundled model is trained with, as data (dataclasses).

``cardiac-priors train RECIPE`` runs one (see :mod:`.loop`). Each is reproducible from its
seed and resumable from its checkpoint.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from ..io.acdc import ACDC_CITATION, ACDC_LICENSE

#: ACDC validation patients held out of every ACDC recipe: 4 per group (ids divisible by 5).
ACDC_VALIDATION = tuple(range(5, 101, 5))
ACDC_TRAINING = tuple(i for i in range(1, 101) if i not in ACDC_VALIDATION)

SSLLN_CITATION = (
    "J. Duan et al., Automatic 3D bi-ventricular segmentation of cardiac images by a shape-refined "
    "multi-task deep learning approach, IEEE TMI 38(9), 2151-2164, 2019"
)


@dataclass
class Recipe:
    name: str
    description: str
    architecture: str
    config: dict
    input: dict
    data: str  # "acdc" | "phantom-hr" | "phantom-lr"
    train_ids: tuple
    val_ids: tuple
    epochs: int = 60
    batch_size: int = 4
    lr: float = 1e-3
    #: "constant"; "cosine": lr * (1 + cos(pi * epoch / epochs)) / 2, set at each epoch start;
    #: "cosine-stage": the same over each run of epochs of one training stage
    lr_schedule: str = "constant"
    #: in-plane training crop (Y, X) in model voxels, centred like the model grid; None = contract size
    train_crop: tuple | None = None
    weight_decay: float = 5e-5
    alpha: float = 0.8
    landmark_radius_mm: float = 5.0
    augment: dict = field(default_factory=dict)
    #: task-specific training options (T-L stages, the ACNN prior and its weight, motion, crop)
    train_options: dict = field(default_factory=dict)
    seed: int = 0
    #: a registry model whose weights start a new training (see :func:`.loop.warm_start`): the
    #: trunk of a slab model goes into a wider slab's centre slice, new heads start at random
    warm_start: str | None = None
    val_every: int = 5
    license: str = ""
    citation: str = ""
    version: str = "1.0"

    def as_dict(self) -> dict:
        return asdict(self)


_ACDC_INPUT = {
    "size": [24, 160, 160],
    "spacing": [None, 1.6, 1.6],
    "slice_spacing_range": [4.0, 12.0],
    "inplane_spacing_range": [0.5, 2.5],
    "normalisation": "percentile_1_99",
}
#: What every ACDC recipe shares: input contract, data, split, budget and licence.
_ACDC = dict(
    input=_ACDC_INPUT, data="acdc", train_ids=ACDC_TRAINING, val_ids=ACDC_VALIDATION, epochs=80,
    lr_schedule="cosine", train_crop=(128, 128), version="1.1",
    license=f"{ACDC_LICENSE} (weights trained on ACDC; non-commercial research only)",
)

#: The slab contract of the real-scan models: any slice count and thickness (see contract.slab_indices)
_SLAB_INPUT = {
    "slab": 3,
    "slab_spacing_mm": 8.0,
    "spacing": [None, 1.6, 1.6],
    "multiple": 16,
    "roi_size": [144, 144],  # inference: a 230 mm field of view centred on the heart found at locate_spacing
    "locate_spacing": 2.0,
    "slice_spacing_range": [1.0, 12.0],
    "inplane_spacing_range": [0.5, 2.5],
    "normalisation": "percentile_1_99",
    "min_slices": 2,
}
#: What the two real-scan recipes share: data, split, augmentation, crop, schedule and CPU budget.
_SLAB = dict(
    data="acdc", train_ids=ACDC_TRAINING, val_ids=ACDC_VALIDATION, epochs=32, batch_size=8, lr=1e-3,
    lr_schedule="cosine", train_crop=(128, 128), val_every=2, version="2.0", landmark_radius_mm=4.0,
    train_options={"samples_per_epoch": 2000, "augment_strength": 1.0},
    license=f"{ACDC_LICENSE} (weights trained on ACDC; non-commercial research only)",
)

RECIPES = {
    "sslln-acdc": Recipe(
        name="sslln-acdc",
        description="SSLLN on real cine short-axis MR, any stack: a slab of 3 neighbouring slices in, the centre "
                    "slice's LV, MYO, RV and in-plane landmark map out, slid over the stack; six landmarks "
                    "(apex and mitral valve from the anatomy of the labels, RV insertions named from the geometry)",
        architecture="slab2d",
        config={"slab": 3, "n_classes": 4, "n_landmarks": 4, "base": 16, "depth": 4},
        input={**_SLAB_INPUT},
        citation=f"ACDC: {ACDC_CITATION}. Method: {SSLLN_CITATION}",
        # 2.2: the bundled unet-acdc's trunk (on the centre slice of the slab) with the landmark head trained
        # on it. Measured on the validation patients (BENCHMARKS.md): 2.0 (both heads from scratch, 32
        # epochs) ended 0.03-0.05 Dice below unet-acdc; joint training from this warm start lowered the
        # mean Dice from 0.883 to 0.827-0.869 (2.1 at 3e-4, 2.2's joint stage at 2e-4), so the trunk stays
        # as unet-acdc trained it and only the head learns
        # Tried and not kept (2026-12-02, BENCHMARKS.md): a 'trunk' stage first (segmentation loss alone,
        # the neighbour slices' weights from zero, 8 epochs at 2e-4 constant, then the head 3): validation
        # mean Dice 0.884 / 0.873 / 0.831 / 0.863 / 0.863 at epochs 2-10, below 2.2's 0.887
        **{**_SLAB, "version": "2.2", "warm_start": "unet-acdc", "epochs": 3, "lr": 2e-4, "val_every": 1,
           "train_options": {**_SLAB["train_options"], "stages": [["head", 3]]}},
    ),
    "unet-acdc": Recipe(
        name="unet-acdc",
        description="Plain 2D U-Net on real cine short-axis MR (LV, MYO, RV), slid over the stack slice by slice; "
                    "the sslln-acdc trunk, data, augmentation and budget without the slab and the landmark head",
        architecture="slab2d",
        config={"slab": 1, "n_classes": 4, "n_landmarks": 0, "base": 16, "depth": 4},
        input={**_SLAB_INPUT, "slab": 1},
        citation=f"ACDC: {ACDC_CITATION}",
        # 2.1: 2.0 (32 epochs) continued to 48 (`train unet-acdc --init unet-acdc --epochs 48`), batch-norm
        # statistics re-estimated before each validation
        **{**_SLAB, "version": "2.1"},
    ),
    "acnn-seg-acdc": Recipe(
        name="acnn-seg-acdc",
        description="ACNN-Seg on real cine short-axis MR (LV, MYO, RV), any stack: the unet-acdc U-Net slid over "
                    "the stack, fine-tuned with the tl-acdc shape prior (lambda1 0.01) on whole cases",
        architecture="slab2d",
        config={"slab": 1, "n_classes": 4, "n_landmarks": 0, "base": 16, "depth": 4},
        input={**_SLAB_INPUT, "slab": 1},
        citation=f"ACDC: {ACDC_CITATION}. Method: O. Oktay et al., IEEE TMI 37(2), 384-395, 2018",
        # 2.0: the slab contract and augmentation of unet-acdc (1.1 was a whole-stack 2D U-Net of at most 24 slices)
        **{**_SLAB, "warm_start": "unet-acdc", "epochs": 10, "lr": 3e-4,
           "train_options": {**_SLAB["train_options"], "prior": "tl-acdc", "lambda1": 0.01, "prior_every": 2}},
    ),
    "sslln-hr-phantom": Recipe(
        name="sslln-hr-phantom",
        description="SSLLN-HR on HR phantoms (1.25 x 1.25 x 2 mm): LV, MYO, RV, RV wall + exact landmarks",
        architecture="sslln",
        config={"n_slices": 64, "n_classes": 5, "n_landmarks": 7},
        input={"size": [64, 112, 112], "spacing": [2.0, 1.25, 1.25], "slice_spacing_range": [1.5, 2.5],
               "inplane_spacing_range": [0.9, 1.6], "normalisation": "percentile_1_99", "min_slices": 32},
        data="phantom-hr",
        train_ids=tuple(range(1000, 1060)),
        val_ids=tuple(range(9000, 9010)),
        epochs=20,
        landmark_radius_mm=4.0,
        augment={"slice_shift_prob": 0.0},
        license="BSD-3-Clause (trained on synthetic phantoms only)",
        citation=SSLLN_CITATION,
    ),
    "sslln-lr-phantom": Recipe(
        name="sslln-lr-phantom",
        description="SSLLN-LR on artefact-corrupted LR phantom stacks (10 mm, shifted and missing slices); targets are the HR truth on the LR grid",
        architecture="sslln",
        config={"n_slices": 16, "n_classes": 5, "n_landmarks": 7},
        input={"size": [16, 112, 112], "spacing": [None, 1.25, 1.25], "slice_spacing_range": [6.0, 12.0],
               "inplane_spacing_range": [0.9, 2.0], "normalisation": "percentile_1_99"},
        data="phantom-lr",
        train_ids=tuple(range(2000, 2100)),
        val_ids=tuple(range(9100, 9110)),
        epochs=30,
        landmark_radius_mm=6.0,
        augment={"slice_shift_prob": 0.0},
        license="BSD-3-Clause (trained on synthetic phantoms only)",
        citation=SSLLN_CITATION,
    ),
}


ACNN_CITATION = (
    "O. Oktay et al., Anatomically Constrained Neural Networks (ACNN): Application to Cardiac Image "
    "Enhancement and Segmentation, IEEE TMI 37(2), 384-395, 2018"
)
_PHANTOM_LICENSE = "BSD-3-Clause (trained on synthetic phantoms only)"
#: ACNN phantom recipes: 100 subjects (ED + ES), LR stacks of 10 mm slices -> 2 mm HR grid (K = 5)
_PHANTOM_PAIRS = dict(data="phantom-pairs", train_ids=tuple(range(3000, 3100)), val_ids=tuple(range(9200, 9210)),
                      license=_PHANTOM_LICENSE, citation=ACNN_CITATION)
_TL_SHAPE = [60, 120, 120]  # the LR-aligned HR grid (5 x up to 12 LR slices, 120 x 120 at 2 x 1.25 x 1.25 mm), as the paper's
_ACNN_CONFIG = {"n_classes": 5, "factor": 5, "widths": [16, 32, 64, 64], "up_channels": 4, "head_channels": 16}
_ACNN_INPUT = {"size": [None, 120, 120], "spacing": [10.0, 1.25, 1.25], "factor": 5, "normalisation": "percentile_1_99",
               "slice_spacing_range": [8.0, 12.0], "inplane_spacing_range": [0.9, 2.0]}

RECIPES.update({
    "tl-phantom": Recipe(
        name="tl-phantom",
        description="T-L network on HR phantom labels (5 labels, 60 x 120 x 120 at 2 x 1.25 x 1.25 mm): label autoencoder "
                    "with a 64-d linear code + predictor from HR images; code mean/std/covariance stored",
        architecture="tl",
        config={"n_classes": 5, "shape": _TL_SHAPE, "code_size": 64, "predictor_widths": [8, 16, 32, 64],
                "preview_blocks": 1},
        input={"size": _TL_SHAPE, "spacing": [2.0, 1.25, 1.25], "normalisation": "percentile_1_99"},
        # CPU budget (about 30 min on one core): a 60 x 120 x 120 autoencoder step costs ~1 s per case.
        # 1.1: 1.0's weights with a preview head (a coarse whole volume for the sliders, a small part of the
        # decoding's cost) fitted after training: `train tl-phantom --init tl-phantom` (no epoch runs)
        # 1.2: 1.1 under-fitted (training = held-out Dice, MYO 0.53): continued with `--init tl-phantom
        # --epochs 21` (8 more autoencoder epochs with a squared-Dice term, then 3 predictor epochs) and a
        # preview head on the first decoder block only (half the preview's cost)
        epochs=21, batch_size=4, weight_decay=5e-6, version="1.2",
        train_options={"stages": [["ae", 6], ["predictor", 3], ["joint", 1], ["ae", 8], ["predictor", 3]],
                       "swap_p": 0.1, "crop": [120, 120], "factor": 5, "preview_steps": 300, "dice_weight": 1.0},
        **_PHANTOM_PAIRS,
    ),
    "tl-acdc": Recipe(
        name="tl-acdc",
        description="T-L network on ACDC label volumes (LV, MYO, RV) resampled to a fixed 12 x 96 x 96 grid "
                    "(10 x 1.6 x 1.6 mm, centred on the heart, on its own axes: base to apex, LV to RV); "
                    "code mean/std/covariance stored",
        architecture="tl",
        config={"n_classes": 4, "shape": [12, 96, 96], "code_size": 64, "predictor_widths": [8, 16, 32, 64],
                "strides": [[1, 2, 2], [2, 2, 2], [1, 2, 2], [1, 2, 2]]},
        input={"size": [12, 96, 96], "spacing": [10.0, 1.6, 1.6], "normalisation": "percentile_1_99", "pose": "lv-rv"},
        # 1.1: 1.0 (stages 15/10/5, cross-entropy alone) reconstructed the myocardium at Dice 0.58; longer
        # stages, a squared-Dice term and in-plane shifts of up to 6 voxels (~10 mm) gave 0.65.
        # 1.2: 1.1 reconstructed its own training shapes hardly better than held-out ones (MYO 0.68 / 0.65:
        # under-fitting, BENCHMARKS.md): with the paper's strides (z 1-2-2-3) a 12 x 96 x 96 grid leaves a
        # 1 x 4 x 4 map, 16 numbers, before the 64-d code. Strides z 1-2-1-1, y/x 2-2-2-2 leave 6 x 6 x 6
        # 1.3: 1.2's best weights (epoch 40: AE 30, predictor 10; still rising) continued with `--init tl-acdc
        # --epochs 120`: 60 more autoencoder epochs, then 20 predictor epochs for the moved codes (best: 15)
        # 1.4: 1.3 continued with `--init tl-acdc --epochs 145`: 20 autoencoder epochs and 10 predictor epochs,
        # each run on a cosine from lr to 0 (1.3 ran at a constant rate, and its held-out autoencoder Dice
        # moved by up to 0.04 from one validation to the next); best at epoch 140 (5 predictor epochs)
        # 1.5: 1.4 continued with `--init tl-acdc --epochs 195`: 40 more autoencoder epochs and 10 predictor
        # epochs on cosine-stage; the autoencoder has levelled off (held-out MYO 0.775 -> 0.781, BENCHMARKS.md)
        # 1.6: shapes on the heart's own axes (`pose: lv-rv`: z base -> apex, x towards the RV) instead of
        # the stack's: PCA of the training shapes carried held-out MYO at 0.725 -> 0.759 (64 components) and
        # classified 5 groups at 83.2 -> 88.0 % that way (BENCHMARKS.md); 1.5 continued with `--init tl-acdc
        # --epochs 245` on the posed grid: 40 autoencoder and 10 predictor epochs
        # 1.7: 1.6 continued with `--init tl-acdc --epochs 280`: 30 more autoencoder and 5 predictor epochs
        # on the posed grid (held-out reconstruction 0.887 / 0.777 / 0.828 -> 0.890 / 0.782 / 0.836)
        epochs=280, batch_size=8, weight_decay=5e-6, data="acdc", train_ids=ACDC_TRAINING, val_ids=ACDC_VALIDATION,
        val_every=5, version="1.7", lr_schedule="cosine-stage",
        train_options={"stages": [["ae", 30], ["predictor", 10], ["ae", 60], ["predictor", 15], ["ae", 20],
                                  ["predictor", 10], ["ae", 40], ["predictor", 10], ["ae", 40],
                                  ["predictor", 10], ["ae", 30], ["predictor", 5]], "swap_p": 0.1,
                       "dice_weight": 1.0,
                       "shift_px": 6},
        license=_ACDC["license"], citation=f"ACDC: {ACDC_CITATION}. Method: {ACNN_CITATION}",
    ),
})


def _acnn_recipe(name: str, description: str, *, task: str, prior: str | None, motion: bool = True,
                 epochs: int = 3, version: str = "1.0", zero_slices_p: float = 0.0) -> Recipe:
    config = {**_ACNN_CONFIG, "task": task, **({} if task == "segmentation" else {"n_classes": 1})}
    options = {"prior": prior, "motion": motion, "noise_sd": 0.02, "crop": [120, 120]}
    if zero_slices_p:
        options["zero_slices_p"] = zero_slices_p
    if prior:
        options["lambda1"] = 0.01
    return Recipe(name=name, description=description, architecture="acnn3d", config=config, input=_ACNN_INPUT,
                  epochs=epochs, lr_schedule="cosine", batch_size=2, weight_decay=5e-6, train_options=options,
                  **{**_PHANTOM_PAIRS, "version": version})  # CPU budget: 3 x 200 cases, ~12 min on one core


for _r in (
    # the segmentation trio, the same budget for each: 1.0 (3 epochs) continued to 9 (1.1) with
    # `train NAME --init NAME --epochs 9` (BENCHMARKS.md Table I); 1.2: acnn-seg-phantom and
    # seg3d-phantom continued to 12 (`--epochs 12`), ACNN-Seg's last 3 with tl-phantom 1.2 as the prior;
    # 1.3: both continued to 15 with half the training stacks missing 1-2 interior LR slices (zero_slices_p;
    # `benchmarks/train_variant.py NAME --set zero_slices_p=0.5 --init NAME --epochs 15`): 1.2 lost the whole
    # volume to one zero-filled slice (Dice LV 0.67-0.72), 1.3 keeps 0.92 at a cost of 0.1-0.35 mm HD95 on
    # complete stacks (BENCHMARKS.md)
    _acnn_recipe("acnn-seg-phantom", "ACNN-Seg: LR stack (10 mm) -> HR labels (2 mm), trained with the tl-phantom shape "
                 "prior (lambda1 0.01), motion augmentation and zero-filled slices", task="segmentation",
                 prior="tl-phantom", epochs=15, version="1.3", zero_slices_p=0.5),
    _acnn_recipe("seg3d-phantom", "3D-Seg baseline: the ACNN-Seg network and training without the shape prior "
                 "(motion augmentation and zero-filled slices kept)", task="segmentation", prior=None, epochs=15,
                 version="1.3", zero_slices_p=0.5),
    _acnn_recipe("seg3d-nomotion-phantom", "3D-Seg without prior and without motion augmentation (Table I's first row; "
                 "benchmark only)", task="segmentation", prior=None, motion=False, epochs=9, version="1.1"),
    # the SR pair, the same budget for both: 1.0 (3 epochs) continued to 6 (1.1), 9 (1.2) and 12 (1.3)
    # with `train sr-phantom --init sr-phantom --epochs 6` (9, 12), the same for acnn-sr-phantom
    # (BENCHMARKS.md Table III)
    _acnn_recipe("acnn-sr-phantom", "ACNN-SR: LR stack (10 mm) -> HR image (2 mm), smooth-L1 + tl-phantom predictor "
                 "code distance", task="super-resolution", prior="tl-phantom", epochs=12, version="1.3"),
    _acnn_recipe("sr-phantom", "SR baseline: the ACNN-SR network and training without the T-L prior",
                 task="super-resolution", prior=None, epochs=12, version="1.3"),
):
    RECIPES[_r.name] = _r


SDNET_CITATION = (
    "A. Chartsias et al., Disentangled representation learning in cardiac image analysis, "
    "Medical Image Analysis 58, 101535, 2019"
)
_SLICES = dict(data="acdc-slices", train_ids=ACDC_TRAINING, val_ids=ACDC_VALIDATION, batch_size=4, lr=1e-4, val_every=1,
               weight_decay=0.0, license=_ACDC["license"], version="1.0")
_SDNET_CONFIG = {"n_anatomy": 8, "n_z": 8, "n_classes": 4, "size": 224, "base": 16, "film_width": 16, "seg_width": 64,
                 "disc_base": 16}
_SDNET_INPUT = {"size": [224, 224], "spacing": [1.37, 1.37], "normalisation": "percentile_5_95_sym"}
_SLICE_OPTIONS = {"rotation_deg": 90.0, "size": [224, 224], "spacing": [1.37, 1.37], "betas": [0.5, 0.999]}
for _frac, _k in (("", None), ("-6pc", 5), ("-1pc", 1)):
    RECIPES[f"sdnet-acdc{_frac}"] = Recipe(
        name=f"sdnet-acdc{_frac}",
        description="SDNet on ACDC slices (1.37 mm, 224 x 224, [-1, 1]): binary anatomy (8 channels) + modality z (8)"
                    + (f"; labels from {_k} of the 80 training patients, the rest unlabelled" if _k else "; all labels"),
        architecture="sdnet", config=_SDNET_CONFIG, input=_SDNET_INPUT, epochs=30,
        # the mask critic joins after a 4-epoch warm-up: from the first step (the paper's schedule) its
        # loss term swamped the others on this CPU budget (after 2 epochs: validation Dice 0.12,
        # reconstruction MAE 0.48; without it: 0.49 and 0.16); BENCHMARKS.md has the comparison
        train_options={**_SLICE_OPTIONS, "labelled_subjects": _k, "adversarial_from_epoch": 4},
        citation=f"ACDC: {ACDC_CITATION}. Method: {SDNET_CITATION}", **_SLICES)
    RECIPES[f"unet-slices-acdc{_frac}"] = Recipe(
        name=f"unet-slices-acdc{_frac}",
        description="2D U-Net on ACDC slices, the baseline of SDNet's Table 1"
                    + (f"; labels from {_k} of the 80 training patients" if _k else "; all labels"),
        architecture="unet2d", config={"n_slices": 1, "n_classes": 4, "base": 16, "depth": 4}, input=_SDNET_INPUT,
        epochs=30, train_options={**_SLICE_OPTIONS, "labelled_subjects": _k},
        citation=f"ACDC: {ACDC_CITATION}", **{**_SLICES, "val_every": 5})  # short epochs: validate every 5
# sdnet-acdc 1.1: 1.0's 6 epochs (4 warm-up, 2 with the critic), then 2 epochs in which only the modality
# encoder and the decoder learn (`train sdnet-acdc --init sdnet-acdc --epochs 8`): the critic had pulled
# the anatomy towards the masks and the reconstruction from MAE 0.13 to 0.25 (BENCHMARKS.md); the anatomy,
# and so the segmentation, stay exactly as 1.0's
RECIPES["sdnet-acdc"] = replace(RECIPES["sdnet-acdc"], epochs=8, version="1.1",
                                train_options={**RECIPES["sdnet-acdc"].train_options, "decoder_from_epoch": 6})
# sdnet-acdc 1.2: 1.1 continued with `--init sdnet-acdc --epochs 12`, the whole network learning again
# (no decoder-only stage), the mask critic at 1 instead of 10 and the anatomy round trip at 2: held-out
# Dice 0.841 -> 0.854, reconstruction r 0.850 -> 0.888, anatomy kept under z traversal 0.852 -> 0.939
# (BENCHMARKS.md, session 8)
RECIPES["sdnet-acdc"] = replace(RECIPES["sdnet-acdc"], epochs=12, version="1.2", train_options={
    **RECIPES["sdnet-acdc"].train_options, "decoder_from_epoch": None,
    "weights": {"adversarial": 1.0, "anatomy_round_trip": 2.0}})
# sdnet-acdc-1pc 1.1: 1.0's 6 epochs continued (`train sdnet-acdc-1pc --init sdnet-acdc-1pc --epochs 12`)
# with the mask critic's weight at 1 instead of 10 and the weights kept by validation Dice: at weight
# 10 the generator's adversarial term was 20 x the reconstruction term and its critic, whose real
# masks come from one patient's slices, won (BENCHMARKS.md)
RECIPES["sdnet-acdc-1pc"] = replace(RECIPES["sdnet-acdc-1pc"], epochs=12, version="1.1", train_options={
    **RECIPES["sdnet-acdc-1pc"].train_options, "weights": {"adversarial": 1.0}, "select_by": "dice"})

# sdnet-acdc-6pc 1.1: 1.0's 6 epochs continued for one epoch the same way (`train sdnet-acdc-6pc --init
# sdnet-acdc-6pc --epochs 7`): held-out Dice 0.715 -> 0.741, reconstruction r 0.932 (BENCHMARKS.md)
RECIPES["sdnet-acdc-6pc"] = replace(RECIPES["sdnet-acdc-6pc"], epochs=7, version="1.1", train_options={
    **RECIPES["sdnet-acdc-6pc"].train_options, "weights": {"adversarial": 1.0}, "select_by": "dice"})


def get_recipe(name: str) -> Recipe:
    from ..errors import InputError

    try:
        return RECIPES[name]
    except KeyError as e:
        raise InputError(f"unknown recipe {name!r}; recipes: {', '.join(sorted(RECIPES))}") from e
