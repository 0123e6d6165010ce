"""Hostile and careless inputs: the tool writes and deletes only its own outputs and temporary
files. Every file a test touches lies in its temporary folder; each test checks that nothing
outside the tool's own paths changed and that the message is one line naming the problem."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from napari_cardiac_priors import registry
from napari_cardiac_priors.cli import main


def _snapshot(folder):
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() and not p.is_symlink() else None)
            for p in sorted(folder.rglob("*"))}


def _errors(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    return [line for line in err if line.startswith("cardiac-priors")]


def _user_models():
    return registry.user_dir()


def test_models_remove_never_deletes_a_file_outside_the_user_folder(tmp_path, capsys):
    victim = tmp_path / "elsewhere" / "victim.txt"
    victim.parent.mkdir()
    victim.write_text("keep me")
    folder = _user_models()
    folder.mkdir(parents=True, exist_ok=True)
    rel = os.path.relpath(victim, folder)
    (folder / "manifest.json").write_text(json.dumps({"models": [
        {"name": "evil", "version": "1", "task": "segmentation", "architecture": "slab2d", "file": rel, "sha256": "0" * 64},
        {"name": "abs", "version": "1", "task": "segmentation", "architecture": "slab2d", "file": str(victim), "sha256": "0" * 64},
    ]}))
    for name in ("evil", "abs"):
        assert main(["models", "remove", name]) == 2
        err = _errors(capsys)
        assert len(err) == 1 and "outside" in err[0] and name in err[0]
    assert victim.read_text() == "keep me"


def test_models_remove_refuses_a_replaced_file_and_removes_an_atlas_folder(tmp_path, capsys):
    from helpers import install_tiny_slab

    from napari_cardiac_priors.atlases.phantom import phantom_atlases
    from napari_cardiac_priors.registry.atlases import write_atlas_set

    name = install_tiny_slab(tmp_path)
    path = registry.get_model(name).path
    path.write_bytes(b"someone else's file")
    assert main(["models", "remove", name]) == 2
    assert "sha256" in _errors(capsys)[0] and path.read_bytes() == b"someone else's file"
    write_atlas_set(phantom_atlases(1), "mine")
    folder = registry.get_model("mine").path
    assert folder.is_dir()
    assert main(["models", "remove", "mine"]) == 0
    assert not folder.exists() and "mine" not in {e.name for e in registry.list_models()}


@pytest.mark.parametrize("bad", [".", "..", "../../dir", "/abs/dir", "a/b", "-x", ""])
def test_names_are_words_not_paths(tmp_path, bad):
    from napari_cardiac_priors.registry.atlases import write_atlas_set

    with pytest.raises(registry.RegistryError, match="not a path"):
        registry.check_name(bad)
    before = _snapshot(tmp_path)
    with pytest.raises(registry.RegistryError, match="atlas set name"):
        write_atlas_set([], bad)
    assert _snapshot(tmp_path) == before
    assert registry.check_name("sslln-acdc.v2_1") == "sslln-acdc.v2_1"


def test_atomic_writes_go_through_links_and_refuse_special_files(tmp_path, capsys):
    from napari_cardiac_priors.errors import InputError
    from napari_cardiac_priors.io import atomic_path

    real = tmp_path / "real.csv"
    real.write_text("old")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    with atomic_path(link) as tmp:
        tmp.write_text("new")
    assert link.is_symlink() and real.read_text() == "new"
    with pytest.raises(InputError, match="not a regular file"):
        with atomic_path(tmp_path) as tmp:
            tmp.write_text("x")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        with atomic_path(fifo) as tmp:
            tmp.write_text("x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.csv", "pipe", "real.csv"]


def test_measure_csv_refuses_an_existing_file_without_overwrite(tmp_path, capsys):
    from napari_cardiac_priors.io import write_volume
    from napari_cardiac_priors.volume import Volume

    lab = np.zeros((4, 10, 10), np.uint8)
    lab[1:3, 2:6, 2:6] = 1
    write_volume(Volume(lab, spacing=(10, 1.5, 1.5), kind="labels"), tmp_path / "s_ed_seg.nii.gz")
    csv = tmp_path / "table.csv"
    csv.write_text("mine")
    assert main(["measure", str(tmp_path / "s_ed_seg.nii.gz"), "--csv", str(csv)]) == 2
    err = _errors(capsys)
    assert len(err) == 1 and "--overwrite" in err[0] and csv.read_text() == "mine"
    assert main(["measure", str(tmp_path / "s_ed_seg.nii.gz"), "--csv", str(csv), "--overwrite"]) == 0
    assert csv.read_text().startswith("file,")


@pytest.mark.parametrize("reply", [None, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"])
def test_batch_scheduler_that_is_not_dask_fails_within_the_timeout(reply):
    import socket
    import threading
    import time

    from napari_cardiac_priors.cohort import connect
    from napari_cardiac_priors.errors import InputError

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    stop = threading.Event()

    def serve():
        server.settimeout(0.2)
        conns = []
        while not stop.is_set():
            try:
                c, _ = server.accept()
            except OSError:
                continue
            conns.append(c)
            if reply:
                c.sendall(reply)
        for c in conns:
            c.close()

    threading.Thread(target=serve, daemon=True).start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(InputError, match="cannot reach a dask scheduler"):
            connect(f"tcp://127.0.0.1:{port}", timeout=2.0)
    finally:
        stop.set()
        server.close()
    assert time.perf_counter() - t0 < 15.0


def test_segment_reports_each_bad_input_and_runs_the_rest(tmp_path, capsys):
    import nibabel as nib

    from helpers import install_tiny_slab

    name = install_tiny_slab(tmp_path)
    rng = np.random.default_rng(0)
    files = []
    for i in range(5):
        f = tmp_path / f"s{i}.nii.gz"
        if i == 1:
            rgb = np.zeros((20, 20, 4), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
            nib.save(nib.Nifti1Image(rgb, np.eye(4)), f)
        elif i == 3:
            nib.save(nib.Nifti1Image(np.ones((20, 20, 4), np.complex64), np.eye(4)), f)
        else:
            nib.save(nib.Nifti1Image(rng.random((32, 32, 4)).astype("f4") * 100, np.diag([1.5, 1.5, 10, 1])), f)
        files.append(str(f))
    out = tmp_path / "out"
    assert main(["segment", *files, "--model", name, "--out", str(out), "--device", "cpu"]) == 2
    err = [line for line in _errors(capsys) if " error: " in line]
    assert len(err) == 2 and "s1.nii.gz" in err[0] and "RGB" in err[0] and "s3.nii.gz" in err[1] and "complex" in err[1]
    assert sorted(p.name for p in out.glob("*_seg.nii.gz")) == ["s0_seg.nii.gz", "s2_seg.nii.gz", "s4_seg.nii.gz"]


def test_slice_models_are_not_offered_for_stacks_and_refused_clearly():
    from napari_cardiac_priors.errors import InputError
    from napari_cardiac_priors.inference import segment
    from napari_cardiac_priors.volume import Volume

    names = registry.segmentation_choices()
    assert not any(n.startswith("unet-slices-acdc") for n in names)
    stack = Volume(np.random.default_rng(0).random((8, 64, 64)).astype(np.float32), spacing=(10, 1.4, 1.4))
    for n in ("unet-slices-acdc", "unet-slices-acdc-6pc", "unet-slices-acdc-1pc"):
        with pytest.raises(InputError, match="single 2D slices"):
            segment(stack, n)


def test_models_add_checks_the_declared_hash_and_the_architecture(tmp_path, capsys):
    from napari_cardiac_priors.nn import build

    net = build("slab2d", {"slab": 3, "n_classes": 4, "n_landmarks": 0, "base": 4, "depth": 2})
    weights = tmp_path / "w.safetensors"
    registry.save_weights(net.state_dict(), weights)
    entry = {"name": "mine", "version": "1", "task": "segmentation", "architecture": "slab2d",
             "config": {"slab": 3, "n_classes": 4, "n_landmarks": 0, "base": 4, "depth": 2}}
    (tmp_path / "wrong_hash.json").write_text(json.dumps({**entry, "sha256": "ab" * 32}))
    (tmp_path / "wrong_arch.json").write_text(json.dumps({**entry, "config": {**entry["config"], "base": 8}}))
    for manifest, word in (("wrong_hash.json", "sha256"), ("wrong_arch.json", "does not fit")):
        assert main(["models", "add", str(weights), "--manifest", str(tmp_path / manifest)]) == 2
        err = _errors(capsys)
        assert len(err) == 1 and word in err[0]
    assert "mine" not in {e.name for e in registry.list_models()}
    (tmp_path / "ok.json").write_text(json.dumps(entry))
    assert main(["models", "add", str(weights), "--manifest", str(tmp_path / "ok.json")]) == 0
    assert main(["models", "add", str(weights), "--manifest", str(tmp_path / "ok.json")]) == 2
    assert "--overwrite" in _errors(capsys)[-1]


def test_frame_is_checked(tmp_path, capsys):
    import nibabel as nib

    from helpers import install_tiny_slab

    name = install_tiny_slab(tmp_path)
    rng = np.random.default_rng(0)
    nib.save(nib.Nifti1Image(rng.random((32, 32, 4)).astype("f4"), np.diag([1.5, 1.5, 10, 1])), tmp_path / "three.nii.gz")
    nib.save(nib.Nifti1Image(rng.random((32, 32, 4, 3)).astype("f4"), np.diag([1.5, 1.5, 10, 1])), tmp_path / "cine.nii.gz")
    out = tmp_path / "out"
    for f, frame, word in (("three.nii.gz", "0", "3D stack"), ("cine.nii.gz", "-1", "outside 0-2"), ("cine.nii.gz", "3", "outside 0-2")):
        assert main(["segment", str(tmp_path / f), "--model", name, "--out", str(out), "--frame", frame]) == 2
        err = [line for line in _errors(capsys) if " error: " in line]
        assert len(err) == 1 and word in err[0] and f in err[0]
    assert not out.exists() or not any(out.iterdir())


def test_a_dicom_folder_with_several_series_says_which_it_used(tmp_path, capsys):
    from helpers import install_tiny_slab
    from test_io import _write_dicom_series

    name = install_tiny_slab(tmp_path)
    rng = np.random.default_rng(0)
    folder = tmp_path / "dicom"
    _write_dicom_series(folder, rng.integers(0, 1000, (6, 32, 32)).astype(np.int16), (8.0, 1.4, 1.4), (0, 0, 0),
                        uid="1.2.3.4.5.61", prefix="a")
    _write_dicom_series(folder, rng.integers(0, 1000, (4, 32, 32)).astype(np.int16), (8.0, 1.4, 1.4), (0, 0, 0),
                        uid="1.2.3.4.5.62", prefix="b")
    out = tmp_path / "out"
    assert main(["segment", str(folder), "--model", name, "--out", str(out)]) == 0
    warn = [line for line in _errors(capsys) if "DICOM series" in line]
    assert len(warn) == 1 and "1.2.3.4.5.61" in warn[0] and "--series" in warn[0] and "1.2.3.4.5.62" in warn[0]
    from napari_cardiac_priors.io import read_volume

    assert read_volume(out / "dicom_seg.nii.gz").spatial_shape[0] == 6
    assert main(["segment", str(folder), "--model", name, "--out", str(out), "--series", "1.2.3.4.5.62", "--overwrite"]) == 0
    assert not [line for line in _errors(capsys) if "DICOM series" in line]
    assert read_volume(out / "dicom_seg.nii.gz").spatial_shape[0] == 4


def test_an_output_folder_that_cannot_hold_files_names_the_output(tmp_path, capsys):
    from napari_cardiac_priors.errors import InputError
    from napari_cardiac_priors.io import atomic_path

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InputError, match=r"cannot write .*file/out.csv"):
        with atomic_path(blocker / "out.csv") as tmp:
            tmp.write_text("y")
    assert blocker.read_text() == "x" and sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_itk_output_becomes_one_warning_and_never_reaches_stderr(capfd):
    import os
    import warnings

    from napari_cardiac_priors.io.sitk import itk_messages_as_warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with itk_messages_as_warnings("scan.mha"):
            os.write(2, b"WARNING: In /itk/Modules/IO/ImageBase/itkImageIOBase.cxx, line 1078\n"
                        b"ImageIO (0x55d0): Non-orthogonal direction cosines\n\n")
    assert capfd.readouterr().err == ""
    assert [str(w.message) for w in caught] == ["scan.mha: ITK: ImageIO (0x55d0): Non-orthogonal direction cosines"]


def test_a_library_warning_does_not_leak_around_the_one_line_error(tmp_path, monkeypatch, capsys):
    import warnings

    from napari_cardiac_priors import io
    from napari_cardiac_priors.errors import InputError

    def noisy(path, **kw):
        warnings.warn_explicit("pixdim[0] (qfac) should be 1 (default) or -1; setting qfac to 1", UserWarning,
                               "/usr/lib/python3/site-packages/nibabel/nifti1.py", 1163)
        raise InputError(f"{os.path.basename(path)}: not a readable NIfTI file")

    monkeypatch.setattr(io, "read_volume", noisy)
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"x")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        rc = main(["measure", str(bad)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == ["cardiac-priors measure: error: bad.nii.gz: not a readable NIfTI file"], err
