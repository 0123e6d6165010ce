"""One entry point for running models, shared by the CLI, the widgets and cohort runs.

``load_model(name)`` reads a registry entry and its hash-checked weights once per process and
device; ``segment(volume, model)`` maps the volume to the model's input contract, runs the
network, and returns labels on the input's own grid (canonical values) and, for models with
a landmark head, the six landmarks in world mm. ``resolve_device("auto")`` is the only place
that probes CUDA/MPS; library functions take ``device=`` and follow it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from .contract import check_input, probabilities_to_input, to_model
from .errors import InputError, note
from .landmarks import Landmarks, from_probabilities
from .volume import Volume


def resolve_device(device: str = "auto") -> str:
    """``"auto"`` -> ``"cuda"`` if available, else ``"mps"``, else ``"cpu"``; others are checked."""
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if device not in ("cpu", "cuda", "mps") and not device.startswith("cuda:"):
        raise InputError(f"device must be auto, cpu, cuda or mps, got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("CUDA was asked for but no CUDA device is available")
    if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise InputError("MPS was asked for but is not available")
    return device


@dataclass
class LoadedModel:
    """A registry entry with its network, in eval mode on ``device``."""

    entry: object
    network: object
    device: str

    @property
    def name(self) -> str:
        return self.entry.name


@functools.lru_cache(maxsize=8)
def _load_cached(name: str, device: str) -> LoadedModel:
    from . import registry
    from .nn import build

    entry = registry.get_model(name)
    net = build(entry.architecture, entry.config)
    state = registry.load_state_dict(entry, device="cpu")
    net.load_state_dict({k: v.float() for k, v in state.items()})
    net.eval().to(device)
    return LoadedModel(entry, net, device)


def load_model(name: str, *, device: str = "cpu") -> LoadedModel:
    """The model ``name`` of the registry on ``device`` (cached per process and device)."""
    return _load_cached(name, device)


@dataclass
class Segmentation:
    """Result of :func:`segment`: labels on the input grid, landmarks (or None), provenance."""

    labels: Volume
    landmarks: Landmarks | None
    model: str
    info: dict = field(default_factory=dict)


def keep_largest_component(labels: np.ndarray) -> np.ndarray:
    """Keep, for each label value, its largest 26-connected component (others become 0)."""
    from scipy import ndimage

    out = labels.copy()
    for v in np.unique(labels):
        if v == 0:
            continue
        comp, n = ndimage.label(labels == v, structure=np.ones((3, 3, 3), bool))
        if n > 1:
            sizes = np.bincount(comp.ravel())[1:]
            out[(comp > 0) & (comp != 1 + int(np.argmax(sizes)))] = 0
    return out


def keep_heart(labels: np.ndarray, spacing, *, tolerance_mm: float = 10.0) -> np.ndarray:
    """Keep the heart whole on a stack with breath-hold shifts: the connected piece of the heart
    that holds most LV + MYO voxels (a large false RV blob elsewhere does not win; pieces in
    neighbouring slices connect when they come within
    ``2 * tolerance_mm`` in-plane: a slice shifted by a breath-hold stays, a blob far from the
    heart goes), and for each label value one piece of its own (connecting within ``tolerance_mm``). LV and MYO keep their
    largest piece; the RV keeps the piece with most voxels beside the LV wall (within
    ``tolerance_mm`` in-plane of MYO: the septum), so a larger false RV above the base or
    below the apex does not win.

    ``labels`` ``(z, y, x)`` canonical values; ``spacing`` ``(sz, sy, sx)`` mm.
    """
    from scipy import ndimage

    from .conventions import LV, MYO, RV

    _, sy, sx = (float(v) for v in spacing)

    def near(mask, tol):  # in-plane, slice by slice
        return np.stack([ndimage.distance_transform_edt(~m, sampling=(sy, sx)) <= tol if m.any() else m for m in mask])

    def keep(mask, tol, weight=None):  # pieces connect across slices when within tol in-plane
        if not mask.any():
            return mask
        comp, n = ndimage.label(near(mask, tol / 2), structure=ndimage.generate_binary_structure(3, 1))
        if n <= 1:
            return mask
        score = np.bincount(comp[mask], minlength=n + 1)
        if weight is not None:
            anchored = np.bincount(comp[mask & weight], minlength=n + 1)
            score = anchored if anchored.any() else score
        return mask & (comp == int(np.argmax(score)))

    lv_myo = np.isin(labels, (LV, MYO))  # the left ventricle decides which piece is the heart
    out = np.where(keep(labels > 0, 2 * tolerance_mm, lv_myo if lv_myo.any() else None), labels, 0).astype(labels.dtype)
    for v in np.unique(out):
        if v:
            wall = near(out == MYO, tolerance_mm) if v == RV and (out == MYO).any() else None
            out[(out == v) & ~keep(out == v, tolerance_mm, wall)] = 0
    return out


def slab_grid(volume: Volume, contract: dict):
    """The model grid of a slab model: the input's own slices, in-plane resampled to the
    contract's pixel spacing over the input's whole field of view (a multiple of 16 pixels)."""
    from .contract import lr_model_grid

    return lr_model_grid(volume, contract, multiple=int(contract.get("multiple", 16)))


def predict_slab(network, volume: Volume, contract: dict, *, device: str = "cpu", tta: bool = False, batch: int = 8):
    """Slide a slab network over every slice of ``volume`` ``(z, y, x)``.

    With ``roi_size`` ``(Y, X)`` in the contract (the field of view the network was trained
    on), a first pass over the whole field of view at ``locate_spacing`` mm finds the heart
    (the largest shift-tolerant piece of LV + MYO, :func:`keep_heart`) and the second pass
    segments a ``roi_size`` grid centred on it; elsewhere is background. Without it the whole
    field of view is segmented (:func:`slab_grid`).

    Returns ``(seg, lmk, grid)``: softmax probabilities ``(C, z, Y, X)`` and (landmark head)
    ``(L, z, Y, X)`` or None, on the model grid ``grid``. With ``tta`` the four in-plane
    mirrorings are averaged.
    """
    from .contract import normalise

    norm = volume.with_array(normalise(volume.array, contract.get("normalisation", "percentile_1_99")))
    if not contract.get("roi_size"):
        grid = slab_grid(volume, contract)
        return (*_run_slab(network, norm, grid, contract, device=device, tta=tta, batch=batch), grid)
    locate = {**contract, "spacing": [None, *[float(contract.get("locate_spacing", 2.0))] * 2]}
    coarse = slab_grid(volume, locate)
    seg, _ = _run_slab(network, norm, coarse, contract, device=device, tta=False, batch=batch)
    heart = keep_heart(seg.argmax(0).astype(np.uint8), (volume.spacing[0], *locate["spacing"][1:]))
    lv = np.argwhere(np.isin(heart, (1, 2)))
    if lv.size == 0:  # no heart found: the whole field of view
        grid = slab_grid(volume, contract)
    else:
        centre_model = lv.mean(0)  # (z, y, x) on the coarse grid
        centre = Volume(heart, affine=coarse.affine, kind="labels").index_to_world(centre_model)
        grid = roi_grid(volume, contract, volume.world_to_index(centre)[1:])
    return (*_run_slab(network, norm, grid, contract, device=device, tta=tta, batch=batch), grid)


def roi_grid(volume: Volume, contract: dict, centre_yx):
    """The slab model grid of ``roi_size`` ``(Y, X)`` pixels of the contract spacing, centred on
    the input index ``centre_yx`` ``(y, x)``, over all the input's slices."""
    from .contract import ModelGrid

    Y, X = (int(v) for v in contract["roi_size"])
    _, sy_in, sx_in = volume.spacing
    ky, kx = float(contract["spacing"][1]) / sy_in, float(contract["spacing"][2]) / sx_in
    y0 = float(centre_yx[0]) - ky * (Y - 1) / 2.0
    x0 = float(centre_yx[1]) - kx * (X - 1) / 2.0
    m = np.array([[kx, 0, 0, x0], [0, ky, 0, y0], [0, 0, 1.0, 0.0], [0, 0, 0, 1.0]])
    nz = volume.spatial_shape[0]
    return ModelGrid(affine=volume.affine @ m, shape=(nz, Y, X), first=0, count=nz)


def _run_slab(network, norm: Volume, grid, contract: dict, *, device: str, tta: bool, batch: int):
    """The network over every slab of the normalised ``norm`` resampled onto ``grid``."""
    import torch

    from .contract import slab_indices
    from .volume import resample

    image = resample(norm, affine=grid.affine, shape=grid.shape, order=1).array.astype(np.float32)
    nz = image.shape[0]
    idx = slab_indices(nz, norm.spacing[0], slab=int(contract["slab"]), slab_spacing_mm=float(contract.get("slab_spacing_mm", 8.0)))
    padded = np.concatenate([image, np.zeros((1, *image.shape[1:]), np.float32)])  # index -1: a zero slice
    flips = [(), (-1,), (-2,), (-2, -1)] if tta else [()]
    seg_out, lmk_out = None, None
    for b in range(0, nz, batch):
        x = torch.from_numpy(padded[idx[b : b + batch]])
        seg_acc, lmk_acc = 0.0, 0.0
        for f in flips:
            out = forward(network, x.flip(f) if f else x, device=device)
            out = out if isinstance(out, tuple) else (out, None)
            seg = out[0].float().softmax(1)
            seg_acc = seg_acc + (seg.flip(f) if f else seg)
            if out[1] is not None:
                lmk = out[1].float().softmax(1)
                lmk_acc = lmk_acc + (lmk.flip(f) if f else lmk)
        seg_np = (seg_acc / len(flips)).cpu().numpy()
        if seg_out is None:
            seg_out = np.empty((seg_np.shape[1], nz, *image.shape[1:]), np.float32)
            if not isinstance(lmk_acc, float):
                lmk_out = np.empty((lmk_acc.shape[1], nz, *image.shape[1:]), np.float32)
        seg_out[:, b : b + batch] = seg_np.transpose(1, 0, 2, 3)
        if lmk_out is not None:
            lmk_out[:, b : b + batch] = (lmk_acc / len(flips)).cpu().numpy().transpose(1, 0, 2, 3)
    return seg_out, lmk_out


def slab_to_input(prob: np.ndarray, grid, volume: Volume) -> np.ndarray:
    """Probabilities ``(C, z, Y, X)`` on a slab model grid (the input's slices, in-plane scaled)
    -> ``(C, z, y, x)`` on the input grid, bilinear; outside the model grid the background
    (channel 0) is 1. All channels and slices at once (``torch.nn.functional.grid_sample``)."""
    import torch

    m = np.linalg.inv(grid.affine) @ volume.affine  # input (x, y, z) index -> model index
    if not (np.allclose(m[:3, :3], np.diag(np.diag(m[:3, :3]))) and np.isclose(m[2, 2], 1) and np.isclose(m[2, 3], 0)):
        return probabilities_to_input(prob, grid, volume)
    _, ny, nx = volume.spatial_shape
    Y, X = prob.shape[2:]
    mx = m[0, 0] * np.arange(nx) + m[0, 3]
    my = m[1, 1] * np.arange(ny) + m[1, 3]
    gx = torch.from_numpy((2 * mx / max(X - 1, 1) - 1).astype(np.float32))
    gy = torch.from_numpy((2 * my / max(Y - 1, 1) - 1).astype(np.float32))
    g = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], dim=-1)  # (ny, nx, 2) as (x, y)
    p = torch.from_numpy(np.ascontiguousarray(prob)).permute(1, 0, 2, 3)  # (z, C, Y, X)
    out = torch.nn.functional.grid_sample(p, g[None].expand(p.shape[0], -1, -1, -1), mode="bilinear",
                                          padding_mode="zeros", align_corners=True)
    inside = torch.nn.functional.grid_sample(torch.ones_like(p[:1, :1]), g[None], mode="bilinear", padding_mode="zeros",
                                             align_corners=True)
    out[:, 0] += 1.0 - inside[0, 0]
    return out.permute(1, 0, 2, 3).numpy()


def segment_slab(volume: Volume, network, contract: dict, *, device: str = "cpu", tta: bool = False,
                 postprocess: bool = True, labels_map=None):
    """Labels (and landmark probabilities) of a slab network on the input grid of ``volume``:
    ``SlabOutput(labels Volume, landmark probabilities (L, z, y, x) or None)``."""
    seg_p, lmk_p, grid = predict_slab(network, volume, contract, device=device, tta=tta)
    prob_in = slab_to_input(seg_p, grid, volume)
    labels = prob_in.argmax(axis=0).astype(np.uint8)
    if labels_map is not None:
        labels = np.asarray(labels_map, np.uint8)[labels]
    if postprocess:
        labels = keep_heart(labels, volume.spacing)
    lmk_in = slab_to_input(lmk_p, grid, volume) if lmk_p is not None else None
    return SlabOutput(Volume(labels, affine=volume.affine, kind="labels"), lmk_in)


@dataclass
class SlabOutput:
    labels: Volume
    landmark_probabilities: np.ndarray | None


def forward(network, x, *, device: str = "cpu"):
    """``network(x)`` on ``device`` without gradients; float16 autocast on CUDA."""
    import torch

    x = x.to(device)
    with torch.inference_mode():
        if str(device).startswith("cuda"):
            with torch.autocast("cuda", dtype=torch.float16):
                return network(x)
        return network(x)


def predict_probabilities(network, image: np.ndarray, *, device: str = "cpu"):
    """Run a 2.5D network on one model-grid image ``(S, Y, X)`` -> ``(seg (C,S,Y,X), lmk (7,S,Y,X) or None)``
    softmax probabilities as numpy arrays. Uses autocast on CUDA."""
    import torch

    out = forward(network, torch.from_numpy(np.ascontiguousarray(image))[None], device=device)
    out = out if isinstance(out, tuple) else (out, None)
    seg = out[0].float().softmax(dim=1)[0].cpu().numpy()
    lmk = None if out[1] is None else out[1].float().softmax(dim=1)[0].cpu().numpy()
    return seg, lmk


def segment(volume: Volume, model: str | LoadedModel, *, device: str = "cpu", postprocess: bool = True,
            tta: bool = False, notes: list | None = None) -> Segmentation:
    """Segment a 3D short-axis ``volume`` (z, y, x) with ``model``.

    Returns labels (canonical values, the input's grid and geometry) and, for models with a
    landmark head, the landmarks in world mm. Input that does not fit the model's contract
    raises :class:`InputError`. A result without any heart gives empty labels and NaN
    landmarks with a note. Notes (no heart, landmarks not found, slices without signal, a scan
    far from the training domain) are appended to ``notes``, or warned when ``notes`` is None
    (:func:`~napari_cardiac_priors.errors.note`).
    """
    if isinstance(model, str):
        model = load_model(model, device=device)
    entry = model.entry
    if volume.kind != "image":
        raise InputError("segment takes an image, not a label map")
    from .registry import runs_on_stacks

    if not runs_on_stacks(entry):
        from .conventions import DEFAULT_MODEL

        raise InputError(f"model {entry.name!r} segments single 2D slices (a benchmark baseline), not a stack; "
                         f"use {DEFAULT_MODEL!r}")
    check_input(volume, entry.input, name=f"model {entry.name!r}")
    if entry.architecture == "acnn3d" and entry.config.get("task") != "segmentation":
        raise InputError(f"model {entry.name!r} is a super-resolution model; use enhance()")
    from .quality import blank_slice_note

    found: list = blank_slice_note(volume)
    if entry.architecture == "acnn3d":
        result = _segment_hr(volume, model, postprocess=postprocess, notes=found)
    elif entry.architecture == "slab2d":
        result = _segment_with_slab(volume, model, postprocess=postprocess, tta=tta, notes=found)
    else:
        result = _segment_stack(volume, model, postprocess=postprocess, notes=found)
    for message in found:
        note(message, notes)
    return result


def _segment_stack(volume: Volume, model: LoadedModel, *, postprocess: bool, notes: list) -> Segmentation:
    """The whole-stack 2.5D network (SSLLN of the paper, the phantom models)."""
    import time

    entry = model.entry
    t0 = time.perf_counter()
    image, grid = to_model(volume, entry.input)
    seg_p, lmk_p = predict_probabilities(model.network, image, device=model.device)
    t1 = time.perf_counter()
    prob_in = probabilities_to_input(seg_p, grid, volume)
    channel_to_label = np.array([int(entry.labels.get(str(c), c)) for c in range(prob_in.shape[0])], np.uint8)
    labels = channel_to_label[prob_in.argmax(axis=0)]
    if postprocess:
        labels = keep_largest_component(labels)
    landmarks = None
    if lmk_p is not None:
        missing: list = []
        landmarks = from_probabilities(lmk_p, grid.volume(lmk_p[0]), notes=missing)
    if not np.any(labels):
        notes.append(f"model {entry.name!r} found no heart in this image; the labels are empty")
        if landmarks is not None:
            landmarks = Landmarks(np.full((6, 3), np.nan), np.full(6, np.nan), ("model",) * 6)
    elif lmk_p is not None and missing:
        notes.append(missing[0])
    out = Volume(labels, affine=volume.affine, kind="labels", metadata={"model": entry.name, "version": entry.version})
    info = {"model": entry.name, "version": entry.version, "sha256": entry.sha256, "device": str(model.device),
            "network_seconds": t1 - t0, "total_seconds": time.perf_counter() - t0}
    return Segmentation(out, landmarks, entry.name, info)


def _segment_with_slab(volume: Volume, model: LoadedModel, *, postprocess: bool, tta: bool, notes: list) -> Segmentation:
    import time

    from .landmarks import derive_from_labels, from_slab_probabilities
    from .quality import domain_notes

    entry = model.entry
    t0 = time.perf_counter()
    channel_to_label = [int(entry.labels.get(str(c), c)) for c in range(int(entry.config["n_classes"]))]
    out = segment_slab(volume, model.network, entry.input, device=model.device, tta=tta, postprocess=postprocess,
                       labels_map=channel_to_label)
    t1 = time.perf_counter()
    labels = out.labels.array
    found = domain_notes(volume, entry, labels)
    # the six landmarks are measured on the model's own labels with the rules that define the
    # training targets (derive_from_labels): on held-out ACDC 1-7 mm median, where sslln-acdc's
    # landmark head put its own points 10-15 mm off (BENCHMARKS.md); the head's points stay in info
    missing: list = []
    landmarks = derive_from_labels(out.labels, notes=missing)
    if np.any(labels):
        found += missing
    head = None
    if out.landmark_probabilities is not None:
        head, _ = from_slab_probabilities(out.labels, out.landmark_probabilities, derived=landmarks)
    if not np.any(labels):
        found.insert(0, f"model {entry.name!r} found no heart in this image; the labels are empty")
    notes += found
    result = Volume(labels, affine=volume.affine, kind="labels", metadata={"model": entry.name, "version": entry.version})
    info = {"model": entry.name, "version": entry.version, "sha256": entry.sha256, "device": str(model.device),
            "network_seconds": t1 - t0, "total_seconds": time.perf_counter() - t0, "tta": bool(tta), "notes": found}
    if head is not None:
        info["landmark_head"] = {n: [float(v) for v in p] for n, p in zip(head.names, head.positions)}
    return Segmentation(result, landmarks, entry.name, info)


def predict_hr(volume: Volume, model: LoadedModel):
    """Run an LR -> HR model (ACNN) on ``volume``: ``(output (C, factor*z, Y, X), hr_affine, lo, hi)``,
    with the 1st/99th percentiles ``lo, hi`` of the input used for normalisation."""
    import torch

    from .contract import hr_affine, lr_model_grid, to_model

    entry = model.entry
    grid = lr_model_grid(volume, entry.input)
    image, _ = to_model(volume, entry.input, grid)
    out = forward(model.network, torch.from_numpy(np.ascontiguousarray(image))[None, None], device=model.device)
    lo, hi = np.percentile(np.asarray(volume.array, np.float32), [1, 99])
    return out.float()[0].cpu().numpy(), hr_affine(grid.affine, int(entry.config.get("factor", 5))), float(lo), float(hi)


def _segment_hr(volume: Volume, model: LoadedModel, *, postprocess: bool, notes: list) -> Segmentation:
    import time

    t0 = time.perf_counter()
    out, affine, _, _ = predict_hr(volume, model)
    t1 = time.perf_counter()
    labels = out.argmax(axis=0).astype(np.uint8)
    if postprocess:
        labels = keep_largest_component(labels)
    if not np.any(labels):
        notes.append(f"model {model.entry.name!r} found no heart in this image; the labels are empty")
    entry = model.entry
    result = Volume(labels, affine=affine, kind="labels", metadata={"model": entry.name, "version": entry.version})
    info = {"model": entry.name, "version": entry.version, "sha256": entry.sha256, "device": str(model.device),
            "network_seconds": t1 - t0, "total_seconds": time.perf_counter() - t0, "output_grid": "hr"}
    return Segmentation(result, None, entry.name, info)


def enhance(volume: Volume, model: str | LoadedModel, *, device: str = "cpu") -> Volume:
    """Super-resolve a short-axis stack ``(z, y, x)`` with an SR model: the HR image
    ``(factor * z, Y, X)`` on the LR-aligned HR grid, in the input's intensity units."""
    if isinstance(model, str):
        model = load_model(model, device=device)
    entry = model.entry
    if entry.architecture != "acnn3d" or entry.config.get("task") != "super-resolution":
        raise InputError(f"model {entry.name!r} is not a super-resolution model")
    if volume.kind != "image":
        raise InputError("enhance takes an image, not a label map")
    check_input(volume, entry.input, name=f"model {entry.name!r}")
    out, affine, lo, hi = predict_hr(volume, model)
    image = (out[0] * (hi - lo) + lo).astype(np.float32)
    return Volume(image, affine=affine, kind="image", metadata={"model": entry.name, "version": entry.version})
