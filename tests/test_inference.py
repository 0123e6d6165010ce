"""segment(): geometry on the input grid, landmarks, bad input, devices."""

import numpy as np
import pytest

from helpers import install_tiny_sslln
from napari_cardiac_priors.contract import model_grid, to_model
from napari_cardiac_priors.errors import InputError
from napari_cardiac_priors.inference import keep_largest_component, resolve_device, segment
from napari_cardiac_priors.phantom import make_subject
from napari_cardiac_priors.volume import Volume


@pytest.fixture(scope="module")
def lr_phantom():
    return make_subject(42, pathology="NOR", lr=True)["ed"]


def test_model_grid_round_trip_geometry(lr_phantom):
    """A point keeps its world position through the model grid (in-plane resampling, slice padding)."""
    contract = {"size": [16, 112, 112], "spacing": [None, 1.25, 1.25]}
    vol = lr_phantom.lr_image
    grid = model_grid(vol, contract)
    assert grid.shape == (16, 112, 112) and grid.count == vol.shape[0]
    g = grid.volume(np.zeros(grid.shape))
    w = vol.index_to_world([3, 20, 30])
    zi, yi, xi = g.world_to_index(w)
    assert zi == pytest.approx(3 + grid.first) and g.spacing == pytest.approx(vol.spacing)
    image, _ = to_model(vol, {**contract, "normalisation": "percentile_1_99"})
    assert image.shape == (16, 112, 112) and 0 <= image.min() and image.max() <= 1
    assert not image[: grid.first].any()  # padding slices are empty


def test_segment_returns_input_grid_and_landmarks(tmp_path, lr_phantom):
    name = install_tiny_sslln(tmp_path)
    with pytest.warns(UserWarning):  # an untrained network: some landmarks missing, or no heart
        result = segment(lr_phantom.lr_image, name)
    assert result.labels.shape == lr_phantom.lr_image.shape
    np.testing.assert_allclose(result.labels.affine, lr_phantom.lr_image.affine)
    assert result.labels.kind == "labels" and result.landmarks is not None
    assert result.info["model"] == name and result.info["device"] == "cpu"


def test_segment_bad_input(tmp_path, lr_phantom):
    name = install_tiny_sslln(tmp_path)
    vol = lr_phantom.lr_image
    with pytest.raises(InputError, match="handles at most 16"):
        segment(Volume(np.ones((20, 64, 64)), spacing=(10, 1.25, 1.25)), name)
    with pytest.raises(InputError, match="slice spacing 2 mm is outside"):
        segment(Volume(np.random.rand(10, 64, 64), spacing=(2, 1.25, 1.25)), name)
    with pytest.raises(InputError, match="in-plane spacing 5 x 5 mm"):
        segment(Volume(np.random.rand(10, 64, 64), spacing=(10, 5, 5)), name)
    with pytest.raises(InputError, match="constant"):
        segment(vol.with_array(np.zeros(vol.shape, np.int16)), name)
    with pytest.raises(InputError, match="not a label map"):
        segment(lr_phantom.lr_labels, name)
    cine = Volume(np.random.rand(3, 10, 64, 64), spacing=(10, 1.25, 1.25))
    with pytest.raises(InputError, match="cine"):
        segment(cine, name)


def test_tampered_model_is_refused(tmp_path, lr_phantom):
    from napari_cardiac_priors import registry
    from napari_cardiac_priors.inference import _load_cached

    name = install_tiny_sslln(tmp_path, name="tiny-tampered")
    path = registry.get_model(name).path
    path.write_bytes(path.read_bytes()[:-8] + b"\x00" * 8)
    _load_cached.cache_clear()
    with pytest.raises(registry.RegistryError, match="tiny-tampered"):
        segment(lr_phantom.lr_image, name)


def test_keep_largest_component():
    lab = np.zeros((5, 10, 10), np.uint8)
    lab[1:3, 1:5, 1:5] = 1
    lab[4, 8, 8] = 1
    lab[0, 0, 9] = 2
    out = keep_largest_component(lab)
    assert out[4, 8, 8] == 0 and out[1, 1, 1] == 1 and out[0, 0, 9] == 2


def test_resolve_device():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cpu", "cuda", "mps")
    with pytest.raises(InputError, match="device must be"):
        resolve_device("tpu")


def test_no_heart_gives_empty_labels_and_nan_landmarks(tmp_path, lr_phantom, monkeypatch):
    import napari_cardiac_priors.inference as inference

    name = install_tiny_sslln(tmp_path, name="tiny-empty")

    def background_only(network, image, *, device="cpu"):
        seg = np.zeros((5, *image.shape), np.float32)
        seg[0] = 1.0
        lmk = np.zeros((7, *image.shape), np.float32)
        lmk[0] = 1.0
        lmk[3, 5, 50, 50] = 2.0  # a stray landmark voxel must not survive an empty result
        return seg, lmk

    monkeypatch.setattr(inference, "predict_probabilities", background_only)
    with pytest.warns(UserWarning, match="found no heart"):
        result = segment(lr_phantom.lr_image, name)
    assert not result.labels.array.any()
    assert np.isnan(result.landmarks.positions).all()


def test_slices_without_signal_are_flagged(tmp_path, lr_phantom):
    from napari_cardiac_priors.quality import blank_slices

    vol = lr_phantom.lr_image
    assert blank_slices(vol.array) == []
    lost = vol.array.copy()
    lost[[2, 5]] = 0
    assert blank_slices(lost) == [2, 5]
    assert blank_slices(np.zeros((4, 8, 8))) == []  # all blank: the input check's "constant" error, not a note
    name = install_tiny_sslln(tmp_path)
    notes = []
    segment(vol.with_array(lost), name, notes=notes)
    assert any("slices 2, 5 of" in n and "no signal" in n for n in notes)
    notes = []
    segment(vol, name, notes=notes)
    assert not any("no signal" in n for n in notes)
