"""Shared fixtures: small synthetic volumes, the ACDC folder, a user model folder per test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_cardiac_priors.volume import Volume


@pytest.fixture(autouse=True)
def _user_home(tmp_path_factory, monkeypatch):
    """Every test gets its own empty user model folder."""
    monkeypatch.setenv("CARDIAC_PRIORS_HOME", str(tmp_path_factory.mktemp("home")))


@pytest.fixture
def oblique_affine() -> np.ndarray:
    """A NIfTI affine with rotation, anisotropic spacing and a non-zero origin (float32-exact)."""
    import numpy as np

    a, b = np.deg2rad(20.0), np.deg2rad(-35.0)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    m = np.eye(4)
    m[:3, :3] = (rz @ rx) @ np.diag([1.25, 1.5, 8.0])
    m[:3, 3] = [-101.5, 42.25, 17.75]
    return m.astype(np.float32).astype(np.float64)


@pytest.fixture
def image_volume(oblique_affine) -> Volume:
    rng = np.random.default_rng(0)
    return Volume(rng.integers(0, 1200, size=(7, 20, 24)).astype(np.int16), affine=oblique_affine, kind="image")


@pytest.fixture
def labels_volume(oblique_affine) -> Volume:
    lab = np.zeros((7, 20, 24), np.uint8)
    lab[2:5, 5:12, 6:14] = 1
    lab[2:5, 4:13, 14:16] = 2
    lab[2:5, 12:16, 6:14] = 3
    lab[3, 16, 6:14] = 4
    return Volume(lab, affine=oblique_affine, kind="labels")


@pytest.fixture(scope="session")
def acdc_root() -> Path:
    from napari_cardiac_priors.io.acdc import default_root

    root = default_root()
    if not (root / "training").is_dir():
        pytest.skip(f"ACDC data not found at {root} (set CARDIAC_PRIORS_ACDC)")
    return root



@pytest.fixture
def notes(monkeypatch):
    """napari notifications shown during a test, as ``(kind, message)`` pairs."""
    import napari.utils.notifications as notifications

    shown = []
    for kind in ("error", "warning", "info"):
        monkeypatch.setattr(notifications, f"show_{kind}", lambda msg, kind=kind: shown.append((kind, str(msg))))
    return shown
