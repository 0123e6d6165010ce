"""Pathology classification from shape codes: synthetic DCM-like vs HCM-like hearts."""

import json

import numpy as np
import torch

from napari_cardiac_priors import registry
from napari_cardiac_priors.classify import PCAFeatures, ShapeSet, cross_validate, fit_predict, restrict
from napari_cardiac_priors.io import write_volume
from napari_cardiac_priors.nn import build
from napari_cardiac_priors.volume import Volume


def _heart(rng, group: str) -> np.ndarray:
    """A (8, 64, 64) label map: a large thin-walled LV (DCM) or a small thick-walled one (HCM), plus RV."""
    lv_r, wall = (rng.uniform(14, 17), rng.uniform(3, 4)) if group == "DCM" else (rng.uniform(7, 9), rng.uniform(7, 9))
    zz, yy, xx = np.mgrid[:8, :64, :64]
    cy, cx = 32 + rng.uniform(-2, 2), 30 + rng.uniform(-2, 2)
    r = np.hypot(yy - cy, xx - cx)
    out = np.zeros((8, 64, 64), np.uint8)
    taper = 1.0 - zz / 12.0
    out[(r < (lv_r + wall) * taper)] = 2
    out[(r < lv_r * taper)] = 1
    rv = (np.hypot(yy - cy, xx - (cx + lv_r + wall + 6)) < 9 * taper) & (out == 0)
    out[rv] = 3
    return out


def _acdc_folder(root, n_per_group, seed, with_group=True):
    rng = np.random.default_rng(seed)
    affine = np.diag([1.6, 1.6, 10.0, 1.0])
    i = 0
    for group in ("DCM", "HCM"):
        for _ in range(n_per_group):
            i += 1
            p = root / f"patient{seed * 100 + i:03d}"
            p.mkdir(parents=True)
            (p / "Info.cfg").write_text(f"ED: 1\nES: 5\n{'Group: ' + group if with_group else ''}\n")
            for f in (1, 5):
                lab = _heart(rng, group)
                img = np.where(lab == 1, 900, np.where(lab == 2, 200, 400)).astype(np.int16)
                write_volume(Volume(img, affine=affine, kind="image"), p / f"{p.name}_frame{f:02d}.nii.gz")
                write_volume(Volume(lab, affine=affine, kind="labels"), p / f"{p.name}_frame{f:02d}_gt.nii.gz", label_scheme="acdc")
    return root


def _install_tiny_tl(tmp_path):
    torch.manual_seed(0)
    config = {"n_classes": 4, "shape": [12, 48, 48], "code_size": 16, "ae_widths": [4, 4, 4], "predictor_widths": [4, 4, 4, 4]}
    net = build("tl", config)
    registry.save_weights(net.state_dict(), tmp_path / "tl.safetensors")
    registry.add_model(tmp_path / "tl.safetensors", {
        "name": "tiny-tl-acdc", "version": "0", "task": "shape-prior", "architecture": "tl", "config": config,
        "input": {"size": [12, 48, 48], "spacing": [10.0, 1.6, 1.6]}, "license": "CC0-1.0"})
    return "tiny-tl-acdc"


def test_pca_features_separate_synthetic_groups():
    rng = np.random.default_rng(0)
    groups = ["DCM"] * 12 + ["HCM"] * 12 + ["NOR"] * 3
    shapes = ShapeSet([f"p{i}" for i in range(27)], groups, {"ed": [_heart(rng, g) for g in groups]})
    shapes = restrict(shapes, ["DCM", "HCM"])
    assert len(shapes.ids) == 24 and set(shapes.groups) == {"DCM", "HCM"}
    pca = PCAFeatures(n_components=8)
    x = pca.fit_transform(shapes)
    assert x.shape == (24, 8)
    cv = cross_validate(x, shapes.groups, folds=4)
    assert cv["accuracy"] >= 0.9 and sum(cv["confusion"]["DCM"].values()) == 12
    test = ShapeSet(["a", "b"], [None, None], {"ed": [_heart(rng, "DCM"), _heart(rng, "HCM")]})
    assert fit_predict(x, shapes.groups, pca.transform(test)) == ["DCM", "HCM"]


def test_repeated_cross_validation_sums_confusions_over_splits():
    rng = np.random.default_rng(1)
    y = ["A"] * 10 + ["B"] * 10
    x = np.concatenate([rng.normal(0, 1, (10, 3)), rng.normal(0.8, 1, (10, 3))])  # overlapping: splits matter
    one, three = cross_validate(x, y, folds=5), cross_validate(x, y, folds=5, repeats=3)
    assert three["accuracies"][0] == one["accuracy"] and len(three["accuracies"]) == 3
    assert three["accuracy"] == np.mean(three["accuracies"])
    assert sum(three["confusion"]["A"].values()) == 30 and sum(sum(r.values()) for r in three["confusion"].values()) == 60
    correct = sum(three["confusion"][g][g] for g in ("A", "B"))
    assert correct == round(60 * three["accuracy"])


def test_cli_classify_writes_predictions_and_refuses_bad_input(tmp_path, capsys):
    from napari_cardiac_priors.cli import main

    name = _install_tiny_tl(tmp_path)
    train = _acdc_folder(tmp_path / "train", 10, 1)
    test = _acdc_folder(tmp_path / "test", 2, 2, with_group=False)
    args = ["classify", "--train", str(train), "--test", str(test), "--shape-model", name, "--out", str(tmp_path / "pred.json")]
    assert main(args + ["--features", "pca"]) == 0
    pred = json.loads((tmp_path / "pred.json").read_text())
    assert pred == {"patient201": "DCM", "patient202": "DCM", "patient203": "HCM", "patient204": "HCM"}
    assert "10-fold CV accuracy" in capsys.readouterr().out
    assert main(args + ["--features", "tl"]) == 2  # exists
    assert main(args + ["--features", "tl", "--overwrite", "--repeats", "0"]) == 2
    assert "--repeats must be at least 1" in capsys.readouterr().err
    assert set(json.loads((tmp_path / "pred.json").read_text())) == set(pred)  # a refused run leaves it as it was
    cv_args = ["classify", "--train", str(train), "--shape-model", name, "--features", "pca", "--repeats", "2"]
    assert main(cv_args + ["--out", str(tmp_path / "cv.json")]) == 0
    cv = json.loads((tmp_path / "cv.json").read_text())["cross_validation"]
    assert len(cv["accuracies"]) == 2 and "over 2 splits" in capsys.readouterr().out
    assert main(args + ["--features", "tl", "--overwrite"]) == 0
    assert set(json.loads((tmp_path / "pred.json").read_text())) == set(pred)
    assert main(["classify", "--train", str(test), "--shape-model", name, "--out", str(tmp_path / "x.json")]) == 2
    assert "needs a Group" in capsys.readouterr().err
