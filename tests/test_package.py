"""Packaging: a light import, the manifest inside a built wheel, the import contract."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest


def test_import_pulls_in_no_heavy_library():
    code = "import sys, napari_cardiac_priors; print(' '.join(m for m in ('torch', 'napari', 'qtpy', 'SimpleITK', 'dask', 'scipy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_wheel_contains_manifest(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(Path(__file__).resolve().parents[1])],
        capture_output=True, text=True,
    )
    if r.returncode != 0:
        pytest.fail(r.stderr[-2000:])
    (wheel,) = tmp_path.glob("napari_cardiac_priors-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        assert "napari_cardiac_priors/napari.yaml" in names
        assert "napari_cardiac_priors/registry/manifest.json" in names
        (ep,) = [n for n in names if n.endswith("entry_points.txt")]
        text = z.read(ep).decode()
    assert "[napari.manifest]" in text and "napari-cardiac-priors = napari_cardiac_priors:napari.yaml" in text
    assert "cardiac-priors = napari_cardiac_priors.cli:main" in text
