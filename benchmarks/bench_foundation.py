"""Figures of the foundation issue: phantom generation, ACDC reading, napari start-up.

Run: ``.venv/bin/python benchmarks/bench_foundation.py`` (``make benchmarks``). Prints
Markdown rows for BENCHMARKS.md. Medians over repeats; the napari start-up with and without
the plugin is measured in the same run, alternating, so the ratio is what to compare.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times


def bench_phantom(repeats=5):
    from napari_cardiac_priors.phantom import make_subject

    make_subject(0)  # warm-up (imports)
    med, times = _median_time(lambda: make_subject(123, pathology="NOR"), repeats)
    med_lr, _ = _median_time(lambda: make_subject(123, pathology="NOR", lr=True), repeats)
    return med, times, med_lr


def bench_reader(n=20):
    from napari_cardiac_priors.io import read_volume
    from napari_cardiac_priors.io.acdc import default_root, iter_patients

    patients = list(iter_patients(default_root()))[:n]
    read_volume(patients[0].image_path("ed"))  # warm-up
    per_image = [_median_time(lambda p=p: read_volume(p.image_path("ed")), 1)[0] for p in patients]
    per_labels = [_median_time(lambda p=p: read_volume(p.labels_path("ed")), 1)[0] for p in patients]
    return statistics.median(per_image), statistics.median(per_labels), len(patients)


def bench_napari_start(repeats=5):
    env = dict(os.environ)
    xvfb = None
    if not env.get("DISPLAY"):
        xvfb = subprocess.Popen(["Xvfb", ":97", "-screen", "0", "1280x800x24"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        env["DISPLAY"] = ":97"
        time.sleep(1.0)
    try:
        res = {"with": [], "without": []}
        for i in range(repeats + 1):  # first round warms the file cache, not counted
            for mode in ("with", "without"):
                args = [sys.executable, str(HERE / "_napari_start.py")] + (["--without-plugin"] if mode == "without" else [])
                t = time.perf_counter()
                out = subprocess.run(args, env=env, capture_output=True, text=True, check=True).stdout
                dt = time.perf_counter() - t
                expected = "plugin discovered" if mode == "with" else "plugin absent"
                assert expected in out, out
                if i:
                    res[mode].append(dt)
        return {k: statistics.median(v) for k, v in res.items()}
    finally:
        if xvfb:
            xvfb.terminate()


def main():
    date = time.strftime("%Y-%m-%d")
    machine = f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}"
    print(f"# bench_foundation.py, {date}, {machine}\n")
    med, times, med_lr = bench_phantom()
    print(f"| phantom HR ED+ES pair (image, labels, landmarks), median of 5 | {med:.2f} s | runs {', '.join(f'{t:.2f}' for t in times)} |")
    print(f"| phantom HR ED+ES pair with LR stacks, median of 5 | {med_lr:.2f} s | |")
    img, lab, n = bench_reader()
    print(f"| read one ACDC image (.nii.gz), median over {n} patients | {img * 1000:.0f} ms | |")
    print(f"| read one ACDC label map (mapped to canonical), median over {n} | {lab * 1000:.0f} ms | |")
    st = bench_napari_start()
    print(f"| napari start (window shown, then closed), plugin installed, median of 5 | {st['with']:.2f} s | |")
    print(f"| napari start, plugin not installed (hidden from discovery), median of 5 | {st['without']:.2f} s | ratio {st['with'] / st['without']:.2f} |")


if __name__ == "__main__":
    main()
