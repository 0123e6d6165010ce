"""SDNet and the slice U-Net through the one training loop, on a few ACDC patients."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from napari_cardiac_priors.training.loop import train
from napari_cardiac_priors.training.recipes import get_recipe
from napari_cardiac_priors.training.tasks import SliceTask, acdc_slices

SMALL = {"n_anatomy": 8, "n_z": 8, "n_classes": 4, "size": 64, "base": 4, "film_width": 8, "seg_width": 8, "disc_base": 4}
OPTS = {"rotation_deg": 90.0, "size": [64, 64], "spacing": [4.0, 4.0], "betas": [0.5, 0.999]}


def test_acdc_slices_grid_and_range(acdc_root):
    from napari_cardiac_priors.training.data import acdc_cases

    (case,) = acdc_cases(acdc_root, (1,))[:1]
    slices = acdc_slices([case], size=(64, 64), spacing=(4.0, 4.0))
    assert len(slices) == case.image.spatial_shape[0]
    img, lab, cid = slices[len(slices) // 2]
    assert img.shape == lab.shape == (64, 64) and cid == case.id
    assert -1.0 <= img.min() and img.max() <= 1.0 and {1, 2, 3} <= set(np.unique(lab))


def test_labelled_subjects_are_a_seeded_subset():
    t = SliceTask(replace(get_recipe("sdnet-acdc-1pc")), "cpu")
    assert len(t.labelled_ids()) == 1 and t.labelled_ids() == SliceTask(get_recipe("sdnet-acdc-1pc"), "cpu").labelled_ids()
    assert len(SliceTask(get_recipe("sdnet-acdc-6pc"), "cpu").labelled_ids()) == 5
    assert SliceTask(get_recipe("sdnet-acdc"), "cpu").labelled_ids() == set(get_recipe("sdnet-acdc").train_ids)


def test_every_semi_supervised_sdnet_batch_holds_a_labelled_slice():
    # 2 labelled slices among 40: plain shuffling would leave most batches of 4 without one
    items = [(np.full((8, 8), float(i), np.float32), np.zeros((8, 8), np.int64), i in (7, 30)) for i in range(40)]
    recipe = replace(get_recipe("sdnet-acdc-1pc"), train_options={"rotation_deg": 0.0})
    batches = list(SliceTask(recipe, "cpu").batches(items, np.random.default_rng(0)))
    assert len(batches) == 10 and all(int(flags.sum()) >= 1 for _, _, flags in batches)
    seen = {int(img[b, 0, 0, 0]) for img, _, flags in batches for b in np.flatnonzero(flags.numpy())}
    assert seen == {7, 30}  # the labelled slices are used in turn, not only the first
    for img, _, flags in batches:  # the flag travels with its own slice
        assert all(bool(f) == (int(v) in (7, 30)) for v, f in zip(img[:, 0, 0, 0], flags))
    recipe_all = replace(recipe, train_options={"rotation_deg": 0.0, "labelled_per_batch": 0})
    plain = list(SliceTask(recipe_all, "cpu").batches(items, np.random.default_rng(0)))
    assert sum(int(flags.sum()) for _, _, flags in plain) == 2  # option 0: plain shuffling


@pytest.mark.parametrize("name", ["sdnet-acdc-1pc", "unet-slices-acdc-1pc"])
def test_slice_models_train_and_store_statistics(acdc_root, tmp_path, name):
    base = get_recipe(name)
    config = SMALL if base.architecture == "sdnet" else {**base.config, "base": 4}
    recipe = replace(base, train_ids=(1, 2, 3), val_ids=(5,), epochs=1, val_every=1, config=config,
                     input={**base.input, "size": [64, 64], "spacing": [4.0, 4.0]},
                     train_options={**OPTS, "labelled_subjects": 1})
    events = []
    train(recipe, tmp_path / "run", progress=events.append)
    (rec,) = [e for e in events if e["event"] == "epoch"]
    assert np.isfinite(rec["loss"]) and 0.0 <= rec["val"]["dice_mean"] <= 1.0
    entry = json.loads((tmp_path / "run" / "manifest_entry.json").read_text())
    assert entry["architecture"] == base.architecture
    assert entry["task"] == ("disentanglement" if base.architecture == "sdnet" else "segmentation")
    if base.architecture == "sdnet":
        from safetensors.torch import load_file

        w = load_file(str(tmp_path / "run" / "model.safetensors"))
        assert w["z_std"].dtype == torch.float32 and not torch.equal(w["z_std"], torch.ones(8))
        assert "reconstruction_mae" in rec["val"]
    data = [e for e in events if e["event"] == "data"][0]
    assert data["train"] > 0


def test_adversarial_warmup_leaves_the_critic_out():
    from napari_cardiac_priors.nn import build

    recipe = replace(get_recipe("sdnet-acdc"), config=SMALL,
                     train_options={**OPTS, "adversarial_from_epoch": 2})
    task = SliceTask(recipe, "cpu")
    assert [task.stage(e) for e in range(4)] == ["warmup", "warmup", "train", "train"]
    paper = replace(recipe, train_options=OPTS)  # without the option: the critic from the first epoch
    assert SliceTask(paper, "cpu").stage(0) == "train"
    assert [SliceTask(get_recipe("sdnet-acdc"), "cpu").stage(e) for e in (3, 4)] == ["warmup", "train"]  # the recipe's
    assert SliceTask(get_recipe("unet-slices-acdc"), "cpu").stage(0) == "train"
    torch.manual_seed(0)
    net = build("sdnet", SMALL)
    image = torch.rand(2, 1, 64, 64) * 2 - 1
    labels = torch.zeros(2, 64, 64, dtype=torch.long)
    labels[:, 20:40, 20:40] = 1
    batch = (image, labels, torch.tensor([True, True]))
    for stage, critic_learns in (("warmup", False), ("train", True)):
        net.zero_grad(set_to_none=True)
        torch.manual_seed(1)
        loss, terms = task.loss(net, batch, stage)
        loss.backward()
        grads = [p.grad for p in net.discriminator.parameters()]
        assert any(g is not None and g.abs().sum() > 0 for g in grads) == critic_learns
        assert ({"adversarial", "critic"} <= set(terms)) == critic_learns and {"reconstruction", "kl", "dice"} <= set(terms)
        assert loss.item() == pytest.approx(sum(terms.values()), rel=1e-5)  # the terms add up to the loss
        assert all(p.grad is not None for p in net.segmentor.parameters())


def test_decoder_stage_trains_only_the_modality_encoder_and_decoder():
    from napari_cardiac_priors.nn import build

    recipe = replace(get_recipe("sdnet-acdc"), config=SMALL,
                     train_options={**OPTS, "adversarial_from_epoch": 1, "decoder_from_epoch": 2})
    task = SliceTask(recipe, "cpu")
    assert [task.stage(e) for e in range(4)] == ["warmup", "train", "decoder", "decoder"]
    # 1.2 (bundled) has no decoder-only stage: after the warm-up the whole network learns to its end
    assert [SliceTask(get_recipe("sdnet-acdc"), "cpu").stage(e) for e in (3, 4, 6, 11)] == ["warmup", "train", "train", "train"]
    assert SliceTask(get_recipe("sdnet-acdc-1pc"), "cpu").stage(29) == "train"  # the others never reach it
    torch.manual_seed(0)
    net = build("sdnet", SMALL).train()
    trainable = {id(p) for p in task.trainable(net, "decoder")}
    for p in net.parameters():
        p.requires_grad_(id(p) in trainable)
    running = {k: v.clone() for k, v in net.state_dict().items() if "running" in k and not k.startswith("modality")}
    assert any(k.startswith("segmentor") for k in running) and any(k.startswith("anatomy") for k in running)
    image = torch.rand(2, 1, 64, 64) * 2 - 1
    labels = torch.ones(2, 64, 64, dtype=torch.long)
    loss, terms = task.loss(net, (image, labels, torch.tensor([True, True])), "decoder")
    assert set(terms) == {"reconstruction", "kl", "z_reconstruction"}  # no mask terms
    loss.backward()
    learns = {name for name, m in net.named_children() if any(p.grad is not None and p.grad.abs().sum() > 0
                                                              for p in m.parameters())}
    assert learns == {"modality_encoder", "decoder"}
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in running.items())  # eval: statistics kept


def test_sdnet_validation_scores_segmentation_and_reconstruction():
    from napari_cardiac_priors.nn import build

    recipe = replace(get_recipe("sdnet-acdc"), config=SMALL, train_options=OPTS)
    task = SliceTask(recipe, "cpu")
    torch.manual_seed(0)
    net = build("sdnet", SMALL)
    rng = np.random.default_rng(0)
    items = [(rng.uniform(-1, 1, (64, 64)).astype(np.float32), np.zeros((64, 64), np.uint8), "patient005_frame01")
             for _ in range(3)]
    out = task.validate(net, items)
    assert -1.0 <= out["reconstruction_corr"] <= 1.0 and out["reconstruction_mae"] > 0
    assert out["score"] == pytest.approx((out["dice_mean"] + out["reconstruction_corr"]) / 2)
    with torch.no_grad():  # the correlation is the per-slice Pearson r of the decoding of (anatomy, mu)
        x = torch.from_numpy(np.stack([i[0] for i in items]))[:, None]
        net.eval()
        anatomy, _, mu, _ = net.encode(x)
        rec = net.decoder(anatomy, mu).numpy()
    r = np.mean([np.corrcoef(rec[k, 0].ravel(), items[k][0].ravel())[0, 1] for k in range(3)])
    assert out["reconstruction_corr"] == pytest.approx(r, abs=1e-4)
    by_dice = SliceTask(replace(recipe, train_options={**OPTS, "select_by": "dice"}), "cpu").validate(net, items)
    assert by_dice["score"] == by_dice["dice_mean"] and by_dice["reconstruction_corr"] == pytest.approx(r, abs=1e-4)
    with pytest.raises(ValueError, match="select_by is 'dice' or 'dice\\+reconstruction'"):
        SliceTask(replace(recipe, train_options={**OPTS, "select_by": "mae"}), "cpu")
    assert SliceTask(get_recipe("sdnet-acdc-1pc"), "cpu").options.select_by == "dice"  # its use is the segmentation
