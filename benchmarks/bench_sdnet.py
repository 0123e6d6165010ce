"""Figures of the SDNet / latent-explorer issue: Table 1 analogue (Dice at 100 %, 6 %, 1.5 % labels),
reconstruction MAE and z variances, the disentanglement check, slider latency in the widget.

Run: ``xvfb-run -a .venv/bin/python benchmarks/bench_sdnet.py [--parts table1,recon,disentangle,latency]
[--models sdnet-acdc,training_runs/RUN]``. Models come from the registry (``--models`` may also name
training run folders, for recon and disentangle); a part whose models are missing says so and is skipped.
Validation slices: every slice of the ACDC validation patients (005, 010, ..., 100; ED and ES),
resampled to 1.37 mm, 224 x 224, [-1, 1], exactly as in training. Dice is 3D per volume (the
slices of one phase stacked), averaged over volumes.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

FRACTIONS = (("100 %", ""), ("6 %", "-6pc"), ("1.5 %", "-1pc"))


def _installed():
    from napari_cardiac_priors.registry import list_models

    return {e.name for e in list_models()}


def _validation_slices():
    from napari_cardiac_priors.training.recipes import get_recipe
    from napari_cardiac_priors.training.tasks import make_task

    recipe = get_recipe("sdnet-acdc")
    return make_task(recipe).load(recipe.val_ids, training=False)


def _training_slices(n_patients=20):
    """Slices of the first ``n_patients`` training patients, loaded as for validation (no augmentation)."""
    from napari_cardiac_priors.training.recipes import get_recipe
    from napari_cardiac_priors.training.tasks import make_task

    recipe = get_recipe("sdnet-acdc")
    return make_task(recipe).load(recipe.train_ids[:n_patients], training=False)


def _network(name):
    """The SDNet of a registry model ``name`` or of a training run folder (unbundled, an ablation
    say); None (and a line saying so) if neither."""
    from napari_cardiac_priors.inference import load_model
    from napari_cardiac_priors.training.runs import load_run_network

    if Path(name).is_dir():
        return load_run_network(name)
    if name not in _installed():
        print(f"(skipped: {name} not installed)\n")
        return None
    return load_model(name).network.float().eval()


def _correlations(recon, images):
    return np.asarray([np.corrcoef(r.ravel(), i.ravel())[0, 1] for r, i in zip(recon, images)])


def _score(name, slices):
    from napari_cardiac_priors.inference import load_model
    from napari_cardiac_priors.training.recipes import get_recipe
    from napari_cardiac_priors.training.tasks import make_task

    model = load_model(name)
    return make_task(get_recipe(name)).validate(model.network.float(), slices)


def table_one(slices):
    have = _installed()
    print("### Table 1 analogue (Dice on the validation patients)\n")
    print("| labels | model | MYO | LV | RV | mean |")
    print("|---|---|---|---|---|---|")
    for label, suffix in FRACTIONS:
        for family in ("unet-slices-acdc", "sdnet-acdc"):
            name = family + suffix
            if name not in have:
                print(f"| {label} | {name} | not trained | | | |")
                continue
            s = _score(name, slices)
            print(f"| {label} | {name} | {s['dice_MYO']:.3f} | {s['dice_LV']:.3f} | {s['dice_RV']:.3f} | {s['dice_mean']:.3f} |")
    print()


def _encode_all(net, slices, batch=16):
    import torch

    anat, mus, logvars, recon = [], [], [], []
    with torch.inference_mode():
        for i in range(0, len(slices), batch):
            x = torch.from_numpy(np.stack([s[0] for s in slices[i : i + batch]]))[:, None]
            a, _, mu, logvar = net.encode(x)
            anat.append(a.numpy())
            mus.append(mu.numpy())
            logvars.append(logvar.numpy())
            recon.append(net.decoder(a, mu)[:, 0].numpy())
    return np.concatenate(anat), np.concatenate(mus), np.concatenate(logvars), np.concatenate(recon)


def reconstruction(slices, name="sdnet-acdc"):
    net = _network(name)
    if net is None:
        return
    anatomy, mu, logvar, recon = _encode_all(net, slices)
    images = np.stack([s[0] for s in slices])
    mae = np.abs(recon - images).mean(axis=(1, 2))
    corr = _correlations(recon, images)
    print(f"### Reconstruction and z ({name}, {len(slices)} validation slices)\n")
    print(f"Reconstruction MAE in [-1, 1] units: median {np.median(mae):.4f}, mean {mae.mean():.4f} "
          f"({100 * mae.mean() / 2:.2f} % of the intensity range); Pearson r of reconstruction and image per "
          f"slice: median {np.median(corr):.3f}, mean {np.nanmean(corr):.3f}, 5th percentile {np.nanpercentile(corr, 5):.3f} "
          "(goal >= 0.90)\n")
    regions = anatomy.argmax(1)  # (N, H, W): the channel each pixel's binary anatomy chose
    flat = [(r.ravel(), i.ravel()) for r, i in zip(regions, images)]
    piecewise = np.stack([(np.bincount(r, i, anatomy.shape[1]) / np.maximum(np.bincount(r, None, anatomy.shape[1]), 1))[r]
                          for r, i in flat]).reshape(images.shape)
    used = np.asarray([np.unique(r).size for r, _ in flat])
    corr_pc = _correlations(piecewise, images)
    print(f"What the binary anatomy alone can carry: each slice rebuilt as the mean intensity of each anatomy "
          f"channel's pixels (a piecewise-constant image, using the true image): Pearson r median "
          f"{np.median(corr_pc):.3f}, mean {np.nanmean(corr_pc):.3f}; channels in use per slice: median "
          f"{np.median(used):.0f} of {anatomy.shape[1]}\n")
    train = _training_slices()
    _, _, _, recon_t = _encode_all(net, train)
    corr_t = _correlations(recon_t, np.stack([s[0] for s in train]))
    print(f"The same on {len(train)} slices of 20 training patients (seen in training): Pearson r median "
          f"{np.median(corr_t):.3f}, mean {np.nanmean(corr_t):.3f}; held out minus training, mean: "
          f"{np.nanmean(corr) - np.nanmean(corr_t):+.3f} (near 0: the model under-fits; well below: it over-fits)\n")
    print("| z dim | variance of mu over slices | mean sigma^2 (posterior) | training std (stored) |")
    print("|---|---|---|---|")
    std = net.z_std.float().numpy()
    for d in range(mu.shape[1]):
        print(f"| {d} | {mu[:, d].var():.4f} | {np.exp(logvar[:, d]).mean():.4f} | {std[d]:.4f} |")
    print()


def disentanglement(slices, name="sdnet-acdc", n=24, values=tuple(np.linspace(-3, 3, 7))):
    """Traverse each z dimension; re-encode the decoded image; compare anatomy and intensity."""
    import torch

    from napari_cardiac_priors.metrics import dice

    net = _network(name)
    if net is None:
        return
    rng = np.random.default_rng(0)
    pick = [slices[i] for i in sorted(rng.choice(len(slices), size=min(n, len(slices)), replace=False))]
    anat, mu, _, recon = _encode_all(net, pick)
    dices, changes = [], []
    with torch.inference_mode():  # baseline: the slice's own z, so that only the traversal is left to blame
        own = net.encode(net.decoder(torch.from_numpy(anat), torch.from_numpy(mu)))[0].numpy() > 0.5
        own = np.asarray([dice(own[k], anat[k] > 0.5) for k in range(len(pick))])
        for d in range(mu.shape[1]):
            for v in values:
                z = torch.from_numpy(mu.copy())
                z[:, d] = float(v)
                out = net.decoder(torch.from_numpy(anat), z)
                again = net.encode(out)[0].numpy() > 0.5
                for k in range(len(pick)):
                    dices.append(dice(again[k], anat[k] > 0.5))
                changes.append(np.abs(out[:, 0].numpy() - recon).mean(axis=(1, 2)))
    dices, changes = np.asarray(dices), np.concatenate(changes)
    print(f"### Disentanglement ({name}: {len(pick)} validation slices x {mu.shape[1]} z dims x {len(values)} values)\n")
    print(f"Re-encoded anatomy Dice (all 8 channels, binary) with the original: median {np.median(dices):.3f}, "
          f"mean {dices.mean():.3f}, 5th percentile {np.percentile(dices, 5):.3f} (goal >= 0.95); with the slice's own "
          f"z (no traversal): median {np.median(own):.3f}, mean {own.mean():.3f}\n")
    print(f"Decoded intensity change from the slice's own z (mean |difference|, [-1, 1] units): "
          f"median {np.median(changes):.4f}, mean {changes.mean():.4f}, max {changes.max():.4f}\n")


# -- slider latency in the widget -----------------------------------------------------------------
def _install_tl2d():
    """An untrained 2D T-L model (120 x 120 at 1.25 mm) in a scratch user folder: latency depends on
    the architecture, not the weights; no 2D T-L model is bundled."""
    import tempfile

    import torch

    from napari_cardiac_priors import registry
    from napari_cardiac_priors.nn import build

    home = tempfile.mkdtemp()
    os.environ["CARDIAC_PRIORS_HOME"] = home
    torch.manual_seed(0)
    config = {"n_classes": 5, "shape": [120, 120], "code_size": 64}
    net = build("tl", config)
    registry.save_weights(net.state_dict(), f"{home}/tl2d.safetensors")
    registry.add_model(f"{home}/tl2d.safetensors", {
        "name": "tl-2d-untrained", "version": "0", "task": "shape-prior", "architecture": "tl", "config": config,
        "input": {"size": [120, 120], "spacing": [1.25, 1.25]}, "license": "CC0-1.0"})
    return "tl-2d-untrained"


def _run_until(until, timeout_s=30.0):
    """Let the Qt event loop run, idle in C++ as in napari itself, until ``until()`` (checked every ms)."""
    from qtpy.QtCore import QEventLoop, QTimer

    loop, check = QEventLoop(), QTimer()
    check.setInterval(1)
    deadline = time.perf_counter() + timeout_s
    check.timeout.connect(lambda: (until() or time.perf_counter() > deadline) and loop.quit())
    check.start()
    loop.exec()
    check.stop()


def _drag(widget, moves=40):
    """Single slider moves, each waited for: ms from the value change until the layer's data was
    replaced by the exact output (and until the preview was shown, when there is one); then a drag
    (one move every 16 ms for 2 s): the gaps between the layer's updates while it goes on, and the
    longest event-loop stall measured by a 5 ms timer."""
    from qtpy.QtCore import QElapsedTimer, QTimer

    slider = widget.sliders[0]
    lo, hi = slider.min, slider.max
    stamp = widget.bench_shown  # the moments an exact output was put into the layer
    lat, lat_slice = [], []
    for i in range(moves):
        stamp.clear()
        widget.bench_previews.clear()
        ticks = widget.decoder.completed
        t0 = time.perf_counter()
        slider.value = float(lo + (hi - lo) * ((i * 7) % moves) / (moves - 1))
        _run_until(lambda: not widget.decoder.busy and widget.decoder.completed != ticks)
        if stamp:  # the moment the layer's data was last replaced: the exact output (drawing comes after)
            lat.append(1000 * (stamp[-1] - t0))
        if widget.bench_previews:
            lat_slice.append(1000 * (widget.bench_previews[0] - t0))
        settle = time.perf_counter() + 0.3  # let the canvas redraw before the next move
        _run_until(lambda: time.perf_counter() > settle)
    gaps, clock = [], QElapsedTimer()
    clock.start()
    last = [clock.elapsed()]

    def tick():
        now = clock.elapsed()
        gaps.append(now - last[0])
        last[0] = now

    k = [0]

    def move():
        slider.value = float(lo + (hi - lo) * (k[0] % 30) / 29)
        k[0] += 1

    ticker, mover = QTimer(), QTimer()
    ticker.setInterval(5)
    ticker.timeout.connect(tick)
    mover.setInterval(16)
    mover.timeout.connect(move)
    stamp.clear()
    widget.bench_previews.clear()
    shown = widget.previews_shown
    ticker.start()
    mover.start()
    t_start = time.perf_counter()
    t_end = t_start + 2.0
    _run_until(lambda: time.perf_counter() > t_end)
    ticker.stop()
    mover.stop()
    during = sorted(t for t in stamp + widget.bench_previews if t <= t_end)  # exact outputs and previews
    updates = 1000 * np.diff([t_start, *during]) if during else np.asarray([2000.0])
    drag = {"updates": len(during), "previews": widget.previews_shown - shown, "median_gap": float(np.median(updates)),
            "longest_gap": float(max(updates.max(), 1000 * (t_end - (during[-1] if during else t_start))))}
    _run_until(lambda: not widget.decoder.busy)
    return np.asarray(lat), np.asarray(lat_slice), max(gaps) if gaps else float("nan"), drag


def latency():
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_cardiac_priors._napari.latent_widget import LatentExplorerWidget
    from napari_cardiac_priors.phantom import make_subject
    from napari_cardiac_priors.volume import Volume

    have = _installed()
    subject = make_subject(9790, lr=True)["ed"]
    cases = []
    for name in ("tl-phantom", "tl-acdc"):
        if name in have:
            cases.append((name, "3D label volume", "labels", subject.labels))
    mid = subject.labels.array.shape[0] // 2
    hr2d = Volume(subject.labels.array[mid : mid + 1], spacing=subject.labels.spacing, kind="labels")
    if "sdnet-acdc" in have:
        img = subject.image
        cases.append(("sdnet-acdc", "224 x 224 slice", "image", Volume(img.array[mid : mid + 1], spacing=img.spacing)))
    cases.append((_install_tl2d(), "2D label map (120 x 120)", "labels", hr2d))
    viewer = napari.Viewer(show=True)
    qapp = QApplication.instance()
    print("### Slider latency (value change -> layer data updated, in the widget)\n")
    print("| model | output | decode alone, median / p95 ms | preview alone, median ms | layer update + canvas redraw, median ms "
          "| preview on screen: latency median / p95 ms | exact output: latency median / p95 ms | while dragging: "
          "layer updates in 2 s (previews), median / longest gap ms | longest GUI stall while dragging, ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    from napari.layers import Layer

    from napari_cardiac_priors._napari.layers import volume_layer_data

    notes = []
    for name, what, kind, vol in cases:
        viewer.layers.clear()
        layer = viewer.add_layer(Layer.create(*volume_layer_data(vol, name="input")))
        widget = LatentExplorerWidget(viewer)
        widget.bench_previews = []
        show_preview = widget._show_preview  # stamp the moment the preview (a coarse volume or the slice) was shown

        def stamped(*args, show_preview=show_preview, widget=widget):
            show_preview(*args)
            widget.bench_previews.append(time.perf_counter())

        widget._show_preview = stamped
        widget.bench_shown = []
        show = widget._show

        def shown(*args, show=show, widget=widget):
            show(*args)
            widget.bench_shown.append(time.perf_counter())

        widget._show = shown
        dock = viewer.window.add_dock_widget(widget)
        widget._model.value = name
        widget._layer.value = layer
        widget._encode.clicked.emit()
        while widget.output_layer is None or widget.decoder.busy:
            qapp.processEvents()
        decode, show = [], []
        for _ in range(40):
            t0 = time.perf_counter()
            result = widget._decode(widget.code)
            t1 = time.perf_counter()
            widget._show(result, widget.code, None)
            qapp.processEvents()
            decode.append(1000 * (t1 - t0))
            show.append(1000 * (time.perf_counter() - t1))
        if widget.explorer.kind == "sdnet":  # the decoder's anatomy part kept (a z slider) or computed anew
            cold = []
            for _ in range(20):
                widget.explorer._prepared = None
                t0 = time.perf_counter()
                widget.explorer.decode_grid(widget.code)
                cold.append(1000 * (time.perf_counter() - t0))
            kept = []
            for _ in range(20):
                t0 = time.perf_counter()
                widget.explorer.decode_grid(widget.code)
                kept.append(1000 * (time.perf_counter() - t0))
            notes.append(f"{name}: decoder network alone, median ms with the anatomy part kept {np.median(kept):.1f}, "
                         f"computed anew {np.median(cold):.1f} (ratio {np.median(kept) / np.median(cold):.2f})")
        preview = []
        if getattr(widget.explorer, "has_preview", False):
            for _ in range(20):
                t0 = time.perf_counter()
                widget.explorer.preview_grid(widget.code)
                preview.append(1000 * (time.perf_counter() - t0))
        if widget.output_layer.data.shape[0] > 1:  # a 3D label volume: its middle slice on screen
            out = widget.output_layer
            viewer.dims.set_point(0, float(out.data_to_world((out.data.shape[0] // 2, 0, 0))[0]))
        lat, lat_slice, stall, drag = _drag(widget)
        on_screen = f"{np.median(lat_slice):.1f} / {np.percentile(lat_slice, 95):.1f}" if len(lat_slice) else "-"
        kind = "whole volume" if getattr(widget.explorer, "has_preview", False) else "slice on screen"
        alone = f"{np.median(preview):.1f}" if preview else "-"
        print(f"| {name} | {what} | {np.median(decode):.1f} / {np.percentile(decode, 95):.1f} | {alone} | {np.median(show):.1f} | "
              f"{on_screen + (f' ({kind})' if len(lat_slice) else '')} | {np.median(lat):.1f} / {np.percentile(lat, 95):.1f} "
              f"| {drag['updates']} ({drag['previews']}), {drag['median_gap']:.0f} / {drag['longest_gap']:.0f} | {stall:.0f} |")
        widget.decoder.close()
        viewer.window.remove_dock_widget(dock)
    print(f"\n({len(lat)} timed single moves per model, each after the previous result was drawn; latency ends when "
          "the exact output is in the layer (the widget has put it there); an isolated move starts decoding at once (the debounce groups only the moves that follow it). A 3D label volume that decodes slower than 100 ms shows a preview first: the coarse whole volume of the model's preview head, else the slice on screen. The canvas redraw is "
          "software OpenGL (Mesa llvmpipe under Xvfb) on this machine. The drag: one move every 16 ms for 2 s.)\n")
    for line in notes:
        print(f"- {line}")
    viewer.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--parts", default="table1,recon,disentangle,latency")
    ap.add_argument("--models", default="sdnet-acdc", help="SDNet models (registry names or training run folders, "
                    "comma-separated) for recon and disentangle")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    import torch

    print(f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), date {time.strftime('%Y-%m-%d')}\n")
    slices = _validation_slices() if parts & {"table1", "recon", "disentangle"} else None
    if "table1" in parts:
        table_one(slices)
    for name in args.models.split(","):
        if "recon" in parts:
            reconstruction(slices, name)
        if "disentangle" in parts:
            disentanglement(slices, name)
    if "latency" in parts:
        latency()


if __name__ == "__main__":
    main()
