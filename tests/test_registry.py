
import numpy as np
import pytest
import torch

from napari_cardiac_priors import registry
from napari_cardiac_priors.registry import RegistryError


def _tiny(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Conv2d(2, 1, 1))
    path = tmp_path / "tiny.safetensors"
    registry.save_weights(model.state_dict(), path)
    entry = {"name": "tiny-test", "version": "1.0", "task": "test", "architecture": "conv2x",
             "description": "a tiny model made in a test", "license": "CC0-1.0",
             "input": {"spacing": [1, 1, 1]}}
    return model, path, entry


def test_add_list_load(tmp_path):
    model, path, entry = _tiny(tmp_path)
    installed = registry.add_model(path, entry)
    assert installed.sha256 == registry.sha256_of(path)
    assert "tiny-test" in [e.name for e in registry.list_models()]
    e = registry.get_model("tiny-test")
    assert e.input == {"spacing": [1, 1, 1]} and e.license == "CC0-1.0"
    state = registry.load_state_dict("tiny-test")
    clone = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Conv2d(2, 1, 1))
    clone.load_state_dict(state)
    x = torch.randn(1, 1, 8, 8)
    torch.testing.assert_close(clone(x), model(x))
    arrays = registry.load_arrays("tiny-test")
    np.testing.assert_array_equal(arrays["0.weight"], model.state_dict()["0.weight"].numpy())


def test_tampered_weights_are_refused(tmp_path):
    _, path, entry = _tiny(tmp_path)
    e = registry.add_model(path, entry)
    data = bytearray(e.path.read_bytes())
    data[-1] ^= 0xFF
    e.path.write_bytes(bytes(data))
    with pytest.raises(RegistryError, match=r"model 'tiny-test': weights file tiny-test.safetensors has sha256"):
        registry.load_state_dict("tiny-test")
    e.path.unlink()
    with pytest.raises(RegistryError, match="tiny-test.*missing"):
        registry.load_state_dict("tiny-test")


def test_add_refusals(tmp_path):
    _, path, entry = _tiny(tmp_path)
    registry.add_model(path, entry)
    with pytest.raises(RegistryError, match="already installed"):
        registry.add_model(path, entry)
    registry.add_model(path, {**entry, "version": "1.1"}, overwrite=True)
    assert registry.get_model("tiny-test").version == "1.1"
    pickle = tmp_path / "model.pt"
    pickle.write_bytes(b"not safetensors")
    with pytest.raises(RegistryError, match="must be a .safetensors file"):
        registry.add_model(pickle, entry)
    fake = tmp_path / "fake.safetensors"
    fake.write_bytes(b"\x00" * 16)
    with pytest.raises(RegistryError, match="not a valid safetensors"):
        registry.add_model(fake, {**entry, "name": "fake"})
    with pytest.raises(RegistryError, match="unknown model 'nope'"):
        registry.get_model("nope")
    registry.remove_model("tiny-test")
    assert "tiny-test" not in [e.name for e in registry.list_models()]


def test_bundled_manifest_entries_are_complete():
    for e in registry._read_manifest(registry.BUNDLED_DIR):
        assert e.task in registry.TASKS
        registry.verified_path(e)  # every bundled file exists and matches its hash
        if "acdc" in e.training.get("data", "").lower():
            assert "CC BY-NC-SA 4.0" in e.license and "Bernard" in e.citation


def test_bundled_phantom_atlases_load():
    from napari_cardiac_priors.registry.atlases import load_atlases

    atlases = load_atlases("atlases-phantom")
    assert len(atlases) == 20
    a = atlases[0]
    assert a.labels.kind == "labels" and a.labels.spacing == pytest.approx((2.0, 1.25, 1.25))
    assert set(np.unique(a.labels.array)) == {0, 1, 2, 3, 4} and a.landmarks.valid.all()


def test_user_atlas_set_round_trip_and_tamper(tmp_path):
    from napari_cardiac_priors.atlases.phantom import phantom_atlases
    from napari_cardiac_priors.registry.atlases import load_atlases, write_atlas_set

    entry = write_atlas_set(phantom_atlases(2, seed=42), "my-atlases", description="two")
    assert entry.task == "atlas" and "my-atlases" in [e.name for e in registry.list_models(task="atlas")]
    back = load_atlases("my-atlases")
    assert len(back) == 2 and back[1].landmarks.valid.all()
    registry.verified_path("my-atlases")
    lab = entry.path / "atlas_000_labels.nii.gz"
    lab.write_bytes(lab.read_bytes()[:-4] + b"\x00\x00\x00\x00")
    with pytest.raises(RegistryError, match="my-atlases.*differ"):
        load_atlases("my-atlases")
    with pytest.raises(RegistryError, match="already installed"):
        write_atlas_set(phantom_atlases(1, seed=43), "my-atlases")
