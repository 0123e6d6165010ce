"""The command line's arguments (``build_parser``) and exit statuses."""

from __future__ import annotations

import argparse

from .. import __version__
from ..conventions import DEFAULT_MODEL
from ..errors import InputError

EXIT_BAD_INPUT = 2
EXIT_FAILURE = 1


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, as for every other bad input
        raise InputError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="cardiac-priors", description="Cardiac MR analysis with anatomical priors.")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    models = sub.add_parser("models", help="list, inspect and install models and atlas sets")
    msub = models.add_subparsers(dest="models_command", required=True, parser_class=_Parser)
    m = msub.add_parser("list", help="list the installed models")
    m.add_argument("--json", action="store_true", help="print JSON")
    m = msub.add_parser("info", help="show one model's manifest entry")
    m.add_argument("name")
    m.add_argument("--json", action="store_true", help="print JSON")
    m = msub.add_parser("add", help="install a safetensors model into the user model folder")
    m.add_argument("weights", help=".safetensors file")
    m.add_argument("--manifest", required=True, help="JSON file with the manifest entry (name, version, task, ...)")
    m.add_argument("--overwrite", action="store_true", help="replace an installed user model of the same name")
    m = msub.add_parser("remove", help="remove a user model")
    m.add_argument("name")

    ph = sub.add_parser("phantom", help="generate phantom subjects (HR image, labels, landmarks; LR stacks)")
    ph.add_argument("out_dir")
    ph.add_argument("--n", type=int, default=1, help="number of subjects (default 1)")
    ph.add_argument("--seed", type=int, default=0, help="seed of the set (default 0)")
    ph.add_argument("--pathology", choices=["NOR", "DCM", "HCM", "MINF", "RV"],
                    help="one pathology for all subjects (default: cycle through all five)")
    ph.add_argument("--lr", action="store_true", help="also write the artefact-corrupted LR stacks")
    ph.add_argument("--overwrite", action="store_true", help="replace existing phantom files")

    sg = sub.add_parser("segment", help="segment short-axis stacks (labels and, for SSLLN models, landmarks)")
    sg.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or DICOM folders")
    sg.add_argument("--model", default=DEFAULT_MODEL,
                    help=f"model name (default {DEFAULT_MODEL}, for real scans; see `cardiac-priors models list`)")
    sg.add_argument("--tta", action="store_true", help="average the four in-plane mirrorings (slab models; slower)")
    sg.add_argument("--out", required=True, help="output folder")
    sg.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default auto)")
    sg.add_argument("--frame", type=int, help="frame of a cine (4D) input")
    sg.add_argument("--series", help="DICOM series UID, for a folder that holds several (default: the one with most slices)")
    sg.add_argument("--overwrite", action="store_true", help="replace existing outputs")

    en = sub.add_parser("enhance", help="super-resolve short-axis stacks with an SR model (ACNN-SR)")
    en.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or DICOM folders")
    en.add_argument("--model", required=True, help="super-resolution model name, e.g. acnn-sr-phantom")
    en.add_argument("--out", required=True, help="output folder")
    en.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default auto)")
    en.add_argument("--overwrite", action="store_true", help="replace existing outputs")

    la = sub.add_parser("latent", help="encode with a T-L or SDNet model: code, reconstruction and traversal grid")
    la.add_argument("inputs", nargs="+", metavar="INPUT",
                    help="label maps (T-L) or image stacks (SDNet, or T-L with --from-image)")
    la.add_argument("--model", required=True, help="T-L or SDNet model name, e.g. tl-acdc or sdnet-acdc")
    la.add_argument("--out", required=True, help="output folder")
    la.add_argument("--slice", type=int, help="SDNet: the slice to encode (default: the middle one)")
    la.add_argument("--from-image", action="store_true", help="T-L: encode an image through the model's predictor")
    la.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default auto)")
    la.add_argument("--overwrite", action="store_true", help="replace existing outputs")

    rf = sub.add_parser("refine", help="refine a segmentation into a smooth HR shape by atlas propagation")
    rf.add_argument("image", help="the target image (its grid must match --seg)")
    rf.add_argument("--seg", required=True, help="the target segmentation (canonical labels)")
    rf.add_argument("--landmarks", required=True, help="the target landmarks (.json, .csv or .vtk)")
    rf.add_argument("--out", required=True, help="output folder")
    rf.add_argument("--atlases", default="auto", help="atlas set name or folder (default auto: atlases-acdc, or "
                    "atlases-phantom for labels with an RV wall)")
    rf.add_argument("--n-atlases", type=int, default=5, help="atlases kept after NMI ranking (default 5)")
    rf.add_argument("--fusion", choices=["majority", "patch"], default="majority", help="label fusion (default majority)")
    rf.add_argument("--init", choices=["landmarks", "labels"], default="landmarks", help="affine initialisation")
    rf.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    rf.add_argument("--mesh", nargs="?", const="vtk", choices=["vtk", "stl", "ply"],
                    help="also write smooth surfaces of the refined labels (LV endocardium, LV epicardium, RV) as "
                         "DIR/<stem>_<surface>.vtk (or stl, ply), world RAS mm")
    rf.add_argument("--overwrite", action="store_true", help="replace existing outputs")

    at = sub.add_parser("atlases", help="build atlas sets for refinement")
    asub = at.add_subparsers(dest="atlases_command", required=True, parser_class=_Parser)
    ab = asub.add_parser("build", help="install an atlas set: HR images segmented by an SSLLN-HR model, or "
                         "(--from-labels) labelled stacks of any slice thickness")
    ab.add_argument("dir", help="folder of HR images, or with --from-labels of label maps (.nii, .nii.gz, .mha, .nrrd)")
    ab.add_argument("--from-labels", action="store_true", help="build from label maps (e.g. manual labels of cine "
                    "short-axis stacks): breath-hold shifts corrected, shape-based interpolation to the HR grid")
    ab.add_argument("--label-values", choices=["canonical", "acdc"], default="canonical",
                    help="with --from-labels: canonical (1 LV, 2 MYO, 3 RV) or acdc (1 RV, 2 MYO, 3 LV)")
    ab.add_argument("--model", default="sslln-hr-phantom", help="SSLLN-HR model (default sslln-hr-phantom)")
    ab.add_argument("--name", help="atlas set name (default: the folder name)")
    ab.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    ab.add_argument("--overwrite", action="store_true", help="replace an installed set of the same name")

    tr = sub.add_parser("train", help="train a model from a recipe (reproducible, resumable)")
    tr.add_argument("recipe", help="recipe name, e.g. sslln-acdc")
    tr.add_argument("--data", help="data folder (ACDC: the folder holding training/)")
    tr.add_argument("--out", help="output folder (default training_runs/RECIPE)")
    tr.add_argument("--epochs", type=int, help="number of epochs (default: the recipe's)")
    tr.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    tr.add_argument("--init", metavar="MODEL", help="continue from an installed model of the same recipe "
                    "(its weights and epoch count; for machines that kept no checkpoint)")
    tr.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")

    ev = sub.add_parser("evaluate", help="Dice, HD95 and surface distance of predictions against references")
    ev.add_argument("--pred", required=True, help="folder of predicted label maps (and landmark JSON)")
    ev.add_argument("--gt", required=True, help="folder of reference label maps (and landmark JSON)")
    ev.add_argument("--json", action="store_true", help="print JSON instead of a table")

    me = sub.add_parser("measure", help="volumes (mL), masses (g) and ejection fractions of label maps")
    me.add_argument("seg", nargs="+", help="label map files")
    me.add_argument("--csv", help="write the table to this CSV file")
    me.add_argument("--overwrite", action="store_true", help="replace an existing --csv file")

    cl = sub.add_parser("classify", help="pathology classification from T-L shape codes (or PCA) of ACDC-layout patients")
    cl.add_argument("--train", required=True, help="ACDC-layout folder of training patients (Group in Info.cfg)")
    cl.add_argument("--test", help="ACDC-layout folder of patients to predict")
    cl.add_argument("--features", choices=["tl", "pca"], default="tl", help="T-L codes or the PCA baseline (default tl)")
    cl.add_argument("--phases", choices=["ed", "ed+es"], default="ed+es", help="segmentations used (default ed+es)")
    cl.add_argument("--groups", help="restrict to these groups, comma-separated (e.g. NOR,DCM,HCM)")
    cl.add_argument("--repeats", type=int, default=1, help="repeat the 10-fold cross-validation with other fold "
                    "splits and report the mean and spread (default 1)")
    cl.add_argument("--shape-model", default="tl-acdc", help="T-L model (default tl-acdc; also the PCA grid)")
    cl.add_argument("--model", default=DEFAULT_MODEL, help=f"segmentation model for phases without manual labels (default {DEFAULT_MODEL})")
    cl.add_argument("--out", required=True, help="JSON file: predictions with --test, else the cross-validation report")
    cl.add_argument("--overwrite", action="store_true", help="replace an existing --out file")

    ba = sub.add_parser("batch", help="segment (and refine) a cohort on dask.distributed, resumable, with provenance")
    ba.add_argument("cohort", help="ACDC-layout folder, folder of images, or CSV (subject, ed[, es, ed_labels, es_labels, group])")
    ba.add_argument("--out", required=True, help="output folder (a rerun skips finished subjects)")
    ba.add_argument("--model", default=DEFAULT_MODEL, help=f"segmentation model name (default {DEFAULT_MODEL})")
    ba.add_argument("--refine", action="store_true", help="refine each segmentation by atlas propagation")
    ba.add_argument("--atlases", default="auto", help="atlas set name or folder (default auto: atlases-acdc, or "
                    "atlases-phantom for labels with an RV wall)")
    ba.add_argument("--n-atlases", type=int, default=5, help="atlases kept after NMI ranking (default 5)")
    ba.add_argument("--scheduler", help="address of a running dask scheduler (default: a local cluster)")
    ba.add_argument("--workers", type=int, help="local cluster worker processes (default: 2 or the CPU count if smaller)")
    ba.add_argument("--device", default="auto", help="auto, cpu, cuda or mps, on every worker (default auto, as every "
                    "other command: decided here, where the run starts)")
    ba.add_argument("--shape-model", help="T-L shape model for the plausibility column (e.g. tl-phantom)")

    de = sub.add_parser("demo", help="napari with the plugin and sample data, or a headless run of the pipeline")
    de.add_argument("--out", help="output folder of the headless demo (default: the user cache folder's "
                    "napari-cardiac-priors/demo, never the current folder)")
    de.add_argument("--headless", action="store_true", help="no viewer: run the pipeline and print a summary")
    return p
