import json

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
