"""Network shapes and losses on known inputs."""

import math

import pytest
import torch

from napari_cardiac_priors.nn import build
from napari_cardiac_priors.nn.losses import balanced_landmark_ce, squared_dice_loss, sslln_loss
from napari_cardiac_priors.nn.sslln import SSLLN


def test_sslln_shapes_and_contract():
    net = SSLLN(n_slices=6, n_classes=5).eval()
    seg, lmk = net(torch.randn(2, 6, 32, 48))
    assert seg.shape == (2, 5, 6, 32, 48) and lmk.shape == (2, 7, 6, 32, 48)
    with pytest.raises(ValueError, match="expects 6 slices"):
        net(torch.randn(1, 5, 32, 32))
    with pytest.raises(ValueError, match="multiple of 16"):
        net(torch.randn(1, 6, 30, 32))
    # five blocks with the paper's filters; 15 convolutions before the heads
    convs = [m for m in net.blocks.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 16, 32, 32, 64, 64, 64, 128, 128, 128, 256, 256, 256]
    assert sum(isinstance(m, torch.nn.ConvTranspose2d) for m in net.modules()) == 4


def test_slices_are_channels_not_batch():
    """Changing one slice changes the output of the others (2.5D), unlike the 2D U-Net."""
    torch.manual_seed(0)
    x = torch.randn(1, 4, 32, 32)
    y = x.clone()
    y[0, 3] += 1.0
    sslln, unet = SSLLN(4, 4).eval(), build("unet2d", {"n_slices": 4, "n_classes": 4, "base": 8, "depth": 2}).eval()
    with torch.no_grad():
        assert not torch.allclose(sslln(x)[0][:, :, 0], sslln(y)[0][:, :, 0])
        assert torch.allclose(unet(x)[:, :, 0], unet(y)[:, :, 0], atol=1e-6)
        z = x.clone()
        z[0, 2] = 0  # an all-zero (padding) slice comes out as background
        assert (unet(z)[0, :, 2].argmax(0) == 0).all()


def test_squared_dice_known_values():
    target = torch.zeros(1, 4, 4, dtype=torch.long)
    target[0, :2] = 1
    perfect = torch.zeros(1, 2, 4, 4)
    perfect[0, 1] = torch.where(target[0] == 1, 50.0, -50.0)
    assert squared_dice_loss(perfect, target).item() == pytest.approx(0.0, abs=1e-5)
    assert squared_dice_loss(-perfect, target).item() == pytest.approx(1.0, abs=1e-5)
    # uniform probabilities 0.5: foreground dice = 2*0.5*8 / (16*0.25 + 8) = 8/12
    assert squared_dice_loss(torch.zeros(1, 2, 4, 4), target).item() == pytest.approx(1 - 8 / 12, abs=1e-6)


def test_balanced_ce_known_values():
    target = torch.zeros(2, 10, 10, dtype=torch.long)
    target[:, 5, 5] = 3
    target[1, 1, 1] = 6
    # uniform logits: every voxel has -log p = log 7, so the weighted mean is log 7
    assert balanced_landmark_ce(torch.zeros(2, 7, 10, 10), target).item() == pytest.approx(math.log(7), rel=1e-6)
    # class weights: the landmark voxel weighs 1 - 1/100, the background 1 - 99/100
    logits = torch.zeros(1, 7, 10, 10)
    logits[0, 3, 5, 5] = 5.0  # confident and right at the landmark
    t = target[:1]
    lp = torch.log_softmax(logits, 1)
    w_bg, w_3 = 1 - 99 / 100, 1 - 1 / 100
    expected = -(w_bg * lp[0, 0][t[0] == 0].sum() + w_3 * lp[0, 3, 5, 5]) / (w_bg * 99 + w_3)
    assert balanced_landmark_ce(logits, t).item() == pytest.approx(expected.item(), rel=1e-6)


def test_sslln_loss_trains_on_a_toy_problem():
    """A few steps on one synthetic stack lower the loss (the heads and losses are wired)."""
    torch.manual_seed(0)
    net = SSLLN(2, 3)
    x = torch.zeros(1, 2, 32, 32)
    x[0, :, 8:20, 8:20] = 1.0
    seg = (x[0] > 0).long()[None]
    lmk = torch.zeros_like(seg)
    lmk[0, 0, 14, 14] = 2
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    losses = []
    for _ in range(15):
        s, l = net(x)
        loss = sslln_loss(s, seg, l, lmk)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]


def test_conv3d_takes_onednn_for_one_thin_volume_and_matches_torch():
    from torch.autograd.profiler import profile

    from napari_cardiac_priors.nn.layers import Conv3d

    torch.manual_seed(0)
    ours = Conv3d(16, 16, 3, padding=1).eval()
    ref = torch.nn.Conv3d(16, 16, 3, padding=1).eval()
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(1, 16, 12, 40, 40)  # N * C * D * H under PyTorch's threshold: its im2col path
    with torch.no_grad():
        with profile() as prof:
            y = ours(x)
        names = {e.name for e in prof.function_events}
        torch.testing.assert_close(y, ref(x), rtol=1e-4, atol=1e-4)
    assert "aten::mkldnn_convolution" in names and "aten::slow_conv3d_forward" not in names
    x.requires_grad_(True)  # with gradients: PyTorch's own path, same values
    torch.testing.assert_close(ours(x), ref(x), rtol=1e-4, atol=1e-4)
