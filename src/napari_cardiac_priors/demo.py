"""The headless demo: the whole pipeline that exists so far, on a phantom subject, without a screen.

``run_headless(out_dir)`` generates a phantom subject (HR image, labels, landmarks and an
artefact-corrupted LR stack), writes it, reads it back, measures volumes and ejection
fraction, scores the blocky LR labels against the HR truth (the baseline that the
segmentation and refinement methods improve on), and runs the bundled SSLLN models on the LR
stack and on a held-out ACDC patient. Returns a printable summary.
"""

from __future__ import annotations

from pathlib import Path


def run_headless(out_dir, *, seed: int = 0, pathology: str = "NOR") -> str:
    """Run the headless demo into ``out_dir``; returns a multi-line summary."""
    import time

    from .io import read_volume
    from .metrics import cardiac_measures, ejection_fraction, evaluate_labels
    from .phantom import make_subject, subject_seed, write_subject
    from .volume import resample

    out = Path(out_dir)
    t0 = time.perf_counter()
    subject = make_subject(subject_seed(seed, 0), pathology=pathology, lr=True)
    write_subject(subject, out, 0)
    t_gen = time.perf_counter() - t0
    lines = [f"phantom subject ({pathology}, seed {seed}) written to {out} in {t_gen:.1f} s"]
    measures = {}
    for phase in ("ed", "es"):
        labels = read_volume(out / f"phantom_000_{phase}_labels.nii.gz")
        measures[phase] = cardiac_measures(labels.array, labels.spacing)
    ed, es = measures["ed"], measures["es"]
    lines.append(
        f"LV EDV {ed['lv_ml']:.0f} mL, ESV {es['lv_ml']:.0f} mL, EF {ejection_fraction(ed['lv_ml'], es['lv_ml']):.0f} %, "
        f"LV mass {ed['lv_mass_g']:.0f} g; RV EDV {ed['rv_ml']:.0f} mL, EF {ejection_fraction(ed['rv_ml'], es['rv_ml']):.0f} %"
    )
    hr = read_volume(out / "phantom_000_ed_labels.nii.gz")
    lr = read_volume(out / "phantom_000_ed_lr_labels.nii.gz")
    scores = evaluate_labels(resample(lr, hr).array, hr.array, hr.spacing)
    lines.append("LR labels (10 mm, shifted slices) upsampled to the HR grid vs HR truth:")
    for name, m in scores.items():
        lines.append(f"  {name:4s} Dice {m['dice']:.3f}  HD95 {m['hd95']:5.1f} mm")
    lines += _segment_lines(out, hr, lr)
    return "\n".join(lines)


def _segment_lines(out: Path, hr, lr) -> list:
    """Run the bundled SSLLN models on the demo data (when installed) and score them."""

    from .conventions import DEFAULT_MODEL, LANDMARK_NAMES
    from .inference import load_model, segment
    from .io import read_landmarks, read_volume, write_landmarks, write_volume
    from .io.acdc import default_root, iter_patients
    from .metrics import evaluate_labels, landmark_errors
    from .registry import list_models
    from .volume import resample

    have = {e.name for e in list_models()}
    lines = []
    if "sslln-lr-phantom" in have:
        image = read_volume(out / "phantom_000_ed_lr_image.nii.gz")
        result = segment(image, load_model("sslln-lr-phantom"), notes=[])
        write_volume(result.labels, out / "phantom_000_ed_lr_image_seg.nii.gz")
        write_landmarks(result.landmarks, out / "phantom_000_ed_lr_image_landmarks.json")
        scores = evaluate_labels(resample(result.labels, hr).array, hr.array, hr.spacing)
        lines.append(f"sslln-lr-phantom on the LR stack ({result.info['total_seconds']:.1f} s), vs the HR truth:")
        lines += [f"  {n:4s} Dice {m['dice']:.3f}  HD95 {m['hd95']:5.1f} mm" for n, m in scores.items()]
        err = landmark_errors(result.landmarks, read_landmarks(out / "phantom_000_ed_landmarks.json"))
        lines.append("  landmark errors (mm): " + ", ".join(f"{n} {e:.1f}" for n, e in zip(LANDMARK_NAMES, err)))
        if result.landmarks.valid.sum() >= 4:
            from .workflows.refine import refine_subject

            done = refine_subject(result.labels, result.landmarks)
            refined = done.result
            write_volume(refined.labels, out / "phantom_000_ed_lr_image_refined.nii.gz")
            scores = evaluate_labels(resample(refined.labels, hr).array, hr.array, hr.spacing)
            lines.append(f"refined with {len(refined.selected)} atlases of {done.atlas_set} "
                         f"({refined.timings['total']:.1f} s), vs the HR truth:")
            lines += [f"  {n:4s} Dice {m['dice']:.3f}  HD95 {m['hd95']:5.1f} mm" for n, m in scores.items()]
    if DEFAULT_MODEL in have:
        try:
            patient = next(iter_patients(default_root(), ids=[5]))  # a held-out validation patient
        except Exception:  # noqa: BLE001 - ACDC is optional for the demo
            patient = None
        if patient is not None and patient.image_path("ed").exists():
            result = segment(patient.image("ed"), load_model(DEFAULT_MODEL), notes=[])
            gt = patient.labels("ed")
            scores = evaluate_labels(result.labels.array, gt.array, gt.spacing, structures=[1, 2, 3])
            write_volume(result.labels, out / "patient005_frame01_seg.nii.gz")
            lines.append(f"{DEFAULT_MODEL} on ACDC patient005 ED (held out; {result.info['total_seconds']:.1f} s):")
            lines += [f"  {n:4s} Dice {m['dice']:.3f}  HD95 {m['hd95']:5.1f} mm" for n, m in scores.items()]
    if not lines:
        lines.append("no segmentation model is installed: `cardiac-priors models list`")
    return lines
