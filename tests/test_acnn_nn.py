"""T-L autoencoder / predictor shapes, label swap noise, the ACNN losses, the ACNN 3D network."""

import numpy as np
import pytest
import torch

from napari_cardiac_priors.nn import build
from napari_cardiac_priors.nn.acnn import ACNN3D
from napari_cardiac_priors.nn.losses import acnn_seg_loss, acnn_sr_loss, code_distance, shape_prior_loss
from napari_cardiac_priors.nn.tl import CodePredictor, LabelAutoencoder, TLNetwork, label_swap_noise, one_hot


def test_autoencoder_paper_grid_and_shapes():
    ae = LabelAutoencoder(n_classes=4, shape=(12, 48, 48), code_size=64)
    assert ae.grid == (1, 2, 2)  # strides (1,2,2), (2,2,2), (2,2,2), (3,3,3)
    x = one_hot(torch.randint(0, 4, (2, 12, 48, 48)), 4)
    logits, code = ae(x)
    assert code.shape == (2, 64) and logits.shape == (2, 4, 12, 48, 48)


def test_autoencoder_refuses_indivisible_grid():
    with pytest.raises(ValueError, match="divisible"):
        LabelAutoencoder(shape=(10, 48, 48))


def test_autoencoder_2d_and_the_code_is_linear():
    ae = LabelAutoencoder(n_classes=3, shape=(48, 48), code_size=16).eval()
    x = one_hot(torch.randint(0, 3, (3, 48, 48)), 3)
    code = ae.encode(x)
    assert code.shape == (3, 16)
    assert (code < 0).any()  # no ReLU on the code: negative values occur
    assert ae.decode(code).shape == (3, 3, 48, 48)


@pytest.mark.parametrize("shape", [(24, 48, 48), (12, 48, 48)])
def test_decode_slab_equals_the_full_decoding(shape):
    torch.manual_seed(0)
    ae = LabelAutoencoder(n_classes=5, shape=shape, code_size=8, widths=(4, 6, 8)).eval()
    for m in ae.modules():  # non-trivial running statistics and biases
        if isinstance(m, torch.nn.BatchNorm3d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.bias.data.uniform_(-0.2, 0.2)
    code = torch.randn(2, 8)
    with torch.no_grad():
        full = ae.decode(code)
        n = shape[0]
        for a, b in [(0, 1), (1, 2), (n // 2, n // 2 + 1), (n - 1, n), (3, 9), (0, n)]:
            np.testing.assert_allclose(ae.decode_slab(code, a, b).numpy(), full[:, :, a:b].numpy(), atol=1e-5)
            one = ae.decode_slab(code[1:], a, b)  # a single volume takes the oneDNN path
            np.testing.assert_allclose(one.numpy(), full[1:, :, a:b].numpy(), atol=1e-5)
        with pytest.raises(ValueError, match="outside"):
            ae.decode_slab(code, n - 1, n + 1)
    with pytest.raises(ValueError, match="3D models"):
        LabelAutoencoder(n_classes=3, shape=(48, 48), code_size=4).decode_slab(torch.zeros(1, 4), 0, 1)


def test_predictor_shape():
    p = CodePredictor(shape=(12, 48, 48), code_size=64, widths=(8, 8, 8, 8))
    assert p(torch.rand(2, 1, 12, 48, 48)).shape == (2, 64)


def test_tl_network_from_config_has_code_statistics():
    net = build("tl", {"n_classes": 4, "shape": [12, 48, 48], "code_size": 32, "predictor_widths": [8, 8, 8, 8]})
    assert isinstance(net, TLNetwork)
    assert {"code_mean", "code_std", "code_cov_inv"} <= set(net.state_dict())
    logits, code, pred = net(one_hot(torch.randint(0, 4, (1, 12, 48, 48)), 4), torch.rand(1, 1, 12, 48, 48))
    assert logits.shape == (1, 4, 12, 48, 48) and code.shape == pred.shape == (1, 32)


def test_label_swap_noise_rate_and_never_same_class():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (200, 200), generator=g)
    noisy = label_swap_noise(labels, 4, p=0.1, generator=g)
    changed = (noisy != labels).float().mean().item()
    assert 0.09 < changed < 0.11
    assert noisy.dtype == labels.dtype and int(noisy.min()) >= 0 and int(noisy.max()) <= 3
    assert torch.equal(label_swap_noise(labels, 4, p=0.0), labels)
    assert (label_swap_noise(labels, 4, p=1.0) != labels).all()


def test_shape_prior_is_zero_for_the_ground_truth_and_positive_otherwise():
    torch.manual_seed(0)
    ae = LabelAutoencoder(n_classes=4, shape=(12, 48, 48)).eval().requires_grad_(False)
    target = torch.randint(0, 4, (2, 12, 48, 48))
    assert shape_prior_loss(ae.encode, one_hot(target, 4), target).item() == 0.0
    other = torch.roll(target, 5, dims=-1)
    assert shape_prior_loss(ae.encode, one_hot(other, 4), target).item() > 0.0
    assert code_distance(torch.ones(2, 3), torch.zeros(2, 3)).item() == pytest.approx(3.0)


def test_acnn_seg_loss_prior_term_and_gradient():
    torch.manual_seed(0)
    ae = LabelAutoencoder(n_classes=4, shape=(12, 48, 48)).eval().requires_grad_(False)
    target = torch.randint(0, 4, (1, 12, 48, 48))
    logits = torch.randn(1, 4, 12, 48, 48, requires_grad=True)
    plain = acnn_seg_loss(logits, target)
    with_prior = acnn_seg_loss(logits, target, ae.encode, lambda1=0.01)
    expected = 0.01 * shape_prior_loss(ae.encode, torch.softmax(logits, 1), target)
    assert with_prior.item() == pytest.approx(plain.item() + expected.item(), rel=1e-5)
    with_prior.backward()
    assert logits.grad is not None and all(p.grad is None for p in ae.parameters())


def test_acnn_sr_loss_zero_on_the_truth():
    pred = CodePredictor(shape=(10, 16, 16), code_size=8, widths=(4, 4, 4, 4)).eval().requires_grad_(False)
    hr = torch.rand(2, 1, 10, 16, 16)
    assert acnn_sr_loss(hr.clone(), hr, pred).item() == 0.0
    out = hr + 0.1 * torch.randn_like(hr)
    expected = acnn_sr_loss(out, hr).item() + 0.01 * code_distance(pred(out), pred(hr)).item()
    assert acnn_sr_loss(out, hr, pred, lambda1=0.01).item() == pytest.approx(expected, rel=1e-5)
    assert code_distance(pred(out), pred(hr)).item() > 0


@pytest.mark.parametrize("task, channels", [("segmentation", 4), ("super-resolution", 1)])
def test_acnn3d_output_on_the_hr_grid(task, channels):
    net = ACNN3D(n_classes=4, factor=5, widths=(4, 8, 8, 8), up_channels=4, task=task)
    out = net(torch.rand(2, 1, 6, 32, 40))
    assert out.shape == (2, channels, 30, 32, 40)
    with pytest.raises(ValueError, match="divisible"):
        net(torch.rand(1, 1, 6, 30, 40))


def test_acnn_sr_starts_from_linear_upsampling():
    net = ACNN3D(factor=5, widths=(4, 8), up_channels=4, task="super-resolution")
    for p in net.head[-1].parameters():
        torch.nn.init.zeros_(p)
    x = torch.rand(1, 1, 4, 16, 16)
    out = net.eval()(x)
    ref = torch.nn.functional.interpolate(x, size=(20, 16, 16), mode="trilinear", align_corners=False)
    torch.testing.assert_close(out, ref)


def test_class_labels_is_argmax_with_first_on_ties():
    from napari_cardiac_priors.nn.layers import class_labels

    g = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 3, (2, 5, 4, 6, 7), generator=g).float()  # many ties
    out = class_labels(scores)
    assert out.dtype == torch.uint8 and torch.equal(out.long(), scores.argmax(1))


def test_preview_head_is_fitted_to_the_full_decoding():
    """fit_preview: only the head learns; its coarse volume comes to agree with the decoding."""
    from napari_cardiac_priors.metrics import dice
    from napari_cardiac_priors.nn.layers import class_labels
    from napari_cardiac_priors.nn.tl import fit_preview

    torch.manual_seed(0)
    ae = LabelAutoencoder(n_classes=3, shape=(12, 48, 48), code_size=8, widths=(4, 6, 8), preview_blocks=2)
    codes = torch.randn(20, 8) * 3
    before = {k: v.clone() for k, v in ae.state_dict().items() if not k.startswith("preview.")}
    with torch.no_grad():
        assert ae.eval().decode_preview(codes[:2]).shape == (2, 3, 12, 48, 48)

    def agreement():
        with torch.no_grad():
            full, rough = class_labels(ae.decode(codes)), class_labels(ae.decode_preview(codes))
        return np.mean([dice((rough == c).numpy(), (full == c).numpy()) for c in (1, 2)])

    start = agreement()
    losses = fit_preview(ae, codes, steps=60, batch_size=4, lr=1e-2, generator=torch.Generator().manual_seed(0))
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:5])
    assert agreement() > max(start, 0.0) + 0.2
    assert all(torch.equal(v, ae.state_dict()[k]) for k, v in before.items())  # the decoder itself is untouched
    assert all(p.requires_grad for p in ae.parameters())
    with pytest.raises(ValueError, match="no preview head"):
        LabelAutoencoder(n_classes=3, shape=(12, 48, 48), code_size=8, widths=(4, 6, 8)).decode_preview(codes[:1])
    with pytest.raises(ValueError, match="preview_blocks must be 1 to 3"):
        LabelAutoencoder(n_classes=3, shape=(12, 48, 48), code_size=8, preview_blocks=4)
