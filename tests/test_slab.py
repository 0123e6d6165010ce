"""The slab contract (any slice count), invariance to the stored voxel order, landmark naming
from anatomy and geometry, the heart-keeping post-processing, domain notes and the defaults."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from napari_cardiac_priors.contract import slab_indices
from napari_cardiac_priors.errors import InputError
from napari_cardiac_priors.volume import Volume, resample, restored

from helpers import install_tiny_slab


def test_slab_indices_known_answers():
    # 10 mm slices: direct neighbours, -1 beyond the ends
    assert slab_indices(4, 10.0, slab=3, slab_spacing_mm=8.0).tolist() == [[-1, 0, 1], [0, 1, 2], [1, 2, 3], [2, 3, -1]]
    # 2 mm slices: neighbours 4 slices (8 mm) away
    idx = slab_indices(12, 2.0, slab=3, slab_spacing_mm=8.0)
    assert idx[5].tolist() == [1, 5, 9] and idx[0].tolist() == [-1, 0, 4] and idx[11].tolist() == [7, 11, -1]
    assert slab_indices(3, 5.0, slab=1, slab_spacing_mm=8.0).tolist() == [[0], [1], [2]]


def test_slab_network_shapes_and_errors():
    import torch

    from napari_cardiac_priors.nn.slab import SlabNet

    net = SlabNet(slab=3, n_classes=4, n_landmarks=4, base=4, depth=2).eval()
    seg, lmk = net(torch.zeros(2, 3, 32, 48))
    assert seg.shape == (2, 4, 32, 48) and lmk.shape == (2, 4, 32, 48)
    assert SlabNet(slab=1, n_landmarks=0, base=4, depth=2)(torch.zeros(1, 1, 16, 16)).shape == (1, 4, 16, 16)
    with pytest.raises(ValueError, match="expects 3 slices"):
        net(torch.zeros(1, 2, 32, 32))
    with pytest.raises(ValueError, match="multiple of 4"):
        net(torch.zeros(1, 3, 30, 32))
    with pytest.raises(ValueError, match="odd"):
        SlabNet(slab=2)


@pytest.mark.parametrize("n_slices, spacing", [(2, (10.0, 1.4, 1.4)), (9, (8.0, 1.25, 1.5)), (64, (2.0, 1.25, 1.25))])
def test_any_slice_count_and_grid_runs(tmp_path, n_slices, spacing):
    """2 to 64 slices, thin or thick, anisotropic in-plane pixels and a non-square grid: labels
    come back on the input grid."""
    from napari_cardiac_priors.inference import segment

    name = install_tiny_slab(tmp_path)
    rng = np.random.default_rng(0)
    image = Volume(rng.normal(100, 20, (n_slices, 37, 53)).astype(np.float32), spacing=spacing)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = segment(image, name)
    assert result.labels.spatial_shape == image.spatial_shape
    assert np.allclose(result.labels.affine, image.affine)
    assert result.landmarks is not None and result.landmarks.positions.shape == (6, 3)


def test_bad_stacks_get_one_clear_error(tmp_path):
    from napari_cardiac_priors.inference import segment

    name = install_tiny_slab(tmp_path)
    one = Volume(np.random.default_rng(0).normal(size=(1, 32, 32)).astype(np.float32), spacing=(8, 1.5, 1.5))
    with pytest.raises(InputError, match="1 slice"):
        segment(one, name)
    with pytest.raises(InputError, match="label map"):
        segment(one.with_array(one.array.astype(np.uint8), kind="labels"), name)
    with pytest.raises(ValueError, match="singular"):
        Volume(np.zeros((3, 8, 8)), affine=np.diag([1.0, 1.0, 0.0, 1.0]))


def test_restored_keeps_world_positions():
    rng = np.random.default_rng(1)
    v = Volume(rng.random((5, 6, 7)), spacing=(10, 1.5, 1.2))
    for kw in (dict(flip=("x",)), dict(flip=("y",)), dict(swap_xy=True), dict(flip=("z",)), dict(flip=("x", "z"), swap_xy=True)):
        r = restored(v, **kw)
        assert np.array_equal(resample(r, v, order=0).array, v.array)
        assert np.allclose(r.index_to_world([0, 0, 0]), v.index_to_world(v.world_to_index(r.index_to_world([0, 0, 0]))))
    with pytest.raises(ValueError, match="flip"):
        restored(v, flip=("t",))


def test_keep_heart_keeps_a_shifted_slice_and_drops_a_far_blob():
    from napari_cardiac_priors.inference import keep_heart, keep_largest_component

    lab = np.zeros((5, 60, 60), np.uint8)
    for k in range(5):
        lab[k, 20:30, 20:30] = 1
    lab[2] = 0
    lab[2, 20:30, 33:43] = 1  # a breath-hold shift: 3 pixels (4.5 mm) apart from its neighbours
    lab[4, 50:54, 50:54] = 1  # a blob 30 mm away
    out = keep_heart(lab, (10.0, 1.5, 1.5))
    assert out[2].sum() == 100 and out[4, 50:54, 50:54].sum() == 0 and out[0].sum() == 100
    assert keep_largest_component(lab)[2].sum() == 0  # the 3D largest component loses the shifted slice


def _phantom_lr():
    from napari_cardiac_priors.phantom import make_subject

    ph = make_subject(9700, pathology="NOR", lr=True)["ed"]
    return ph, resample(ph.labels, ph.lr_image)


def test_landmark_names_come_from_anatomy_not_slice_order():
    """Labels and a landmark map derived from them give the same named points however the
    stack is stored: reversed slices, mirrored, transposed."""
    from napari_cardiac_priors.conventions import LANDMARK_NAMES
    from napari_cardiac_priors.landmarks import derive_from_labels, from_slab_probabilities
    from napari_cardiac_priors.metrics import landmark_errors
    from napari_cardiac_priors.training.tasks.slab import slab_landmark_target

    _, labels = _phantom_lr()

    def points(lab):
        target = slab_landmark_target(lab.array, lab.spacing, radius_mm=3.0)
        prob = np.eye(4, dtype=np.float32)[target].transpose(3, 0, 1, 2)
        lm, notes = from_slab_probabilities(lab, prob)
        return lm, notes

    ref, notes = points(labels)
    assert not notes and ref.valid.all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        derived = derive_from_labels(labels)
    err = landmark_errors(ref, derived)
    # apex and mitral valve are the derived ones; in-plane points agree within a few mm
    assert err[LANDMARK_NAMES.index("apex")] < 1e-6 and err[LANDMARK_NAMES.index("mitral_valve")] < 1e-6
    assert np.all(err < 6.0), err
    for kw in (dict(flip=("z",)), dict(flip=("x",)), dict(swap_xy=True), dict(flip=("y", "z"))):
        moved, _ = points(restored(labels, **kw))
        assert np.all(landmark_errors(moved, ref) < 3.0), (kw, landmark_errors(moved, ref))


def test_no_heart_gives_empty_labels_and_nan_landmarks(tmp_path):
    from napari_cardiac_priors.landmarks import from_slab_probabilities

    empty = Volume(np.zeros((6, 20, 20), np.uint8), spacing=(10, 1.5, 1.5), kind="labels")
    lm, notes = from_slab_probabilities(empty, np.zeros((4, 6, 20, 20), np.float32))
    assert not lm.valid.any()


def test_domain_notes_flag_spacing_intensity_and_implausible_results():
    from types import SimpleNamespace

    from napari_cardiac_priors.quality import domain_notes, training_domain

    rng = np.random.default_rng(0)
    train = [Volume(rng.gamma(2.0, 50.0, (8, 40, 40)).astype(np.float32), spacing=(10, 1.5, 1.5)) for _ in range(3)]
    entry = SimpleNamespace(name="m", training={"domain": training_domain(train)})
    assert domain_notes(train[0], entry) == []
    thin = Volume(train[0].array, spacing=(2.0, 1.5, 1.5))
    assert any("slice spacing 2 mm" in n for n in domain_notes(thin, entry))
    bright = train[0].with_array(np.sqrt(train[0].array) * 0 + rng.random((8, 40, 40)) ** 0.1)
    assert any("intensity distribution" in n for n in domain_notes(bright, entry))
    lab = np.zeros((8, 40, 40), np.uint8)
    lab[2:6, 10:20, 10:20] = 1  # an LV without wall or RV
    assert any("implausible" in n for n in domain_notes(train[0], entry, lab))


def test_real_scan_model_is_the_default_and_phantom_models_come_last():
    from napari_cardiac_priors import registry
    from napari_cardiac_priors.cli import build_parser
    from napari_cardiac_priors.conventions import DEFAULT_MODEL

    names = registry.segmentation_choices()
    assert names[0] == DEFAULT_MODEL == "sslln-acdc"
    phantom = [i for i, n in enumerate(names) if registry.trained_on_phantoms(registry.get_model(n))]
    real = [i for i, n in enumerate(names) if not registry.trained_on_phantoms(registry.get_model(n))
            and registry.get_model(n).task == "segmentation"]
    assert phantom and max(real) < min(phantom)
    parser = build_parser()
    assert parser.parse_args(["segment", "x.nii.gz", "--out", "o"]).model == DEFAULT_MODEL
    assert parser.parse_args(["batch", "c", "--out", "o"]).model == DEFAULT_MODEL


def _held_out(acdc_root, pid=5, phase="ed"):
    from napari_cardiac_priors.io.acdc import iter_patients

    p = next(iter_patients(acdc_root, ids=[pid]))
    return p.image(phase), p.labels(phase)


def test_bundled_sslln_acdc_on_a_held_out_patient_stored_every_which_way(acdc_root):
    """The default model on a validation patient: accurate, six landmarks, and the same labels
    and landmark names in five other voxel orders (world geometry unchanged)."""
    from napari_cardiac_priors.inference import segment
    from napari_cardiac_priors.metrics import dice, landmark_errors

    image, gt = _held_out(acdc_root)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = segment(image, "sslln-acdc")
    for v in (1, 2, 3):
        assert dice(ref.labels.array == v, gt.array == v) > 0.8
    assert ref.landmarks.valid.all()
    for kw in (dict(flip=("x",)), dict(flip=("y",)), dict(swap_xy=True), dict(flip=("z",)), dict(flip=("x", "z"), swap_xy=True)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = segment(restored(image, **kw), "sslln-acdc")
        back = resample(res.labels, ref.labels).array
        for v in (1, 2, 3):
            assert dice(back == v, ref.labels.array == v) > 0.9, (kw, v)  # measured: RV 0.92 at worst on this case
        err = landmark_errors(res.landmarks, ref.landmarks)
        assert err[4] < 5.0 and err[5] < 5.0, (kw, err)  # apex, mitral valve: from the labels' anatomy
        assert np.all(err < 20.0), (kw, err)  # in-plane points: the network's blobs move a little
        ant, inf = res.landmarks.positions[0], res.landmarks.positions[2]  # never swapped by the storage
        assert np.linalg.norm(ant - ref.landmarks.positions[0]) < np.linalg.norm(ant - ref.landmarks.positions[2]), kw
        assert np.linalg.norm(inf - ref.landmarks.positions[2]) < np.linalg.norm(inf - ref.landmarks.positions[0]), kw


def test_bundled_sslln_acdc_runs_on_a_thin_slice_stack(acdc_root):
    """A 2 mm stack of 40+ slices (ACDC resampled through-plane) is segmented, not refused."""
    from napari_cardiac_priors.inference import segment
    from napari_cardiac_priors.metrics import dice

    image, gt = _held_out(acdc_root)
    n = int((image.spatial_shape[0] - 1) * image.spacing[0] / 2.0) + 1
    m = np.eye(4)
    m[2, 2] = 2.0 / image.spacing[0]
    thin = resample(image, affine=image.affine @ m, shape=(n, *image.spatial_shape[1:]), order=1)
    thin_gt = resample(gt, thin)
    assert n >= 40
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = segment(thin, "sslln-acdc")
    assert res.labels.spatial_shape == thin.spatial_shape
    assert dice(res.labels.array == 1, thin_gt.array == 1) > 0.8


def test_cli_bad_stacks_one_line_each_and_nothing_written(tmp_path, capsys):
    import nibabel as nib

    from napari_cardiac_priors.cli import main

    name = install_tiny_slab(tmp_path)
    rng = np.random.default_rng(0)
    nib.save(nib.Nifti1Image(rng.random((40, 40)).astype("f4"), np.eye(4)), tmp_path / "flat.nii.gz")
    img = nib.Nifti1Image(rng.random((40, 40, 8)).astype("f4"), None)
    degenerate = np.eye(4)
    degenerate[2, 2] = 0.0
    img.header.set_sform(degenerate, code=1)
    img.header.set_qform(None, code=0)
    nib.save(img, tmp_path / "degenerate.nii.gz")
    nib.save(nib.Nifti1Image(rng.random((40, 40, 1)).astype("f4"), np.diag([1.5, 1.5, 8, 1])), tmp_path / "one.nii.gz")
    nib.save(nib.Nifti1Image(rng.random((40, 48, 6)).astype("f4") * 100, np.diag([1.3, 1.6, 10, 1])), tmp_path / "good.nii.gz")
    out = tmp_path / "out"
    inputs = [str(tmp_path / f) for f in ("flat.nii.gz", "degenerate.nii.gz", "one.nii.gz", "good.nii.gz")]
    code = main(["segment", *inputs, "--model", name, "--out", str(out), "--device", "cpu"])
    err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert code == 2 and len(err) == 3
    for line, f in zip(err, ("flat.nii.gz", "degenerate.nii.gz", "one.nii.gz")):
        assert f in line
    assert "2D" in err[0] and "singular" in err[1] and "1 slice" in err[2]
    assert sorted(p.name for p in out.iterdir()) == ["good_landmarks.json", "good_seg.nii.gz"]


def test_roi_grid_is_centred_on_the_given_point():
    from napari_cardiac_priors.inference import roi_grid

    v = Volume(np.zeros((4, 50, 60), np.float32), spacing=(8.0, 1.25, 1.0))
    grid = roi_grid(v, {"spacing": [None, 1.6, 1.6], "roi_size": [33, 21]}, (20.0, 30.0))
    g = Volume(np.zeros(grid.shape, np.float32), affine=grid.affine)
    centre = v.world_to_index(g.index_to_world([2, 16, 10]))
    assert np.allclose(centre, [2, 20, 30]) and grid.shape == (4, 33, 21)
    assert np.allclose(g.spacing, (8.0, 1.6, 1.6))


def test_keep_heart_keeps_the_rv_beside_the_septum_not_the_largest():
    from napari_cardiac_priors.inference import keep_heart

    lab = np.zeros((6, 80, 80), np.uint8)
    lab[0:4, 30:50, 30:50] = 2  # the LV wall
    lab[0:4, 34:46, 34:46] = 1
    lab[0:4, 30:50, 50:56] = 3  # the RV beside the septum: 4 x 120 voxels
    lab[4:6, 25:55, 10:26] = 3  # a larger false "RV" above the base, 4 mm from the LV, 24 mm from the RV: 2 x 480
    out = keep_heart(lab, (10.0, 1.0, 1.0))
    assert (out[0:4] == 3).sum() == 480 and (out[4:6] == 3).sum() == 0
    lab[4:6, 25:55, 6:26] = 3  # larger still (2 x 600): without the septum anchor it would win
    assert (keep_heart(lab, (10.0, 1.0, 1.0))[4:6] == 3).sum() == 0


def test_default_model_gives_labels_and_six_landmarks_on_a_held_out_patient(acdc_root):
    """The six landmarks of the default model are measured on its own labels (the landmark
    head's points are kept beside them)."""
    from napari_cardiac_priors.conventions import DEFAULT_MODEL
    from napari_cardiac_priors.inference import segment
    from napari_cardiac_priors.landmarks import derive_from_labels
    from napari_cardiac_priors.metrics import dice, landmark_errors

    image, gt = _held_out(acdc_root, pid=10, phase="es")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = segment(image, DEFAULT_MODEL)
        ref = derive_from_labels(gt)
    for v in (1, 2, 3):
        assert dice(res.labels.array == v, gt.array == v) > 0.75
    assert res.landmarks.valid.all() and set(res.landmarks.source) == {"derived"}
    assert np.all(landmark_errors(res.landmarks, ref) < 15.0)


def test_warm_start_puts_a_unet_into_the_centre_slice_of_a_slab(tmp_path):
    import torch

    from napari_cardiac_priors.nn import build
    from napari_cardiac_priors.registry import get_model, load_state_dict
    from napari_cardiac_priors.training.loop import warm_start

    name = install_tiny_slab(tmp_path, name="tiny-unet", slab=1, n_landmarks=0, seed=3)
    unet = build("slab2d", get_model(name).config).eval()
    unet.load_state_dict({k: v.float() for k, v in load_state_dict(get_model(name)).items()})
    slab = build("slab2d", {"slab": 3, "n_classes": 4, "n_landmarks": 4, "base": 4, "depth": 2}).eval()
    info = warm_start(slab, name)
    assert info["name"] == name and info["sha256"] == get_model(name).sha256
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        seg, lmk = slab(x)
        np.testing.assert_allclose(seg.numpy(), unet(x[:, 1:2]).numpy(), atol=1e-5)  # the neighbours start at zero
    assert lmk.shape == (2, 4, 16, 16)
    wider = build("slab2d", {"slab": 3, "n_classes": 4, "n_landmarks": 4, "base": 8, "depth": 2})
    with pytest.raises(InputError, match="cannot start this network"):
        warm_start(wider, name)


def test_calibrate_batchnorm_averages_the_given_batches():
    import torch

    from napari_cardiac_priors.training.tasks.slab import calibrate_batchnorm

    net = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 1, bias=False), torch.nn.BatchNorm2d(1))
    torch.nn.init.ones_(net[0].weight)
    net.eval()
    g = torch.Generator().manual_seed(0)
    batches = [torch.randn(4, 1, 8, 8, generator=g) * s + m for m, s in ((2.0, 1.0), (4.0, 3.0))]
    calibrate_batchnorm(net, batches)
    means = [b.mean().item() for b in batches]
    variances = [b.var().item() for b in batches]  # unbiased, as batch norm keeps them
    assert net[1].running_mean.item() == pytest.approx(np.mean(means), rel=1e-5)
    assert net[1].running_var.item() == pytest.approx(np.mean(variances), rel=1e-5)
    assert net[1].momentum == 0.1 and not net.training  # as they were


def test_a_slab_recipe_trains_from_a_warm_start_and_records_it(tmp_path, acdc_root):
    import json
    from dataclasses import replace

    from napari_cardiac_priors.training.loop import train
    from napari_cardiac_priors.training.recipes import get_recipe

    name = install_tiny_slab(tmp_path, name="tiny-unet", slab=1, n_landmarks=0, seed=3)
    base = get_recipe("sslln-acdc")
    recipe = replace(base, train_ids=(1, 2), val_ids=(3,), epochs=1, batch_size=2, warm_start=name,
                     config={**base.config, "base": 4, "depth": 2},
                     train_options={"samples_per_epoch": 8, "calibration_batches": 2})
    events = []
    train(recipe, tmp_path / "run", data_root=acdc_root, progress=events.append)
    (rec,) = [e for e in events if e["event"] == "epoch"]
    assert np.isfinite(rec["loss"]) and 0.0 <= rec["val"]["dice_LV"] <= 1.0
    entry = json.loads((tmp_path / "run" / "manifest_entry.json").read_text())
    assert entry["training"]["warm_start"]["name"] == name and entry["version"] == base.version
    assert entry["landmarks"] and entry["training"]["domain"]


def test_the_head_stage_trains_the_landmark_head_alone(tmp_path, acdc_root):
    from dataclasses import replace

    import torch

    from napari_cardiac_priors.nn import build
    from napari_cardiac_priors.training.recipes import get_recipe
    from napari_cardiac_priors.training.tasks import make_task

    base = get_recipe("sslln-acdc")
    recipe = replace(base, train_ids=(1,), val_ids=(), epochs=3, batch_size=2, config={**base.config, "base": 4, "depth": 2},
                     train_options={"samples_per_epoch": 4, "stages": [["head", 1], ["joint", 2]]})
    task = make_task(recipe, data_root=acdc_root)
    assert [task.stage(e) for e in range(4)] == ["head", "joint", "joint", "joint"]
    net = build("slab2d", recipe.config)
    head = {id(p) for p in task.trainable(net, "head")}
    assert head == {id(p) for p in net.lmk_head.parameters()}
    assert len(list(task.trainable(net, "joint"))) == len(list(net.parameters()))
    with pytest.raises(ValueError, match="landmark head"):
        task.trainable(build("slab2d", {**recipe.config, "n_landmarks": 0}), "head")
    assert torch.is_tensor(next(iter(task.trainable(net, "head"))))


def test_the_trunk_stage_trains_segmentation_and_leaves_the_landmark_head(tmp_path, acdc_root):
    from dataclasses import replace

    import torch

    from napari_cardiac_priors.nn import build
    from napari_cardiac_priors.training.recipes import get_recipe
    from napari_cardiac_priors.training.tasks import make_task

    base = get_recipe("sslln-acdc")
    recipe = replace(base, train_ids=(1,), val_ids=(), epochs=2, batch_size=2, config={**base.config, "base": 4, "depth": 2},
                     train_options={"samples_per_epoch": 4, "stages": [["trunk", 1], ["head", 1]],
                                    "calibration_batches": 0})
    task = make_task(recipe, data_root=acdc_root)
    net = build("slab2d", recipe.config)
    trunk = {id(p) for p in task.trainable(net, "trunk")}
    head = {id(p) for p in net.lmk_head.parameters()}
    assert not trunk & head and len(trunk) + len(head) == len(list(net.parameters()))
    with pytest.raises(ValueError, match="unknown slab training stage 'trunc'"):
        task.trainable(net, "trunc")
    batch = next(iter(task.batches(task.load((1,)), np.random.default_rng(0))))
    for p in net.parameters():
        p.requires_grad_(id(p) in trunk)
    task.loss(net, batch, "trunk").backward()
    assert all(p.grad is None for p in net.lmk_head.parameters())
    assert any(p.grad is not None and torch.any(p.grad != 0) for p in net.parameters() if id(p) in trunk)
    # the trunk's loss is the segmentation loss alone: a landmark head with other weights changes nothing
    before = task.loss(net, batch, "trunk").item()
    with torch.no_grad():
        for p in net.lmk_head.parameters():
            p.add_(1.0)
    assert task.loss(net, batch, "trunk").item() == pytest.approx(before, rel=1e-5)
    assert task.loss(net, batch, "joint").item() != pytest.approx(before, rel=1e-3)


def test_every_recipe_names_only_options_its_task_reads():
    from dataclasses import replace

    from napari_cardiac_priors.training.recipes import RECIPES
    from napari_cardiac_priors.training.tasks import make_task

    for recipe in RECIPES.values():
        make_task(recipe)  # the bundled recipes are consistent
    misspelt = replace(RECIPES["unet-acdc"], train_options={"samples_per_epoch": 10, "augment_strenght": 0.5})
    with pytest.raises(ValueError, match=r"unknown train_options \['augment_strenght'\]"):
        make_task(misspelt)


def test_keep_heart_chooses_the_piece_with_the_left_ventricle_over_a_larger_false_rv():
    from napari_cardiac_priors.inference import keep_heart

    labels = np.zeros((6, 120, 120), np.uint8)
    yy, xx = np.mgrid[:120, :120]
    for k in range(1, 5):
        r = np.hypot(yy - 30, xx - 30)
        labels[k][r < 12] = 2
        labels[k][r < 7] = 1
        labels[k][(np.abs(yy - 30) < 8) & (xx > 42) & (xx < 50)] = 3  # a small RV beside the wall
        labels[k][(yy > 70) & (xx > 70)] = 3  # a large false RV far away (e.g. the right atrium of a shifted slice)
        labels[k][90, 90] = 1  # with a speck of LV in it
    out = keep_heart(labels, (10.0, 2.0, 2.0))
    assert out[:, 70:, 70:].sum() == 0  # the far blob goes, however large
    assert (out == 1).sum() == (labels[:, :60, :60] == 1).sum() and (out == 3).any()


def test_training_options_are_typed_with_their_defaults_in_one_place():
    from napari_cardiac_priors.training.tasks.options import SlabOptions, SliceOptions, TLOptions

    opts = SlabOptions.parse({"stages": [["head", 3]], "lambda1": 0.05}, recipe="r")
    assert opts.stages == (["head", 3],) and opts.lambda1 == 0.05 and opts.samples_per_epoch == 2000
    assert TLOptions.parse({}).swap_p == 0.1 and SliceOptions.parse({"size": [96, 96]}).size == (96, 96)
    with pytest.raises(ValueError, match=r"recipe 'r': unknown train_options \['lambda_1'\]; SlabOptions reads"):
        SlabOptions.parse({"lambda_1": 0.05}, recipe="r")
    with pytest.raises(ValueError, match="unknown train_options"):  # a T-L option is no slab option
        SlabOptions.parse({"swap_p": 0.2}, recipe="r")
