"""Cohort runs: reading cohorts, one subject, a LocalCluster run (2 worker processes) checked
against direct calls, the skip logic on rerun, failures, a killed worker, the CLI."""

from __future__ import annotations

import csv
import json
import os
import signal

import numpy as np
import pytest

from napari_cardiac_priors.cohort import (
    MEASURE_COLUMNS, BatchOptions, Subject, process_subject, read_cohort, remove_partial_files, run_batch, subject_files,
)
from napari_cardiac_priors.errors import InputError
from napari_cardiac_priors.io import read_volume, write_volume
from napari_cardiac_priors.volume import Volume

MODEL = "sslln-lr-phantom"


def _write_phantoms(folder, seeds):
    from napari_cardiac_priors.phantom import make_subject

    folder.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        subject = make_subject(seed, lr=True)
        for phase in ("ed", "es"):
            write_volume(subject[phase].lr_image, folder / f"ph{seed}_{phase}_image.nii.gz")
            write_volume(subject[phase].lr_labels, folder / f"ph{seed}_{phase}_labels.nii.gz")
    return folder


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return _write_phantoms(tmp_path_factory.mktemp("cohort"), (9701, 9702, 9703))


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=40)
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


def _csv(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


# -- reading cohorts -------------------------------------------------------------------------
def test_image_folder_groups_phases_and_labels(cohort):
    subjects = read_cohort(cohort)
    assert [s.id for s in subjects] == ["ph9701", "ph9702", "ph9703"]
    s = subjects[0]
    assert set(s.images) == {"ed", "es"} and set(s.labels) == {"ed", "es"}
    assert s.images["es"].endswith("ph9701_es_image.nii.gz") and s.labels["ed"].endswith("ph9701_ed_labels.nii.gz")


def test_single_image_without_phase_is_ed(tmp_path, image_volume):
    write_volume(image_volume, tmp_path / "case7.nii.gz")
    (s,) = read_cohort(tmp_path)
    assert s.id == "case7" and set(s.images) == {"ed"} and s.labels == {}


def test_acdc_layout(tmp_path, image_volume, labels_volume):
    p = tmp_path / "training" / "patient042"
    p.mkdir(parents=True)
    (p / "Info.cfg").write_text("ED: 1\nES: 9\nGroup: DCM\n")
    for f in (1, 9):
        write_volume(image_volume, p / f"patient042_frame{f:02d}.nii.gz")
    no_rvw = Volume(np.where(labels_volume.array == 4, 0, labels_volume.array), affine=labels_volume.affine, kind="labels")
    write_volume(no_rvw, p / "patient042_frame01_gt.nii.gz", label_scheme="acdc")
    (s,) = read_cohort(tmp_path)
    assert s.id == "patient042" and s.group == "DCM"
    assert s.images["es"].endswith("patient042_frame09.nii.gz") and set(s.labels) == {"ed"}


def test_csv_cohort(tmp_path, image_volume):
    write_volume(image_volume, tmp_path / "a.nii.gz")
    (tmp_path / "list.csv").write_text("subject,ed,es,group\nS1,a.nii.gz,a.nii.gz,NOR\n")
    (s,) = read_cohort(tmp_path / "list.csv")
    assert s.id == "S1" and s.group == "NOR" and s.images["ed"] == str((tmp_path / "a.nii.gz").resolve())


@pytest.mark.parametrize("text, message", [
    ("subject,es\nS1,a.nii.gz\n", "lacks the column(s) ed"),
    ("subject,ed\nS1,a.nii.gz\nS1,b.nii.gz\n", "duplicate subject id 'S1'"),
    ("subject,ed\n../x,a.nii.gz\n", "must be letters"),
    ("subject,ed\n", "no subject found"),
])
def test_bad_csv_is_refused_at_the_start(tmp_path, text, message):
    (tmp_path / "c.csv").write_text(text)
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_cohort(tmp_path / "c.csv")


def test_duplicate_subject_in_a_folder(tmp_path, image_volume):
    write_volume(image_volume, tmp_path / "s1_ed.nii.gz")
    write_volume(image_volume, tmp_path / "s1_ed_image.nii.gz")
    with pytest.raises(InputError, match="duplicate subject id 's1'"):
        read_cohort(tmp_path)


def test_missing_cohort():
    with pytest.raises(InputError, match="no such cohort"):
        read_cohort("/nonexistent/cohort")


# -- one subject --------------------------------------------------------------------------
def test_process_subject_matches_direct_calls_and_skips_when_unchanged(cohort, tmp_path):
    from napari_cardiac_priors.inference import segment
    from napari_cardiac_priors.metrics import cardiac_measures, dice, ejection_fraction

    subject = read_cohort(cohort)[0]
    options = BatchOptions(model=MODEL)
    rec = process_subject(subject, tmp_path, options)
    assert rec["status"] == "done", rec.get("traceback")
    direct = {ph: segment(read_volume(subject.images[ph], kind="image"), MODEL) for ph in ("ed", "es")}
    for ph in ("ed", "es"):
        written = read_volume(tmp_path / "subjects" / subject.id / f"{subject.id}_{ph}_seg.nii.gz", kind="labels")
        np.testing.assert_array_equal(written.array, direct[ph].labels.array)
    ed = cardiac_measures(direct["ed"].labels.array, direct["ed"].labels.spacing)
    es = cardiac_measures(direct["es"].labels.array, direct["es"].labels.spacing)
    m = rec["measures"]
    assert m["lv_edv_ml"] == pytest.approx(ed["lv_ml"]) and m["rv_esv_ml"] == pytest.approx(es["rv_ml"])
    assert m["lv_ef"] == pytest.approx(ejection_fraction(ed["lv_ml"], es["lv_ml"]))
    assert m["lv_mass_g"] == pytest.approx(ed["lv_mass_g"])
    gt = read_volume(subject.labels["ed"], kind="labels")
    lv = [r for r in rec["evaluation"] if r["phase"] == "ed" and r["structure"] == "LV"][0]
    assert lv["dice"] == pytest.approx(dice(direct["ed"].labels.array == 1, gt.array == 1))
    prov = json.loads((tmp_path / "subjects" / subject.id / f"{subject.id}_provenance.json").read_text())
    assert prov["parameters"]["model_sha256"] and prov["inputs"]["ed_image"]["sha256"]
    assert prov["version"] and prov["device"] == "cpu" and prov["timings_s"]["total"] > 0
    files = subject_files(tmp_path, subject.id, "es")
    assert files["seg"].name == f"{subject.id}_es_seg.nii.gz" and files["labels"] is not None and files["refined"] is None

    again = process_subject(subject, tmp_path, options)
    assert again["status"] == "skipped" and again["measures"] == rec["measures"]


def test_unreadable_file_fails_its_subject_only(tmp_path):
    (tmp_path / "bad.nii.gz").write_bytes(b"not a nifti")
    rec = process_subject(Subject("bad", {"ed": str(tmp_path / "bad.nii.gz")}), tmp_path / "out", BatchOptions(model=MODEL))
    assert rec["status"] == "failed" and "bad.nii.gz" in rec["error"]
    assert not (tmp_path / "out" / "subjects" / "bad" / "bad_result.json").exists()


def test_partial_files_are_removed(tmp_path):
    (tmp_path / "subjects" / "s").mkdir(parents=True)
    stale = tmp_path / "subjects" / "s" / ".s_ed_seg.nii.gz.ab12cd_9.cardiac-priors-part.nii.gz"
    stale.write_bytes(b"half")
    keep = tmp_path / "subjects" / "s" / "s_ed_seg.nii.gz"
    keep.write_bytes(b"whole")
    # a user's files that look like partial files of other tools are never touched
    mine = [tmp_path / ".my.particle-notes.txt", tmp_path / "notes" / ".draft.partial",
            tmp_path / "subjects" / "s" / ".x.nii.gz.abc123.part.nii.gz"]
    for p in mine:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("user data")
    assert remove_partial_files(tmp_path) == 1
    assert not stale.exists() and keep.exists() and all(p.read_text() == "user data" for p in mine)


# -- the cluster run ------------------------------------------------------------------------
def test_cluster_run_rerun_and_changed_input(cohort, tmp_path, client):
    import shutil

    data = tmp_path / "cohort"
    shutil.copytree(cohort, data)
    (data / "broken_ed.nii.gz").write_bytes(b"garbage")
    out = tmp_path / "run"
    events = []
    summary = run_batch(data, out, BatchOptions(model=MODEL), client=client, progress=events.append)
    assert (summary.done, summary.skipped, summary.failed) == (3, 0, 1)
    assert events[0]["event"] == "start" and events[-1]["done"] == 4
    rows = _csv(out / "measures.csv")
    assert [r["subject"] for r in rows] == ["ph9701", "ph9702", "ph9703"] and list(rows[0]) == list(MEASURE_COLUMNS)
    failures = _csv(out / "failures.csv")
    assert [f["subject"] for f in failures] == ["broken"] and failures[0]["error"]
    ev = _csv(out / "evaluation.csv")
    assert len(ev) == 3 * 2 * 3 and all(0.5 < float(r["dice"]) <= 1.0 for r in ev if r["structure"] == "LV")
    html = (out / "report.html").read_text()
    assert "ph9703" in html and "<svg" in html and "broken" in html
    direct = {s.id: process_subject(s, tmp_path / "direct", BatchOptions(model=MODEL))["measures"] for s in read_cohort(cohort)}
    for r in rows:
        assert float(r["lv_edv_ml"]) == pytest.approx(direct[r["subject"]]["lv_edv_ml"], abs=0.01)
        assert float(r["rv_ef"]) == pytest.approx(direct[r["subject"]]["rv_ef"], abs=0.01)
    before = {p: p.stat().st_mtime_ns for p in (out / "subjects").rglob("*.nii.gz")}

    # rerun: nothing recomputed; then one input changes and only that subject is redone
    summary = run_batch(data, out, BatchOptions(model=MODEL), client=client)
    assert (summary.done, summary.skipped, summary.failed) == (0, 3, 1)
    assert before == {p: p.stat().st_mtime_ns for p in (out / "subjects").rglob("*.nii.gz")}
    img = read_volume(data / "ph9702_es_image.nii.gz", kind="image")
    write_volume(Volume(img.array[:, ::-1, :].copy(), affine=img.affine, kind="image"), data / "ph9702_es_image.nii.gz")
    summary = run_batch(data, out, BatchOptions(model=MODEL), client=client)
    assert (summary.done, summary.skipped, summary.failed) == (1, 2, 1)
    assert not list(out.rglob(".*.cardiac-priors-part*"))


def test_killed_worker_is_replaced_and_its_task_retried(cohort, tmp_path, client):
    pids = client.run(os.getpid)
    victim = sorted(pids.values())[0]

    def progress(event):
        if event["event"] == "start":
            os.kill(victim, signal.SIGKILL)

    summary = run_batch(cohort, tmp_path / "run", BatchOptions(model=MODEL), client=client, progress=progress)
    assert (summary.done, summary.failed) == (3, 0)
    used = {json.loads(p.read_text())["worker_pid"] for p in (tmp_path / "run").rglob("*_provenance.json")}
    assert victim not in used
    client.wait_for_workers(2, timeout=60)
    assert victim not in client.run(os.getpid).values()  # the nanny started a new worker process


def test_unreachable_scheduler():
    from napari_cardiac_priors.cohort import connect

    with pytest.raises(InputError, match="cannot reach a dask scheduler"):
        connect("tcp://127.0.0.1:9", timeout=2)


def test_cli_batch_bad_csv_one_line(tmp_path, capsys):
    from napari_cardiac_priors.cli import main

    (tmp_path / "c.csv").write_text("name,ed\nS1,a.nii.gz\n")
    assert main(["batch", str(tmp_path / "c.csv"), "--out", str(tmp_path / "o"), "--model", MODEL]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "lacks the column(s) subject" in err[0]
    assert not (tmp_path / "o").exists()


def test_run_on_a_running_scheduler_by_address(cohort, tmp_path, client):
    subjects = read_cohort(cohort)[:1]
    summary = run_batch(subjects, tmp_path / "run", BatchOptions(model=MODEL), scheduler=client.scheduler.address)
    assert (summary.done, summary.failed) == (1, 0)
    assert client.status == "running"  # the run closed its own client, not the cluster


def test_a_full_disk_still_leaves_failures_csv_and_one_clear_error(tmp_path, client, monkeypatch):
    import errno

    from napari_cardiac_priors.cohort import Subject, store

    real = store._write_csv

    def full_disk(path, columns, rows):
        if path.name != "failures.csv":
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, columns, rows)

    monkeypatch.setattr(store, "_write_csv", full_disk)
    subjects = [Subject(id=f"s{i}", images={"ed": tmp_path / f"missing{i}.nii.gz"}) for i in range(3)]
    out = tmp_path / "run"
    with pytest.raises(InputError, match="No space left on device.*failures.csv was written"):
        run_batch(subjects, out, BatchOptions(model=MODEL), client=client)
    rows = _csv(out / "failures.csv")
    assert sorted(r["subject"] for r in rows) == ["s0", "s1", "s2"] and all("not found" in r["error"] for r in rows)
    assert not (out / "measures.csv").exists()
