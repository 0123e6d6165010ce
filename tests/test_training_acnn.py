"""The one training loop with the T-L and ACNN tasks: stages, code statistics, the prior, resume."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from napari_cardiac_priors.training.loop import train
from napari_cardiac_priors.training.recipes import get_recipe
from napari_cardiac_priors.training.tasks import load_frozen_tl, pad_probabilities


@pytest.fixture(scope="module")
def tl_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tl")
    recipe = replace(get_recipe("tl-phantom"), train_ids=(11, 12), val_ids=(13,), val_every=1, epochs=3, batch_size=2,
                     input={"size": [48, 48, 48], "spacing": [2.0, 1.25, 1.25], "normalisation": "percentile_1_99"},
                     config={"n_classes": 5, "shape": [48, 48, 48], "code_size": 8, "ae_widths": [4, 4, 4],
                             "predictor_widths": [4, 4, 4, 4]},
                     train_options={**get_recipe("tl-phantom").train_options, "stages": [["ae", 1], ["predictor", 1], ["joint", 1]], "crop": [48, 48]})
    events = []
    train(recipe, out, progress=events.append)
    return out, events


def test_tl_stages_train_the_right_parts_and_store_code_statistics(tl_run):
    out, events = tl_run
    assert [e["stage"] for e in events if e["event"] == "epoch"] == ["ae", "predictor", "joint"]
    terms = [set(e.get("terms", ())) for e in events if e["event"] == "epoch"]  # each term's mean per epoch
    assert terms == [{"cross_entropy", "dice"}, set(), {"cross_entropy", "dice", "code"}]
    val = [e["val"] for e in events if e["event"] == "epoch"]
    assert all(0.0 <= v["ae_dice_mean"] <= 1.0 and 0.0 <= v["tl_dice_mean"] <= 1.0 for v in val)
    net = load_frozen_tl(out)
    assert not torch.allclose(net.code_mean, torch.zeros(8)) and (net.code_std > 0).all()
    assert not any(p.requires_grad for p in net.parameters())
    entry = json.loads((out / "manifest_entry.json").read_text())
    assert entry["architecture"] == "tl" and entry["config"]["code_size"] == 8


def test_init_adds_a_preview_head_fitted_after_training(tl_run, tmp_path):
    """--init from a model without a preview head, with a recipe that adds one: the rest is the
    model's own, no epoch runs, the head is fitted to the decoding and its agreement recorded."""
    from napari_cardiac_priors import registry
    from napari_cardiac_priors.errors import InputError

    out, _ = tl_run
    entry = json.loads((out / "manifest_entry.json").read_text())
    registry.add_model(out / "model.safetensors", {**entry, "name": "tiny-tl-run"})
    done = entry["training"]["epochs_trained"]  # the best of the 3 epochs
    base = replace(get_recipe("tl-phantom"), train_ids=(11, 12), val_ids=(13,), val_every=1, epochs=done, batch_size=2,
                   input=entry["input"], config={**entry["config"], "preview_blocks": 2},
                   train_options={**entry_options(), "preview_steps": 20})
    events = []
    train(base, tmp_path / "run", init="tiny-tl-run", progress=events.append)
    assert [e["event"] for e in events] == ["data", "init"]  # every epoch was trained already
    new = json.loads((tmp_path / "run" / "manifest_entry.json").read_text())
    assert new["config"]["preview_blocks"] == 2 and new["training"]["epochs_trained"] == done
    assert len(new["training"]["validation"]["preview_dice"]) == 4
    assert new["training"]["validation"]["ae_dice"] == pytest.approx(entry["training"]["validation"]["ae_dice"], abs=1e-3)
    old, now = load_frozen_tl(out).state_dict(), load_frozen_tl(tmp_path / "run").state_dict()
    assert all(torch.equal(v, now[k]) for k, v in old.items() if not k.startswith("code_") and k != "distance_quantiles")
    assert any(k.startswith("autoencoder.preview.") for k in now)
    with pytest.raises(InputError, match="not trained from recipe"):  # a changed key is not an added one
        train(replace(base, config={**entry["config"], "code_size": 16}), tmp_path / "x", init="tiny-tl-run")
    # ... except a part fitted after training: a head on another decoder block replaces the old one
    registry.add_model(tmp_path / "run" / "model.safetensors", {**new, "name": "tiny-tl-preview"})
    train(replace(base, config={**base.config, "preview_blocks": 1}), tmp_path / "one", init="tiny-tl-preview")
    one = json.loads((tmp_path / "one" / "manifest_entry.json").read_text())
    assert one["config"]["preview_blocks"] == 1 and len(one["training"]["validation"]["preview_dice"]) == 4
    head = load_frozen_tl(tmp_path / "one")
    two = load_frozen_tl(tmp_path / "run").autoencoder
    assert head.autoencoder.preview_blocks == 1 and two.preview_blocks == 2  # fitted again, on the first block
    assert not torch.equal(head.autoencoder.preview[0].weight, two.preview[0].weight)
    assert all(torch.equal(v, head.state_dict()[k]) for k, v in now.items() if k.startswith("autoencoder.decoder."))


def entry_options():
    return {**get_recipe("tl-phantom").train_options, "stages": [["ae", 1], ["predictor", 1], ["joint", 1]], "crop": [48, 48]}


def test_tl_predictor_stage_leaves_the_autoencoder_unchanged(tmp_path):
    recipe = replace(get_recipe("tl-phantom"), train_ids=(11, 12), val_ids=(), epochs=2, batch_size=2,
                     config={"n_classes": 5, "shape": [48, 48, 48], "code_size": 8, "ae_widths": [4, 4, 4],
                             "predictor_widths": [4, 4, 4, 4]},
                     train_options={**get_recipe("tl-phantom").train_options, "stages": [["ae", 1], ["predictor", 1]], "crop": [48, 48]})
    train(recipe, tmp_path / "a", epochs=1)
    after_ae = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)["model"]
    train(recipe, tmp_path / "a", epochs=2, resume=True)
    after_pred = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)["model"]
    for k, v in after_ae.items():
        if k.startswith("autoencoder."):
            torch.testing.assert_close(after_pred[k], v, msg=k)
    assert any(not torch.equal(after_pred[k], v) for k, v in after_ae.items() if k.startswith("predictor."))


@pytest.mark.parametrize("name", ["acnn-seg-phantom", "acnn-sr-phantom"])
def test_acnn_trains_with_the_tl_prior(tl_run, tmp_path, name):
    base = get_recipe(name)
    config = {**base.config, "widths": [4, 4, 4, 4], "up_channels": 2, "head_channels": 4}
    # phantoms 11 and 13 have LR stacks of 9 and 7 slices: one batch of all four cases mixes them
    recipe = replace(base, train_ids=(11, 13), val_ids=(13,), val_every=1, epochs=1, batch_size=4, config=config,
                     train_options={**base.train_options, "prior": str(tl_run[0]), "crop": [48, 48],
                                    "zero_slices_p": 0.5})
    events = []
    train(recipe, tmp_path / "run", progress=events.append)
    (rec,) = [e for e in events if e["event"] == "epoch"]
    assert np.isfinite(rec["loss"])
    val = rec["val"]  # the held-out stack as it is and with one slice zero-filled: the score is their mean
    if name == "acnn-seg-phantom":
        parts = [val["dice_LV"], val["dice_MYO"], val["dice_LV_zero"], val["dice_MYO_zero"]]
        assert val["score"] == pytest.approx(np.mean(parts))
    else:
        assert val["score"] == pytest.approx(-(val["mae"] + val["mae_zero"]) / 2)
    training = json.loads((tmp_path / "run" / "manifest_entry.json").read_text())["training"]
    prior = json.loads((tl_run[0] / "manifest_entry.json").read_text())
    assert training["prior"] == {"name": "tl-phantom", "version": prior["version"], "sha256": prior["sha256"],
                                 "run": tl_run[0].name}  # which prior the weights were trained with
    assert training["train_options"]["lambda1"] == 0.01 and training["train_options"]["prior"] == str(tl_run[0])


def _tamper(path) -> None:
    """Change the last weight bytes of a safetensors file (it stays a valid safetensors file)."""
    data = bytearray(path.read_bytes())
    data[-4:] = bytes(b ^ 0xFF for b in data[-4:])
    path.write_bytes(bytes(data))


def test_a_tampered_tl_prior_is_refused(tl_run, tmp_path):
    """The frozen prior goes through the registry's hash check: a T-L model whose weights file was
    altered after it was installed is refused with an error naming the model and the file (also
    after an intact load in the same process), and so is a run folder's altered weights."""
    import shutil

    from helpers import install_tiny_tl
    from napari_cardiac_priors.registry import RegistryError, get_model
    from napari_cardiac_priors.training.tasks import make_task

    name = install_tiny_tl(tmp_path, name="tiny-tl-tampered")
    assert not any(p.requires_grad for p in load_frozen_tl(name).parameters())  # intact: loads
    _tamper(get_model(name).path)
    with pytest.raises(RegistryError, match=r"'tiny-tl-tampered'.*tiny-tl-tampered\.safetensors.*sha256"):
        load_frozen_tl(name)
    base = get_recipe("acnn-seg-phantom")
    with pytest.raises(RegistryError, match="tiny-tl-tampered"):
        make_task(replace(base, train_options={**base.train_options, "prior": name})).prior()
    run = tmp_path / "tl-run"
    shutil.copytree(tl_run[0], run)
    load_frozen_tl(run)
    _tamper(run / "model.safetensors")
    with pytest.raises(RegistryError, match=r"tl-run.*model\.safetensors.*sha256"):
        load_frozen_tl(run)


def _install_run(run, tmp_path, name) -> dict:
    """Install a training run's weights under ``name`` in the user model folder; returns its entry."""
    import shutil

    from napari_cardiac_priors import registry

    entry = json.loads((run / "manifest_entry.json").read_text())
    entry["name"] = name
    shutil.copy(run / "model.safetensors", tmp_path / f"{name}.safetensors")
    registry.add_model(tmp_path / f"{name}.safetensors", entry)
    return entry


def test_stack_slices_pads_after_the_last_slice():
    from napari_cardiac_priors.training.tasks import _stack_slices

    a, b = np.ones((3, 2, 2), np.float32), np.full((5, 2, 2), 2.0, np.float32)
    out = _stack_slices([a, b])
    assert out.shape == (2, 5, 2, 2)
    np.testing.assert_array_equal(out[0, :3], a)
    assert not out[0, 3:].any()
    np.testing.assert_array_equal(out[1], b)


def test_pad_probabilities_marks_padding_as_background():
    p = torch.softmax(torch.randn(1, 3, 4, 6, 6), 1)
    out = pad_probabilities(p, (5, 6, 8))
    assert out.shape == (1, 3, 5, 6, 8)
    torch.testing.assert_close(out.sum(1), torch.ones(1, 5, 6, 8))
    assert (out[:, 0, 4] == 1).all() and (out[:, 0, :, :, 6:] == 1).all()


def test_plausibility_of_training_like_and_broken_shapes(tmp_path):
    """Codes near the training codes are plausible; a scrambled label map falls beyond them all."""
    from helpers import install_tiny_tl
    from napari_cardiac_priors.inference import load_model
    from napari_cardiac_priors.latent import encode_labels, plausibility, tl_grid_labels
    from napari_cardiac_priors.phantom import make_subject
    from napari_cardiac_priors.training.tasks import set_code_statistics
    from napari_cardiac_priors.volume import Volume

    model = load_model(install_tiny_tl(tmp_path, name="tiny-tl-plausibility"))
    labels = make_subject(11)["ed"].labels
    grid = tl_grid_labels(labels, model.entry.input)
    assert grid.spatial_shape == (48, 48, 48) and grid.spacing == pytest.approx((2.0, 1.25, 1.25))
    code = encode_labels(model, labels)
    # training codes: this shape's code +- 1e-5 along each axis (mean = the code, tiny spread)
    eye = np.eye(code.size)
    set_code_statistics(model.network, np.concatenate([code + 1e-5 * eye, code - 1e-5 * eye]))
    ok = plausibility(labels, model)
    assert ok["distance"] == pytest.approx(0.0, abs=1e-3) and ok["percentile"] == 0.0
    rng = np.random.default_rng(0)
    noise = Volume(rng.integers(0, 5, labels.shape).astype(np.uint8), affine=labels.affine, kind="labels")
    bad = plausibility(noise, model)
    assert bad["distance"] > 10 and bad["percentile"] == 100.0


def test_batch_plausibility_column(tl_run, tmp_path):
    from napari_cardiac_priors.cohort import BatchOptions, Subject, process_subject
    from napari_cardiac_priors.io import write_volume
    from napari_cardiac_priors.phantom import make_subject

    _install_run(tl_run[0], tmp_path, "tiny-tl2")
    ph = make_subject(9740, lr=True)["ed"]
    write_volume(ph.lr_image, tmp_path / "s_ed.nii.gz")
    rec = process_subject(Subject("s", {"ed": str(tmp_path / "s_ed.nii.gz")}), tmp_path / "run",
                          BatchOptions(model="sslln-lr-phantom", shape_model="tiny-tl2"))
    assert rec["status"] == "done", rec.get("traceback")
    assert rec["measures"]["plausibility"] == pytest.approx(rec["plausibility"]["ed"]["distance"])
    assert rec["measures"]["plausibility"] > 0
    assert rec["parameters"]["shape_model"] == "tiny-tl2"
    bad = process_subject(Subject("t", {"ed": str(tmp_path / "s_ed.nii.gz")}), tmp_path / "run",
                          BatchOptions(model="sslln-lr-phantom", shape_model="sslln-lr-phantom"))
    assert bad["status"] == "failed" and "not a T-L shape model" in bad["error"]


def test_tl_sample_grid_centres_on_the_heart():
    from napari_cardiac_priors.training.tasks import tl_sample_grid

    labels = np.zeros((10, 40, 40), np.uint8)
    labels[3:6, 10:20, 20:30] = 1
    g = tl_sample_grid(labels, (5.0, 2.0, 2.0), (4, 8, 8), (10.0, 2.0, 2.0))
    assert g.shape == (4, 8, 8, 3)
    centre = g.mean(axis=(0, 1, 2))  # (x, y, z) normalised
    expect = [2 * 24.5 / 39 - 1, 2 * 14.5 / 39 - 1, 2 * 4.0 / 9 - 1]
    np.testing.assert_allclose(centre, expect, atol=1e-5)
    np.testing.assert_allclose(g[1, 0, 0, 2] - g[0, 0, 0, 2], 2 * 2.0 / 9, atol=1e-6)  # 10 mm = 2 slices of 5 mm


def test_volume_prior_prefers_the_truth_and_reaches_the_logits():
    from napari_cardiac_priors.nn.tl import LabelAutoencoder, one_hot
    from napari_cardiac_priors.training.tasks import tl_sample_grid, volume_prior_loss

    torch.manual_seed(0)
    ae = LabelAutoencoder(n_classes=4, shape=(12, 24, 24), widths=(4, 4, 4)).eval().requires_grad_(False)
    target = torch.zeros(1, 8, 32, 32, dtype=torch.long)
    target[0, 2:6, 8:20, 8:20] = 2
    target[0, 2:6, 11:17, 11:17] = 1
    target[0, 2:6, 8:20, 20:26] = 3
    grids = torch.from_numpy(tl_sample_grid(target[0].numpy(), (5.0, 1.6, 1.6), (12, 24, 24), (5.0, 1.6, 1.6)))[None]
    good = (one_hot(target, 4) * 20).requires_grad_(True)
    bad = (one_hot(torch.roll(target, 6, dims=-1), 4) * 20).requires_grad_(True)
    lg, lb = volume_prior_loss(ae.encode, good, target, grids), volume_prior_loss(ae.encode, bad, target, grids)
    assert lg.item() < lb.item()
    lb.backward()
    assert bad.grad is not None and bad.grad.abs().sum() > 0


def test_acnn_seg_acdc_trains_with_a_prior_on_whole_cases(tmp_path, acdc_root):
    from helpers import install_tiny_slab, install_tiny_tl
    from napari_cardiac_priors.nn import build
    from napari_cardiac_priors.training.tasks import make_task

    tl = install_tiny_tl(tmp_path, name="tiny-tl-acdc", n_classes=4, shape=(12, 48, 48), spacing=(10.0, 1.6, 1.6))
    start = install_tiny_slab(tmp_path, name="tiny-unet", slab=1, n_landmarks=0)
    base = get_recipe("acnn-seg-acdc")
    options = {"samples_per_epoch": 8, "calibration_batches": 1, "prior": tl, "lambda1": 0.01, "prior_every": 2}
    recipe = replace(base, train_ids=(1, 2), val_ids=(), epochs=1, batch_size=2, warm_start=start,
                     config={**base.config, "base": 4, "depth": 2}, train_options=options)
    task = make_task(recipe, data_root=acdc_root)
    items = task.load(recipe.train_ids)
    batches = list(task.batches(items, np.random.default_rng(0)))
    assert [len(b) for b in batches] == [6, 3, 6, 3]  # a whole case for the prior every 2nd batch
    slabs, vol_t, grid = batches[0][3:]
    n_slices = vol_t.shape[1]
    assert slabs.shape == (n_slices, 1, 128, 128) and grid.shape == (1, 12, 48, 48, 3)
    assert n_slices in [it["image"].shape[0] for it in items]
    net = build("slab2d", recipe.config)
    heavy = make_task(replace(recipe, train_options={**options, "lambda1": 1e6}), data_root=acdc_root)
    heavy.prior()
    with_prior = heavy.loss(net, batches[0], "train")
    without = heavy.loss(net, batches[0][:3], "train").item()
    assert with_prior.item() > without  # the code distance of an untrained network's prediction is positive
    with_prior.backward()
    assert net.seg_head.weight.grad.abs().sum() > 0
    events = []
    train(replace(recipe, val_ids=(3,)), tmp_path / "run", data_root=acdc_root, progress=events.append)
    (rec,) = [e for e in events if e["event"] == "epoch"]
    assert np.isfinite(rec["loss"]) and (tmp_path / "run" / "model.safetensors").exists()
    assert 0.0 <= rec["val"]["dice_LV"] <= 1.0  # validated, after the batch-norm calibration without the prior


def test_fit_to_pads_or_crops_about_the_centre():
    from napari_cardiac_priors.training.tasks import _fit_to

    a = np.arange(5 * 4 * 4).reshape(5, 4, 4)
    out = _fit_to(a, (3, 6, 4))
    assert out.shape == (3, 6, 4)
    np.testing.assert_array_equal(out[:, :4], a[1:4])
    assert not out[:, 4:].any()


def test_shift_inplane_moves_whole_voxels_and_fills_with_zero():
    from napari_cardiac_priors.training.tasks import shift_inplane

    a = np.arange(2 * 4 * 5).reshape(2, 4, 5) + 1
    out = shift_inplane(a, (1, -2))
    np.testing.assert_array_equal(out[:, 1:, :3], a[:, :3, 2:])
    assert (out[:, 0] == 0).all() and (out[:, :, 3:] == 0).all()
    np.testing.assert_array_equal(shift_inplane(a, (0, 0)), a)
    assert not shift_inplane(a, (4, 0)).any()


def test_tl_dice_term_and_shifts_reach_the_training_batches():
    recipe = replace(get_recipe("tl-acdc"), train_options={"stages": [["ae", 1]], "swap_p": 0.0, "dice_weight": 1.0,
                                                           "shift_px": 3},
                     config={"n_classes": 4, "shape": [12, 48, 48], "code_size": 8, "ae_widths": [4, 4, 4],
                             "predictor_widths": [4, 4, 4, 4]}, batch_size=2)
    from napari_cardiac_priors.nn import build
    from napari_cardiac_priors.training.tasks import make_task

    labels = np.zeros((12, 48, 48), np.uint8)
    labels[3:9, 18:30, 18:30] = 1
    items = [(labels, labels.astype(np.float32))] * 4
    task = make_task(recipe)
    batches = list(task.batches(items, np.random.default_rng(0)))
    centres = {tuple(np.argwhere(b[1][i].numpy() == 1).mean(0).round(1)) for b in batches for i in range(2)}
    assert len(centres) > 1 and all(abs(c[1] - 23.5) <= 3 and abs(c[2] - 23.5) <= 3 for c in centres)
    net = build("tl", recipe.config)
    with_dice, terms = task.loss(net, batches[0], "ae")
    plain = make_task(replace(recipe, train_options={**recipe.train_options, "dice_weight": 0.0}))
    without, plain_terms = plain.loss(net, batches[0], "ae")
    assert with_dice.item() > without.item() + 0.1  # the squared-Dice term adds ~0.5-1 untrained
    assert set(terms) == {"cross_entropy", "dice"} and set(plain_terms) == {"cross_entropy"}
    assert with_dice.item() == pytest.approx(terms["cross_entropy"] + terms["dice"], rel=1e-5)


def test_learning_rate_schedules_over_the_run_or_over_each_stage():
    from napari_cardiac_priors.training.loop import learning_rate

    stages = ["ae"] * 4 + ["predictor"] * 2 + ["ae"] * 2
    r = lambda schedule: replace(get_recipe("tl-acdc"), lr=1.0, lr_schedule=schedule)  # noqa: E731
    assert [learning_rate(r("constant"), e, 8) for e in range(8)] == [1.0] * 8
    np.testing.assert_allclose([learning_rate(r("cosine"), e, 8) for e in (0, 4)], [1.0, 0.5])
    per_stage = [learning_rate(r("cosine-stage"), e, 8, stages=stages) for e in range(8)]
    np.testing.assert_allclose(per_stage, [1.0, 0.8536, 0.5, 0.1464, 1.0, 0.5, 1.0, 0.5], atol=1e-4)  # each stage anew
    assert learning_rate(r("cosine-stage"), 4, 8) == learning_rate(r("cosine"), 4, 8)  # no stages: over the run
    with pytest.raises(ValueError, match="unknown learning-rate schedule"):
        learning_rate(r("step"), 0, 8)


def test_last_epoch_of_a_run_becomes_a_run_folder(tl_run, tmp_path):
    """A run keeps its best validation's weights; its checkpoint's last epoch can be scored as a
    run folder of its own (hash-checked like any run)."""
    import torch

    from napari_cardiac_priors.training.runs import last_epoch_run, load_run_network, run_entry

    out = last_epoch_run(tl_run[0], tmp_path / "last")
    entry = run_entry(out)
    state = torch.load(tl_run[0] / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert entry["training"]["epochs_trained"] == int(state["epoch"]) == 3
    net = load_run_network(out)
    key = next(k for k, v in state["model"].items() if v.is_floating_point() and v.ndim > 1)
    torch.testing.assert_close(net.state_dict()[key], state["model"][key].half().float())
    with pytest.raises(ValueError, match="folder of its own"):
        last_epoch_run(tl_run[0], tl_run[0])
