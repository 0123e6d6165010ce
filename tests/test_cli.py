"""The `cardiac-priors` command: outputs, JSON, and one stderr line + non-zero exit for bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest

from napari_cardiac_priors.cli import main
from napari_cardiac_priors.io import read_volume, write_volume
from napari_cardiac_priors.volume import Volume
from napari_cardiac_priors.workflows.evaluate import case_key


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_console_script_is_installed():
    r = subprocess.run([sys.executable, "-m", "napari_cardiac_priors.cli", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and "cardiac-priors" in r.stdout


def test_bad_arguments_one_line(capsys):
    code, out, err = run(capsys, "segmentation-of-everything")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "invalid choice" in err
    code, out, err = run(capsys, "phantom")
    assert code == 2 and len(err.strip().splitlines()) == 1


def test_models_list_and_info(capsys, tmp_path):
    import torch

    from napari_cardiac_priors import registry

    registry.save_weights({"w": torch.ones(2)}, tmp_path / "m.safetensors")
    (tmp_path / "entry.json").write_text(json.dumps({"name": "cli-tiny", "version": "0.1", "task": "test", "architecture": "none"}))
    code, out, err = run(capsys, "models", "add", tmp_path / "m.safetensors", "--manifest", tmp_path / "entry.json")
    assert code == 0, err
    code, out, _ = run(capsys, "models", "list", "--json")
    assert code == 0 and "cli-tiny" in [m["name"] for m in json.loads(out)]
    code, out, _ = run(capsys, "models", "info", "cli-tiny", "--json")
    assert json.loads(out)["sha256"] == registry.sha256_of(tmp_path / "m.safetensors")
    code, out, err = run(capsys, "models", "info", "no-such-model")
    assert code == 2 and "unknown model 'no-such-model'" in err and len(err.strip().splitlines()) == 1


def test_case_key():
    assert case_key("patient001_frame01_seg.nii.gz") == case_key("patient001_frame01_gt.nii.gz") == "patient001_frame01"
    assert case_key("phantom_000_ed_image_seg.nii.gz") == case_key("phantom_000_ed_labels.nii.gz") == "phantom_000_ed"
    assert case_key("phantom_000_ed_lr_image_seg.nii.gz") == case_key("phantom_000_ed_lr_labels.nii.gz")


def _pair(tmp_path):
    ref = np.zeros((8, 16, 16), np.uint8)
    ref[2:6, 4:12, 4:10] = 1
    ref[2:6, 4:12, 10:12] = 2
    pred = ref.copy()
    pred[2:6, 4:12, 9] = 2  # one column of LV called MYO
    (tmp_path / "pred").mkdir()
    (tmp_path / "gt").mkdir()
    write_volume(Volume(pred, spacing=(2, 1.25, 1.25), kind="labels"), tmp_path / "pred" / "case1_seg.nii.gz")
    write_volume(Volume(ref, spacing=(2, 1.25, 1.25), kind="labels"), tmp_path / "gt" / "case1_gt.nii.gz")
    return pred, ref


def test_evaluate(capsys, tmp_path):
    pred, ref = _pair(tmp_path)
    code, out, err = run(capsys, "evaluate", "--pred", tmp_path / "pred", "--gt", tmp_path / "gt", "--json")
    assert code == 0, err
    res = json.loads(out)
    lv = res["cases"]["case1"]["structures"]["LV"]
    assert lv["dice"] == pytest.approx(2 * 4 * 8 * 5 / (4 * 8 * 5 + 4 * 8 * 6))
    assert res["mean"]["MYO"]["dice"] < 1.0
    code, out, err = run(capsys, "evaluate", "--pred", tmp_path / "pred", "--gt", tmp_path / "nowhere")
    assert code == 2 and "no such folder" in err


def test_measure_with_ef(capsys, tmp_path):
    ed = np.zeros((10, 10, 10), np.uint8)
    ed[:8] = 1
    es = np.zeros_like(ed)
    es[:4] = 1
    for name, arr in (("s_ed_seg.nii.gz", ed), ("s_es_seg.nii.gz", es)):
        write_volume(Volume(arr, spacing=(1, 1, 1), kind="labels"), tmp_path / name)
    code, out, err = run(capsys, "measure", tmp_path / "s_ed_seg.nii.gz", tmp_path / "s_es_seg.nii.gz", "--csv", tmp_path / "m.csv")
    assert code == 0, err
    rows = (tmp_path / "m.csv").read_text().splitlines()
    assert rows[0].startswith("file,lv_ml") and "0.80" in rows[1] and rows[1].split(",")[7] == "50.00"


def test_measure_bad_labels(capsys, tmp_path):
    write_volume(Volume(np.full((3, 3, 3), 1200, np.int16), spacing=(1, 1, 1)), tmp_path / "img.nii.gz")
    code, out, err = run(capsys, "measure", tmp_path / "img.nii.gz")
    assert code == 2 and "unknown label values [1200]" in err and len(err.strip().splitlines()) == 1
    code, out, err = run(capsys, "measure", tmp_path / "missing_seg.nii.gz")
    assert code == 2 and "no such file" in err


def test_phantom_command_and_overwrite_guard(capsys, tmp_path):
    code, out, err = run(capsys, "phantom", tmp_path / "p", "--n", 2, "--seed", 3, "--lr")
    assert code == 0, err
    names = sorted(p.name for p in (tmp_path / "p").iterdir())
    assert len(names) == 2 * 2 * 6 and "phantom_001_es_lr_labels.nii.gz" in names
    info = json.loads((tmp_path / "p" / "phantom_001_ed_info.json").read_text())
    assert info["pathology"] == "DCM"  # subjects cycle NOR, DCM, HCM, MINF, RV
    before = (tmp_path / "p" / "phantom_000_ed_image.nii.gz").read_bytes()
    code, out, err = run(capsys, "phantom", tmp_path / "p", "--n", 1, "--seed", 4)
    assert code == 2 and "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "p" / "phantom_000_ed_image.nii.gz").read_bytes() == before
    code, out, err = run(capsys, "phantom", tmp_path / "q", "--n", 0)
    assert code == 2 and "--n must be at least 1" in err


def test_demo_headless(capsys, tmp_path):
    code, out, err = run(capsys, "demo", "--headless", "--out", tmp_path / "demo")
    assert code == 0, err
    assert "EF" in out and "Dice" in out and (tmp_path / "demo" / "phantom_000_ed_lr_image.nii.gz").exists()


def test_segment_command(capsys, tmp_path):
    from helpers import install_tiny_sslln

    from napari_cardiac_priors.phantom import make_subject

    name = install_tiny_sslln(tmp_path)
    ph = make_subject(5, pathology="NOR", lr=True)["ed"]
    write_volume(ph.lr_image, tmp_path / "case_lr.nii.gz")
    write_volume(Volume(np.zeros((30, 40, 40), np.int16) + np.arange(40, dtype=np.int16), spacing=(10, 1.25, 1.25)), tmp_path / "tall.nii.gz")
    code, out, err = run(capsys, "segment", tmp_path / "case_lr.nii.gz", tmp_path / "tall.nii.gz", "--model", name,
                         "--out", tmp_path / "out", "--device", "cpu")
    assert code == 2  # one of the two inputs is bad
    assert "tall.nii.gz" not in out and "handles at most 16" in err
    seg = read_volume(tmp_path / "out" / "case_lr_seg.nii.gz")
    assert seg.kind == "labels" and seg.shape == ph.lr_image.shape
    np.testing.assert_allclose(seg.affine, ph.lr_image.affine, atol=1e-5)
    assert (tmp_path / "out" / "case_lr_landmarks.json").exists()
    assert not (tmp_path / "out" / "tall_seg.nii.gz").exists()
    code, out, err = run(capsys, "segment", tmp_path / "case_lr.nii.gz", "--model", name, "--out", tmp_path / "out")
    assert code == 2 and "--overwrite" in err
    code, out, err = run(capsys, "segment", tmp_path / "case_lr.nii.gz", "--model", "nope", "--out", tmp_path / "o2")
    assert code == 2 and "unknown model 'nope'" in err


def test_train_and_resume(tmp_path):
    """Two epochs on four LR phantom cases, then a resumed third (seconds, not minutes)."""
    import json
    from dataclasses import replace

    from napari_cardiac_priors.training.loop import train
    from napari_cardiac_priors.training.recipes import get_recipe

    recipe = replace(get_recipe("sslln-lr-phantom"), train_ids=(1, 2), val_ids=(3,), val_every=1, epochs=2)
    events = []
    weights = train(recipe, tmp_path / "run", progress=events.append)
    assert weights.exists() and (tmp_path / "run" / "checkpoint.pt").exists()
    assert [e["epoch"] for e in events if e["event"] == "epoch"] == [1, 2]
    entry = json.loads((tmp_path / "run" / "manifest_entry.json").read_text())
    assert entry["name"] == "sslln-lr-phantom" and "dice_mean" in entry["training"]["validation"]
    events.clear()
    train(recipe, tmp_path / "run", epochs=3, resume=True, progress=events.append)
    assert [e["epoch"] for e in events if e["event"] == "epoch"] == [3]


def test_train_continues_from_an_installed_model(tmp_path, capsys):
    """--init: a run installed as a model (no checkpoint kept) is continued from its weights and epoch."""
    from dataclasses import replace

    import torch

    from napari_cardiac_priors import registry
    from napari_cardiac_priors.errors import InputError
    from napari_cardiac_priors.nn import build
    from napari_cardiac_priors.training.loop import _init_from, train
    from napari_cardiac_priors.training.recipes import get_recipe

    recipe = replace(get_recipe("sslln-lr-phantom"), train_ids=(1, 2), val_ids=(3,), val_every=1, epochs=1)
    train(recipe, tmp_path / "first")
    entry = json.loads((tmp_path / "first" / "manifest_entry.json").read_text())
    registry.add_model(tmp_path / "first" / "model.safetensors", {**entry, "name": "lr-first"})
    events = []
    train(recipe, tmp_path / "second", epochs=2, init="lr-first", progress=events.append)
    assert [e["epoch"] for e in events if e["event"] == "epoch"] == [2]  # the epoch count goes on
    net = build(recipe.architecture, recipe.config)
    assert _init_from(net, "lr-first", recipe, device="cpu") == 1
    (init,) = [e for e in events if e["event"] == "init"]  # the weights to beat, scored again before training
    second = json.loads((tmp_path / "second" / "manifest_entry.json").read_text())["training"]
    assert second["continued_from"]["name"] == "lr-first" and second["continued_from"]["epochs_trained"] == 1
    events.clear()  # resumed from the checkpoint: the model still says where its training started
    train(recipe, tmp_path / "second", epochs=3, resume=True, progress=events.append)
    assert [e["event"] for e in events] == ["data", "epoch"]
    third = json.loads((tmp_path / "second" / "manifest_entry.json").read_text())["training"]
    kept = torch.load(tmp_path / "second" / "checkpoint.pt", weights_only=True)
    assert json.loads(kept["started_from"]) == third["continued_from"] == second["continued_from"]
    assert init["score"] == pytest.approx(entry["training"]["validation"]["score"], abs=1e-3)
    stored = registry.load_state_dict("lr-first")
    assert all(torch.equal(v, stored[k].float()) for k, v in net.state_dict().items() if v.is_floating_point())
    with pytest.raises(InputError, match="not trained from recipe 'tl-acdc'"):
        train(get_recipe("tl-acdc"), tmp_path / "third", init="lr-first")
    code, out, err = run(capsys, "train", "sslln-acdc", "--init", "nope", "--out", tmp_path / "x")
    assert code == 2 and "unknown model 'nope'" in err


def test_refine_and_atlas_commands(capsys, tmp_path):
    from napari_cardiac_priors.io import write_landmarks
    from napari_cardiac_priors.phantom import make_subject
    from napari_cardiac_priors.volume import resample

    ph = make_subject(9802, pathology="NOR", lr=True)["ed"]
    write_volume(ph.lr_image, tmp_path / "case.nii.gz")
    write_volume(resample(ph.labels, ph.lr_image), tmp_path / "case_seg.nii.gz")
    write_landmarks(ph.landmarks, tmp_path / "case_landmarks.json")
    args = ["refine", tmp_path / "case.nii.gz", "--seg", tmp_path / "case_seg.nii.gz", "--landmarks",
            tmp_path / "case_landmarks.json", "--out", tmp_path / "out", "--n-atlases", 2, "--device", "cpu"]
    code, out, err = run(capsys, *args)
    assert code == 0, err
    refined = read_volume(tmp_path / "out" / "case_refined.nii.gz")
    assert refined.kind == "labels" and refined.spacing == pytest.approx((2.0, 1.25, 1.25))
    report = json.loads((tmp_path / "out" / "case_refine.json").read_text())
    assert len(report["selected_atlases"]) == 2 and report["timings_s"]["total"] > 0
    assert report["landmarks_used"]["apex"] == pytest.approx(list(ph.landmarks.positions[4]))
    assert report["atlas_set"] == "atlases-phantom" and "atlases-phantom" in out  # auto: labels with an RV wall
    code, out, err = run(capsys, *args)
    assert code == 2 and "--overwrite" in err
    code, out, err = run(capsys, *args, "--overwrite", "--mesh", "ply")
    assert code == 0, err
    from napari_cardiac_priors.io import read_mesh

    report = json.loads((tmp_path / "out" / "case_refine.json").read_text())
    assert report["meshes"] == ["case_lv_endocardium.ply", "case_lv_epicardium.ply", "case_rv.ply"]
    v, f = read_mesh(tmp_path / "out" / "case_lv_epicardium.ply")
    idx = refined.world_to_index(v)
    assert np.all(idx > -1) and np.all(idx < np.array(refined.spatial_shape))  # world mm, on the refined heart
    code, out, err = run(capsys, "refine", tmp_path / "case.nii.gz", "--seg", tmp_path / "case_seg.nii.gz",
                         "--landmarks", tmp_path / "case_landmarks.json", "--out", tmp_path / "o2", "--atlases", "nope")
    assert code == 2 and "unknown model 'nope'" in err
    code, out, err = run(capsys, "atlases", "build", tmp_path / "empty_dir_that_is_missing")
    assert code == 2 and "no such folder" in err


def test_atlases_build_from_hr_images(capsys, tmp_path):
    """`atlases build` segments HR volumes with sslln-hr-phantom and installs an atlas set."""
    from napari_cardiac_priors.phantom import make_subject
    from napari_cardiac_priors.registry.atlases import load_atlases

    (tmp_path / "hr").mkdir()
    ph = make_subject(9803, pathology="NOR")["ed"]
    write_volume(ph.image, tmp_path / "hr" / "subject_a.nii.gz")
    code, out, err = run(capsys, "atlases", "build", tmp_path / "hr", "--name", "my-hr-atlases", "--device", "cpu")
    assert code == 0, err
    (atlas,) = load_atlases("my-hr-atlases")
    assert atlas.labels.shape == ph.labels.shape and atlas.landmarks.valid.sum() >= 4
    assert atlas.image is not None


def test_train_progress_lines_for_every_model_family():
    from napari_cardiac_priors.cli import format_progress

    seg = {"event": "epoch", "epoch": 5, "stage": "train", "loss": 0.25, "seconds": 20, "val": {"dice_mean": 0.81, "score": 0.81}}
    tl = {"event": "epoch", "epoch": 5, "stage": "ae", "loss": 0.2, "seconds": 13, "val": {"ae_dice_mean": 0.9, "score": 0.7}}
    assert format_progress(seg) == "epoch 5: loss 0.2500 (20 s), validation Dice 0.810"
    assert format_progress(tl) == "epoch 5 [ae]: loss 0.2000 (13 s), validation score 0.700"
    assert format_progress({"event": "epoch", "epoch": 1, "loss": 1.0, "seconds": 1}) == "epoch 1: loss 1.0000 (1 s)"
    sd = {"event": "epoch", "epoch": 7, "stage": "train", "loss": 0.5, "seconds": 60,
          "terms": {"reconstruction": 0.3, "adversarial": 0.2}}
    assert format_progress(sd) == "epoch 7: loss 0.5000 = reconstruction 0.3000 + adversarial 0.2000 (60 s)"


def test_latent_command_for_tl_and_sdnet(capsys, tmp_path):
    import imageio.v3 as iio
    from helpers import install_tiny_tl
    from test_latent import _install_tiny_sdnet

    from napari_cardiac_priors.latent import load_explorer
    from napari_cardiac_priors.phantom import make_subject

    ph = make_subject(6, pathology="NOR", lr=True)["ed"]
    write_volume(ph.lr_labels, tmp_path / "seg.nii.gz")
    write_volume(ph.lr_image, tmp_path / "img.nii.gz")
    write_volume(ph.lr_labels.with_array(np.zeros(ph.lr_labels.shape, np.uint8)), tmp_path / "empty.nii.gz")
    tl, sd = install_tiny_tl(tmp_path), _install_tiny_sdnet(tmp_path)
    out = tmp_path / "out"

    code, text, err = run(capsys, "latent", tmp_path / "seg.nii.gz", tmp_path / "empty.nii.gz", "--model", tl, "--out", out, "--device", "cpu")
    assert code == 2 and "empty.nii.gz" in err and "no LV, MYO or RV" in err and len(err.strip().splitlines()) == 1
    assert not list(out.glob("empty_*"))  # nothing written for the bad input
    ex = load_explorer(tl)
    labels = read_volume(tmp_path / "seg.nii.gz", kind="labels")
    expect = ex.encode(labels)
    info = json.loads((out / "seg_code.json").read_text())
    np.testing.assert_allclose(info["z"], expect.z, atol=1e-5)
    assert info["kind"] == "tl" and info["distance"] == pytest.approx(ex.mahalanobis(expect), rel=1e-4)
    decoded = read_volume(out / "seg_decoded.nii.gz")
    assert decoded.kind == "labels" and decoded.shape == labels.shape
    np.testing.assert_allclose(decoded.affine, labels.affine, atol=1e-5)
    np.testing.assert_array_equal(decoded.array, ex.decode(expect))
    assert iio.imread(out / "seg_traversal.png").shape == (8 * 48, 9 * 48)  # 8 rows x (7 values + r + difference)
    assert "Mahalanobis" in text and "resampled" in text

    before = (out / "seg_code.json").read_text()
    code, _, err = run(capsys, "latent", tmp_path / "seg.nii.gz", "--model", tl, "--out", out, "--from-image")
    assert code == 2 and "--overwrite" in err and (out / "seg_code.json").read_text() == before

    code, text, err = run(capsys, "latent", tmp_path / "img.nii.gz", "--model", sd, "--out", out, "--slice", 4)
    assert code == 0, err
    info = json.loads((out / "img_code.json").read_text())
    image = read_volume(tmp_path / "img.nii.gz", kind="image")
    sx = load_explorer(sd)
    np.testing.assert_allclose(info["z"], sx.encode(image.slice(4)).z, atol=1e-5)
    assert info["slice"] == 4 and len(info["anatomy_channels"]) == 8
    decoded = read_volume(out / "img_decoded.nii.gz")
    assert decoded.shape == (1, *image.shape[1:])
    np.testing.assert_allclose(decoded.index_to_world([0, 0, 0]), image.index_to_world([4, 0, 0]), atol=1e-4)
    assert iio.imread(out / "img_traversal.png").shape == (8 * 64, 9 * 64)

    write_volume(Volume(np.zeros((2, 4, 16, 16), np.int16), spacing=(10, 2, 2)), tmp_path / "cine.nii.gz")
    code, _, err = run(capsys, "latent", tmp_path / "cine.nii.gz", "--model", sd, "--out", tmp_path / "o3")
    assert code == 2 and "cine stack of 2 frames" in err
    for bad, message in ((("--slice", 99), "outside the stack"), (("--from-image",), "for T-L models")):
        code, _, err = run(capsys, "latent", tmp_path / "img.nii.gz", "--model", sd, "--out", tmp_path / "o3", *bad)
        assert code == 2 and message in err
    code, _, err = run(capsys, "latent", tmp_path / "img.nii.gz", "--model", "acnn-seg-phantom", "--out", tmp_path / "o3")
    assert code == 2 and "latent explorer takes T-L or SDNet" in err


def test_segment_with_an_unknown_model_lists_only_models_that_segment(tmp_path, capsys):
    from napari_cardiac_priors.cli import main

    rc = main(["segment", str(tmp_path / "x.nii.gz"), "--model", "nope", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "unknown model 'nope'" in err[0] and "unet-acdc" in err[0]
    assert "atlases-" not in err[0] and "tl-acdc" not in err[0]
    assert not (tmp_path / "o").exists()


def test_the_demo_writes_outside_the_current_folder_by_default():
    from pathlib import Path

    from napari_cardiac_priors.cli.demo import _demo_folder

    folder = _demo_folder()
    assert folder.is_absolute() and Path.cwd().resolve() not in folder.resolve().parents
