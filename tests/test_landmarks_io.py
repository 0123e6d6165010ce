import json

import numpy as np
import pytest

from napari_cardiac_priors.conventions import LANDMARK_NAMES
from napari_cardiac_priors.errors import InputError
from napari_cardiac_priors.io import read_landmarks, write_landmarks
from napari_cardiac_priors.landmarks import Landmarks


@pytest.fixture
def landmarks():
    p = np.array([[10.5, -3.25, 40.0], [30.0, 12.0, 41.0], [12.0, -20.0, 39.5],
                  [-25.0, 1.0, 40.0], [0.0, 0.0, -10.125], [np.nan, np.nan, np.nan]])
    return Landmarks(p, confidence=[0.9, 0.8, 0.95, 0.7, 0.99, np.nan], source=("model", "user", "model", "model", "model", "model"))


@pytest.mark.parametrize("suffix", [".json", ".csv", ".vtk"])
def test_round_trip(tmp_path, landmarks, suffix):
    if suffix == ".vtk":  # VTK holds six points: a NaN row would be lost, so fill it
        landmarks.positions[5] = [1.0, 2.0, 3.0]
    path = write_landmarks(landmarks, tmp_path / f"lm{suffix}")
    back = read_landmarks(path)
    np.testing.assert_allclose(back.positions, landmarks.positions, equal_nan=True)
    if suffix != ".vtk":
        np.testing.assert_allclose(back.confidence, landmarks.confidence, equal_nan=True)
        assert back.source == landmarks.source


def test_json_format_matches_architecture(tmp_path, landmarks):
    doc = json.loads(write_landmarks(landmarks, tmp_path / "a.json").read_text())
    assert doc["space"] == "world_mm_ras"
    assert [r["name"] for r in doc["landmarks"]] == list(LANDMARK_NAMES)
    assert doc["landmarks"][0] == {"name": "rv_insert_anterior", "position": [10.5, -3.25, 40.0], "confidence": 0.9, "source": "model"}
    assert doc["landmarks"][5]["position"] is None


def test_irtk_style_vtk_in_lps(tmp_path):
    """An IRTK/MIRTK-style file: six POINTS, no names; read as LPS it flips x and y."""
    pts = np.arange(18, dtype=float).reshape(6, 3) + 0.5
    text = "# vtk DataFile Version 3.0\nvtk output\nASCII\nDATASET POLYDATA\nPOINTS 6 float\n"
    text += "\n".join(" ".join(str(v) for v in row) for row in pts) + "\n"
    (tmp_path / "landmarks.vtk").write_text(text)
    np.testing.assert_allclose(read_landmarks(tmp_path / "landmarks.vtk").positions, pts)
    np.testing.assert_allclose(read_landmarks(tmp_path / "landmarks.vtk", space="lps").positions, pts * [-1, -1, 1])


def test_bad_landmark_files(tmp_path):
    (tmp_path / "a.json").write_text('{"space": "world_mm_ras", "landmarks": [{"name": "nose", "position": [0, 0, 0]}]}')
    with pytest.raises(InputError, match="unknown landmark name 'nose'"):
        read_landmarks(tmp_path / "a.json")
    (tmp_path / "b.csv").write_text("name,x,y\napex,1,2\n")
    with pytest.raises(InputError, match="missing column"):
        read_landmarks(tmp_path / "b.csv")
    (tmp_path / "c.vtk").write_text("# vtk DataFile Version 3.0\nx\nASCII\nDATASET POLYDATA\nPOINTS 2 float\n0 0 0\n1 1 1\n")
    with pytest.raises(InputError, match="expected 6 points"):
        read_landmarks(tmp_path / "c.vtk")
    with pytest.raises(InputError, match="landmark files are"):
        read_landmarks(tmp_path / "d.txt")


def test_landmarks_transform():
    lm = Landmarks.from_dict({"apex": (1.0, 2.0, 3.0)})
    m = np.eye(4)
    m[:3, 3] = [10, 0, 0]
    moved = lm.transformed(m)
    np.testing.assert_allclose(moved.positions[4], [11, 2, 3])
    assert np.isnan(moved.positions[0]).all() and moved.valid.sum() == 1
