"""SDNet components: shapes, binary anatomy with a straight-through gradient, losses on known inputs."""

import pytest
import torch

from napari_cardiac_priors.nn import build
from napari_cardiac_priors.nn.sdnet import (
    SDNet, binarise, kl_divergence, lsgan_loss, soft_dice_loss, z_reconstruction_loss,
)

SMALL = {"n_anatomy": 8, "n_z": 8, "n_classes": 4, "size": 64, "base": 4, "film_width": 8, "seg_width": 8, "disc_base": 4}


def test_shapes_and_binary_anatomy():
    net = build("sdnet", SMALL)
    assert isinstance(net, SDNet)
    out = net(torch.rand(2, 1, 64, 64) * 2 - 1)
    a = out["anatomy"]
    assert a.shape == (2, 8, 64, 64) and out["z"].shape == out["mu"].shape == (2, 8)
    assert torch.equal(a.detach().sum(1), torch.ones(2, 64, 64))  # one channel per pixel
    assert set(a.detach().unique().tolist()) <= {0.0, 1.0}
    assert out["reconstruction"].shape == (2, 1, 64, 64) and out["reconstruction"].abs().max() <= 1
    seg = out["segmentation"]
    assert seg.shape == (2, 4, 64, 64) and torch.allclose(seg.sum(1), torch.ones(2, 64, 64), atol=1e-5)
    assert net.discriminator(seg[:, 1:]).shape == (2, 1)


def test_decoder_reuses_the_z_independent_part_for_other_z():
    torch.manual_seed(0)
    net = build("sdnet", SMALL).eval()
    anatomy = net.encode(torch.rand(1, 1, 64, 64))[0].detach()
    prepared = net.decoder.prepare(anatomy)
    for z in torch.randn(3, 1, 8):
        assert torch.equal(net.decoder(None, z, prepared=prepared), net.decoder(anatomy, z))


def test_binarise_is_argmax_with_identity_gradient():
    p = torch.softmax(torch.randn(1, 3, 4, 4), 1).requires_grad_(True)
    b = binarise(p)
    assert torch.equal(b.detach().argmax(1), p.argmax(1))
    (b * torch.arange(3.0)[None, :, None, None]).sum().backward()
    assert torch.allclose(p.grad, torch.arange(3.0)[None, :, None, None].expand_as(p))


def test_losses_on_known_inputs():
    assert kl_divergence(torch.zeros(3, 8), torch.zeros(3, 8)).item() == 0.0
    assert kl_divergence(torch.ones(1, 2), torch.zeros(1, 2)).item() == pytest.approx(1.0)
    target = torch.randint(0, 4, (2, 16, 16))
    perfect = torch.nn.functional.one_hot(target, 4).movedim(-1, 1).float()
    assert soft_dice_loss(perfect, target).item() == pytest.approx(0.0, abs=1e-6)
    assert soft_dice_loss(torch.roll(perfect, 1, dims=1), target).item() > 0.9
    assert lsgan_loss(torch.ones(4, 1), True).item() == 0.0 and lsgan_loss(torch.ones(4, 1), False).item() == 1.0


def test_z_reconstruction_re_encodes_the_decoded_sample():
    torch.manual_seed(0)
    net = build("sdnet", SMALL).eval()
    anatomy = net.encode(torch.rand(2, 1, 64, 64))[0].detach()
    calls = []
    orig = net.decoder.forward
    net.decoder.forward = lambda a, z: calls.append(z) or orig(a, z)
    loss = z_reconstruction_loss(net, anatomy)
    assert loss.item() > 0 and len(calls) == 1 and calls[0].shape == (2, 8)


def test_anatomy_round_trip_trains_decoder_and_anatomy_encoder_only_when_weighted():
    from napari_cardiac_priors.nn.losses import sdnet_loss
    from napari_cardiac_priors.nn.sdnet import anatomy_round_trip_loss

    torch.manual_seed(0)
    net = build("sdnet", SMALL).train()
    image = torch.rand(2, 1, 64, 64) * 2 - 1
    out = net(image)
    loss = anatomy_round_trip_loss(net, out["anatomy"])
    assert 0 < loss.item() < 1
    loss.backward()
    learns = {name for name, m in net.named_children()
              if any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())}
    assert learns == {"decoder", "anatomy_encoder"}
    labels, labelled = torch.zeros(2, 64, 64, dtype=torch.long), torch.tensor([False, False])
    terms = {}
    sdnet_loss(net, net(image), image, labels, labelled, adversarial=False, terms=terms)
    assert "anatomy_round_trip" not in terms  # the paper's cost: weight 0
    terms = {}
    sdnet_loss(net, net(image), image, labels, labelled, weights={"anatomy_round_trip": 10.0},
               adversarial=False, terms=terms)
    assert 0 < terms["anatomy_round_trip"] < 10
    with pytest.raises(ValueError, match="anatomy_roundtrip"):
        sdnet_loss(net, out, image, labels, labelled, weights={"anatomy_roundtrip": 1.0})
