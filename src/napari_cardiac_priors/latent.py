"""Latent spaces of the shape models: T-L codes of label maps, and how plausible a shape is.

A T-L model's input contract gives the grid its autoencoder sees (``size`` ``(Z, Y, X)`` and
``spacing`` mm). :func:`tl_grid_labels` resamples a label map onto that grid (nearest
neighbour, centred on its heart: the centroid of LV, MYO and RV). The grid's axes are the
label map's own unless the contract names a ``pose``: with ``"pose": "lv-rv"`` they are the
heart's (:func:`heart_axes`), so that a code describes the shape whatever the heart's in-plane
rotation and however the stack is stored. :func:`encode_labels` gives its code;
:func:`plausibility` its Mahalanobis distance to the training codes and where that distance
falls among the training subjects' own.
"""

from __future__ import annotations

import numpy as np

from .errors import InputError
from .volume import Volume, resample


def tl_grid_labels(labels: Volume, contract: dict) -> Volume:
    """``labels`` resampled onto the T-L grid of ``contract``, centred on the heart."""
    if labels.kind != "labels":
        raise InputError("the shape model encodes label maps, not images")
    heart = np.argwhere(np.isin(labels.array, (1, 2, 3)))
    if heart.size == 0:
        raise InputError("the label map holds no LV, MYO or RV: there is no shape to encode")
    return _tl_grid(labels, contract, heart.mean(axis=0), order=0, axes=pose_axes(labels, contract))


POSES = ("lv-rv",)


def pose_axes(labels: Volume, contract: dict) -> np.ndarray | None:
    """The T-L grid's axes for ``labels`` under ``contract``: :func:`heart_axes` when the
    contract's ``pose`` is ``"lv-rv"`` (and the map holds both ventricles), else None (the
    label map's own axes). Poses apply to 3D grids only: one slice has no base or apex."""
    pose = contract.get("pose")
    if pose is None:
        return None
    if pose not in POSES or len(contract["size"]) != 3:
        raise ValueError(f"pose {pose!r}: T-L contracts know {POSES} on 3D grids")
    return heart_axes(labels)


def heart_axes(labels: Volume) -> np.ndarray | None:
    """Unit world axes ``(3, 3)`` (columns x, y, z) of the heart in a label map ``(Z, Y, X)``:
    z along the slice normal from base to apex (:func:`~.landmarks.apex_at_low_index`), x from
    the LV (cavity and myocardium) centroid to the RV centroid within the slice plane, y = z x x
    (the same handedness as ACDC's stacks). None if the map has no LV or no RV, or they share a
    centroid. Derived in world coordinates, so a stack stored in another voxel order gives the
    same axes."""
    from .landmarks import apex_at_low_index

    lab = labels.array
    lv, rv = np.argwhere(np.isin(lab, (1, 2))), np.argwhere(lab == 3)
    if not len(lv) or not len(rv):
        return None
    z = labels.affine[:3, 2] / np.linalg.norm(labels.affine[:3, 2])
    if apex_at_low_index(lab):
        z = -z
    centres = labels.index_to_world(np.stack([lv.mean(axis=0), rv.mean(axis=0)]))
    x = centres[1] - centres[0]
    x = x - (x @ z) * z
    if np.linalg.norm(x) < 1e-6:
        return None
    x = x / np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z], axis=1)


def tl_grid_image(image: Volume, contract: dict) -> Volume:
    """``image`` normalised as the T-L predictor was trained and resampled onto the T-L grid,
    centred on the image's centre (short-axis stacks are planned about the heart)."""
    from .contract import normalise

    a = np.asarray(image.array, np.float32)
    if not np.isfinite(a).all() or not np.ptp(a) > 0:
        raise InputError("the image is empty or holds NaN/inf voxels: there is nothing to encode")
    vol = Volume(normalise(a, contract.get("normalisation", "percentile_1_99")), affine=image.affine, kind="image")
    return _tl_grid(vol, contract, (np.array(image.spatial_shape, float) - 1) / 2.0, order=1)


def _tl_grid(vol: Volume, contract: dict, centre_zyx, *, order: int, axes=None) -> Volume:
    size, affine = tl_grid_affine(vol, contract, centre_zyx, axes=axes)
    return resample(vol, affine=affine, shape=size, order=order)


def tl_grid_affine(vol: Volume, contract: dict, centre_zyx, *, axes=None) -> tuple[tuple, np.ndarray]:
    """``(size (Z, Y, X), affine)`` of the T-L grid of ``contract`` centred on the voxel index
    ``centre_zyx`` of ``vol``: the affine maps grid indices (x, y, z) to world mm, along the unit
    world ``axes`` ``(3, 3)`` (columns x, y, z; None: ``vol``'s own)."""
    size = [int(v) for v in contract["size"]]
    spacing = [float(v) for v in contract["spacing"]]
    if len(size) == 2:  # a 2D model: one slice, kept at its own thickness
        if vol.spatial_shape[0] != 1:
            raise InputError(f"this shape model is 2D: it encodes one slice, got {vol.spatial_shape[0]} (pick one)")
        size, spacing = [1, *size], [float(vol.spacing[0]), *spacing]
    centre = vol.affine @ np.r_[np.asarray(centre_zyx, float)[::-1], 1.0]  # (x, y, z) voxel index -> world
    if axes is None:
        axes = vol.affine[:3, :3] / np.linalg.norm(vol.affine[:3, :3], axis=0)
    affine = np.eye(4)
    affine[:3, :3] = np.asarray(axes, float) * np.array(spacing[::-1])  # columns x, y, z
    half = (np.array(size[::-1], float) - 1) / 2.0
    affine[:3, 3] = centre[:3] - affine[:3, :3] @ half
    return tuple(size), affine


def tl_codes(model, maps, *, batch_size: int = 8) -> np.ndarray:
    """T-L codes ``(N, D)`` of label maps ``(N, *size)`` already on the model's grid (integer,
    canonical values; a value beyond the model's classes counts as background). ``model``: a
    loaded T-L model. The one place where label maps meet the autoencoder."""
    import torch

    from .nn.tl import one_hot

    ae = model.network.autoencoder
    maps = np.asarray(maps).reshape(-1, *ae.shape)  # a 2D model's maps may come as (N, 1, H, W)
    lab = torch.from_numpy(np.where((maps >= 0) & (maps < ae.n_classes), maps, 0).astype(np.int64))
    with torch.inference_mode():
        return torch.cat([ae.encode(one_hot(lab[i : i + batch_size], ae.n_classes).to(model.device)).float().cpu()
                          for i in range(0, len(lab), batch_size)]).numpy()


def encode_labels(model, labels: Volume) -> np.ndarray:
    """The T-L code ``(D,)`` of a label map (``model``: a loaded T-L model or its name)."""
    from .inference import load_model

    model = load_model(model) if isinstance(model, str) else model
    return tl_codes(model, tl_grid_labels(labels, model.entry.input).array[None])[0]


def mahalanobis(code: np.ndarray, net) -> float:
    """Mahalanobis distance of a code to the training codes (the network's stored statistics)."""
    d = np.asarray(code, np.float64) - net.code_mean.double().cpu().numpy()
    return float(np.sqrt(max(d @ net.code_cov_inv.double().cpu().numpy() @ d, 0.0)))


def plausibility(labels: Volume, model) -> dict:
    """``{"distance": Mahalanobis distance, "percentile": % of training subjects closer}``.

    A distance beyond every training subject's (percentile 100) marks a shape unlike any the
    model was trained on: check the segmentation before measuring from it.
    """
    from .inference import load_model

    model = load_model(model) if isinstance(model, str) else model
    dist = mahalanobis(encode_labels(model, labels), model.network)
    return {"distance": dist, "percentile": distance_percentile(dist, model.network)}


def distance_percentile(distance: float, net) -> float:
    """Percentage of the training subjects whose own Mahalanobis distance is below ``distance``
    (NaN for a model without stored distance quantiles)."""
    q = net.distance_quantiles.double().cpu().numpy()
    if not np.any(q):
        return float("nan")
    return float(np.interp(distance, q, np.linspace(0, 100, len(q)), left=0.0, right=100.0))


# -- explorers: one API over the T-L shape space and SDNet's factors ------------------------------
from dataclasses import dataclass, field  # noqa: E402


@dataclass
class Code:
    """A point in a model's latent space: ``z`` ``(D,)`` and, for SDNet, the binary ``anatomy``
    ``(C, H, W)``; ``grid`` remembers what was encoded, so that decoding returns to it."""

    z: np.ndarray
    anatomy: np.ndarray | None = None
    grid: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    def with_z(self, z) -> "Code":
        return Code(np.asarray(z, np.float32).copy(), self.anatomy, self.grid, list(self.notes))


def _as_volume(array, spacing, kind: str) -> Volume:
    if isinstance(array, Volume):
        return array
    a = np.asarray(array)
    if spacing is None:
        spacing = (1.0,) * a.ndim
    if a.ndim == 2:
        a, spacing = a[None], (1.0, *spacing)
    return Volume(a, spacing=tuple(float(s) for s in spacing), kind=kind)


class _Explorer:
    """What both explorers share: the model, traversal along one dimension and its bounds check."""

    n_dims: int

    def __init__(self, model):
        self.model = model
        self.net = model.network
        self.contract = model.entry.input

    def _check_dim(self, dim):
        if not 0 <= int(dim) < self.n_dims:
            raise InputError(f"dimension {dim} is outside the model's {self.n_dims} code dimensions")

    def traverse(self, code: Code, dim: int, values) -> list:
        """Decoded outputs (on the encoded grid) for each value of dimension ``dim``."""
        self._check_dim(dim)
        out = []
        for v in values:
            z = np.array(code.z, np.float32)
            z[int(dim)] = v
            out.append(self.decode(code.with_z(z)))
        return out


class TLExplorer(_Explorer):
    """Encode label maps to T-L codes and decode codes to label maps (see :func:`load_explorer`)."""

    kind = "tl"

    def __init__(self, model):
        super().__init__(model)
        n = self.net.code_mean.numel()
        self.stats = {"mean": self.net.code_mean.float().cpu().numpy().reshape(n),
                      "std": self.net.code_std.float().cpu().numpy().reshape(n)}

    @property
    def n_dims(self) -> int:
        return int(self.stats["mean"].size)

    def encode(self, labels, *, spacing=None) -> Code:
        """A label map (Volume, or ``(z, y, x)`` / ``(y, x)`` array with ``spacing`` mm) -> its code."""
        vol = _as_volume(labels, spacing, "labels")
        grid = tl_grid_labels(vol, self.contract)
        notes = []
        n = self.net.autoencoder.n_classes
        unknown = sorted(int(v) for v in np.unique(vol.array) if not 0 <= v < n)
        if unknown:
            notes.append(f"label values {unknown} are not among the model's classes 0-{n - 1} and were encoded as background")
        if self.contract.get("pose") and pose_axes(vol, self.contract) is None:
            notes.append("the label map has no LV or no RV to turn it by: it was encoded on its own axes, not the "
                         "heart's as the model was trained")
        if vol.spatial_shape != grid.spatial_shape or not np.allclose(vol.spacing, grid.spacing):
            notes.append(f"resampled from {vol.spatial_shape} at {tuple(round(s, 3) for s in vol.spacing)} mm to the "
                         f"model's {grid.spatial_shape} grid at {tuple(self.contract['spacing'])} mm")
        z = self._encode_grid(grid.array)
        return Code(z, None, {"source": vol, "model_grid": grid, "squeeze": np.ndim(getattr(labels, "array", labels)) == 2}, notes)

    def encode_image(self, image, *, spacing=None) -> Code:
        """An intensity image -> the code the T-L predictor gives it (no segmentation needed).

        The image is resampled onto the model grid centred on its own centre, so the heart
        should lie near the middle of the field of view (as in planned short-axis stacks), and
        on its own axes (a model with a ``pose`` was trained on the heart's: a note says so)."""
        import torch

        vol = _as_volume(image, spacing, "image")
        if vol.kind == "labels":
            raise InputError("this is a label map: encode it with encode(), the predictor takes intensity images")
        grid = tl_grid_image(vol, self.contract)
        x = grid.array if len(self.net.predictor.shape) == 3 else grid.array[0]
        with torch.inference_mode():
            z = self.net.predictor(torch.from_numpy(np.ascontiguousarray(x))[None, None].to(self.model.device))
        notes = ["code predicted from the image by the T-L predictor (the model's image-to-shape route)"]
        if self.contract.get("pose"):
            notes.append("this shape model reads hearts on their own axes (LV to RV, base to apex), which an image "
                         "alone does not give: the code assumes the heart turned as the stack shows it; encode a "
                         "segmentation for a code that does not depend on how the heart lies")
        squeeze = np.ndim(getattr(image, "array", image)) == 2
        return Code(z[0].float().cpu().numpy(), None, {"source": vol, "model_grid": grid, "squeeze": squeeze}, notes)

    def _encode_grid(self, array) -> np.ndarray:
        return tl_codes(self.model, np.asarray(array)[None])[0]

    def decode_grid(self, code: Code) -> np.ndarray:
        """The decoded label map on the model's grid ``(Z, Y, X)``; a 2D model's ``(1, Y, X)``."""
        import torch

        from .nn.layers import class_labels

        with torch.inference_mode():
            z = torch.as_tensor(np.asarray(code.z, np.float32))[None].to(self.model.device)
            out = class_labels(self.net.autoencoder.decode(z))[0].cpu().numpy()
        return out if out.ndim == 3 else out[None]

    def decode_slice(self, code: Code, k: int) -> np.ndarray:
        """Slice ``k`` ``(Y, X)`` of :meth:`decode_grid`, decoding only what it depends on (a 3D
        model's slice costs a small part of the volume: the sliders show it first)."""
        import torch

        from .nn.layers import class_labels

        n = self.net.autoencoder.shape[0] if len(self.net.autoencoder.shape) == 3 else 1
        if not 0 <= int(k) < n:
            raise InputError(f"slice {k} is outside the model grid's {n} slices")
        if n == 1:
            return self.decode_grid(code)[0]
        with torch.inference_mode():
            z = torch.as_tensor(np.asarray(code.z, np.float32))[None].to(self.model.device)
            return class_labels(self.net.autoencoder.decode_slab(z, int(k), int(k) + 1))[0, 0].cpu().numpy()

    def decode_model_grid(self, code: Code) -> Volume:
        """The decoded label map as a Volume on the model's grid, placed in the encoded map's world
        space (the sliders' fast path: no resampling back to the source grid)."""
        return code.grid["model_grid"].with_array(self.decode_grid(code), kind="labels")

    @property
    def has_preview(self) -> bool:
        """Whether the model has a preview head (a coarse whole volume, fast: :meth:`preview_grid`)."""
        return getattr(self.net.autoencoder, "preview_blocks", None) is not None

    def preview_grid(self, code: Code) -> np.ndarray:
        """A coarse version of :meth:`decode_grid` ``(Z, Y, X)`` from the model's preview head, at a
        fraction of its cost (what the sliders show while they move)."""
        import torch

        from .nn.layers import class_labels

        if not self.has_preview:
            raise InputError("this T-L model has no preview head: decode_grid() gives the volume")
        with torch.inference_mode():
            z = torch.as_tensor(np.asarray(code.z, np.float32))[None].to(self.model.device)
            out = class_labels(self.net.autoencoder.decode_preview(z))[0].cpu().numpy()
        return out if out.ndim == 3 else out[None]

    def decode(self, code: Code):
        """The label map of ``code`` on the grid of the array that was encoded (nearest neighbour)."""
        out = self.decode_grid(code)
        src, grid = code.grid.get("source"), code.grid.get("model_grid")
        if src is None:
            return out
        back = resample(grid.with_array(out, kind="labels"), src, order=0).array
        return back[0] if code.grid.get("squeeze") else back

    def order_by_variance(self) -> list[int]:
        """Code dimensions sorted by their training variance, largest first (the sliders' order)."""
        return [int(i) for i in np.argsort(-self.stats["std"])]

    def mahalanobis(self, code: Code) -> float:
        return mahalanobis(code.z, self.net)

    def interpolate(self, a: Code, b: Code, t: float) -> Code:
        """The code ``(1 - t) a + t b`` (decoded on ``a``'s grid)."""
        return a.with_z((1.0 - t) * np.asarray(a.z) + t * np.asarray(b.z))



def load_explorer(name: str, *, device: str = "cpu"):
    """The explorer of a T-L (``task: shape-prior``) or SDNet (``task: disentanglement``) model."""
    from .inference import load_model

    model = load_model(name, device=device)
    if model.entry.architecture == "tl":
        return TLExplorer(model)
    if model.entry.architecture == "sdnet":
        return SDNetExplorer(model)
    raise InputError(f"{name!r} is a {model.entry.task} model; the latent explorer takes T-L or SDNet models")


def _slice_grid(vol: Volume, spacing, size) -> Volume:
    """A 1-slice grid of ``size`` ``(H, W)`` at ``spacing`` mm, centred on the slice ``vol`` (1, y, x)."""
    from .contract import centred_inplane

    ky, kx, y0, x0 = centred_inplane(vol, spacing, size)
    m = np.array([[kx, 0, 0, x0], [0, ky, 0, y0], [0, 0, 1, 0], [0, 0, 0, 1.0]])
    return Volume(np.zeros((1, *(int(v) for v in size)), np.float32), affine=vol.affine @ m, kind=vol.kind)


class SDNetExplorer(_Explorer):
    """Encode an image slice into SDNet's anatomy factor and modality vector; decode them back."""

    kind = "sdnet"

    def __init__(self, model):
        super().__init__(model)
        self.stats = {"mean": self.net.z_mean.float().cpu().numpy(), "std": self.net.z_std.float().cpu().numpy()}
        self._prepared = None  # (anatomy, the decoder's z-independent part for it): a z slider reuses it

    @property
    def n_dims(self) -> int:
        return int(self.net.n_z)

    def encode(self, image, *, spacing=None) -> Code:
        """An image slice (``(y, x)`` array with ``spacing`` mm, or a 1-slice Volume) -> anatomy + z."""
        import torch

        from .contract import normalise

        vol = _as_volume(image, spacing, "image")
        if vol.spatial_shape[0] != 1:
            raise InputError(f"SDNet encodes one slice; got {vol.spatial_shape[0]} slices (pick one)")
        grid = _slice_grid(vol, self.contract["spacing"], self.contract["size"])
        notes = []
        if vol.spatial_shape[1:] != tuple(self.contract["size"]) or not np.allclose(vol.spacing[1:], self.contract["spacing"]):
            notes.append(f"resampled from {vol.spatial_shape[1:]} at {tuple(round(s, 3) for s in vol.spacing[1:])} mm to "
                         f"{tuple(self.contract['size'])} at {tuple(self.contract['spacing'])} mm")
        a = np.asarray(vol.array, np.float32)
        lo, hi = np.percentile(a, [5, 95])
        if not hi > lo:
            raise InputError("the slice has no contrast (constant intensity between its 5th and 95th percentile): "
                             "nothing to encode; pick a slice through the heart")
        x = resample(vol.with_array(normalise(a, "percentile_5_95_sym")), grid, order=1, cval=-1.0).array
        self.net.eval()
        with torch.inference_mode():
            anatomy, _, mu, _ = self.net.encode(torch.from_numpy(x[None]).to(self.model.device))
        return Code(mu[0].float().cpu().numpy(), anatomy[0].float().cpu().numpy(),
                    {"source": vol, "model_grid": grid, "lo": float(lo), "hi": float(hi),
                     "squeeze": np.ndim(getattr(image, "array", image)) == 2}, notes)

    def decode_grid(self, code: Code) -> np.ndarray:
        """The decoded image ``(H, W)`` on the model grid, in [-1, 1]."""
        import torch

        anatomy = np.asarray(code.anatomy, np.float32)
        with torch.inference_mode():
            kept = self._prepared
            if kept is None or not np.array_equal(kept[0], anatomy):
                a = torch.as_tensor(anatomy)[None].to(self.model.device)
                kept = self._prepared = (anatomy.copy(), self.net.decoder.prepare(a))
            z = torch.as_tensor(np.asarray(code.z, np.float32))[None].to(self.model.device)
            return self.net.decoder(None, z, prepared=kept[1])[0, 0].float().cpu().numpy()

    def _units(self, out: np.ndarray, g: dict) -> np.ndarray:
        if "hi" in g:  # the inverse of the 5th-95th percentile -> [-1, 1] normalisation
            out = g["lo"] + (out + 1.0) / 2.0 * (g["hi"] - g["lo"])
        return out.astype(np.float32)

    def decode_model_grid(self, code: Code) -> Volume:
        """The decoded image as a 1-slice Volume on the model grid, in the encoded slice's
        intensity units and world space (the sliders' fast path)."""
        return code.grid["model_grid"].with_array(self._units(self.decode_grid(code), code.grid)[None])

    def decode(self, code: Code):
        """The decoded image on the encoded slice's grid, in its intensity units."""
        g = code.grid
        out = self._units(self.decode_grid(code), g)
        if g.get("source") is None:
            return out
        # outside the model's field of view there is nothing decoded: the 5th percentile (background)
        back = resample(g["model_grid"].with_array(out[None].astype(np.float32)), g["source"], order=1,
                        cval=g.get("lo", -1.0)).array
        return back[0] if g.get("squeeze") else back

    def segment(self, code: Code) -> np.ndarray:
        """The segmentor's labels ``(H, W)`` of the code's anatomy, on the model grid."""
        import torch

        with torch.inference_mode():
            a = torch.as_tensor(np.asarray(code.anatomy, np.float32))[None].to(self.model.device)
            return self.net.segmentor(a)[0].argmax(0).cpu().numpy().astype(np.uint8)

    def channel_classes(self, code: Code) -> list[int]:
        """For each anatomy channel, the label the segmentor gives most of its pixels (0 if empty)."""
        seg = self.segment(code)
        out = []
        for c in range(code.anatomy.shape[0]):
            on = code.anatomy[c] > 0.5
            out.append(int(np.bincount(seg[on], minlength=1).argmax()) if on.any() else 0)
        return out


def describe(explorer, code: Code) -> dict:
    """A code as JSON-ready values: ``model``, ``kind``, ``z`` ``(D,)`` and ``notes``; for T-L the
    Mahalanobis ``distance`` and its ``percentile`` among the training subjects; for SDNet, per
    anatomy channel, its area in model-grid pixels and the label the segmentor maps it to."""
    out = {"model": explorer.model.entry.name, "kind": explorer.kind,
           "z": [round(float(v), 6) for v in np.asarray(code.z).ravel()], "notes": list(code.notes)}
    if explorer.kind == "tl":
        dist = explorer.mahalanobis(code)
        pct = distance_percentile(dist, explorer.net)
        out.update(distance=dist, percentile=None if np.isnan(pct) else pct)
    else:
        from .conventions import LABELS

        out["anatomy_channels"] = [{"channel": c, "area_px": int((code.anatomy[c] > 0.5).sum()), "label": LABELS.get(k, k)}
                                   for c, k in enumerate(explorer.channel_classes(code))]
    return out


def edit_anatomy(code: Code, op: str, a: int, b: int | None = None) -> Code:
    """Channel arithmetic on SDNet's anatomy (Fig. 7): ``"zero"`` channel ``a``; ``"add"`` channel
    ``a`` into ``b`` (``a`` then zero); ``"swap"`` ``a`` and ``b``. Returns a new code."""
    if code.anatomy is None:
        raise InputError("only SDNet codes have anatomy channels")
    n = code.anatomy.shape[0]
    for c in (a,) + (() if b is None else (b,)):
        if not 0 <= int(c) < n:
            raise InputError(f"channel {c} is outside the {n} anatomy channels")
    anat = np.array(code.anatomy, np.float32)
    if op == "zero":
        anat[a] = 0
    elif op == "add":
        if b is None:
            raise InputError("'add' needs a target channel")
        anat[b] = np.clip(anat[b] + anat[a], 0, 1)
        anat[a] = 0
    elif op == "swap":
        if b is None:
            raise InputError("'swap' needs a second channel")
        anat[[a, b]] = anat[[b, a]]
    else:
        raise InputError(f"unknown anatomy operation {op!r} (zero, add, swap)")
    return Code(np.array(code.z, np.float32), anat, code.grid, list(code.notes))


def transfer_modality(anatomy_from: Code, z_from: Code) -> Code:
    """Anatomy of one slice with the modality vector of another (SDNet's modality transfer)."""
    return Code(np.array(z_from.z, np.float32), anatomy_from.anatomy, anatomy_from.grid, list(anatomy_from.notes))


def traversal_grid(explorer, code: Code, *, values=tuple(np.linspace(-3.0, 3.0, 7)), dims=None) -> dict:
    """SDNet's Fig. 8 for any explorer: each dimension traversed over ``values`` (SDNet: z values;
    T-L: ``mean + value * std`` of the dimension), decoded on the model grid.

    Returns ``{"images": (D, V, H, W), "correlation": (D, H, W), "difference": (D, H, W),
    "dims": [...], "values": [...]}``: per row, the per-pixel Pearson correlation between the
    traversed value and the decoded intensity (0 where a pixel does not change), and the last
    image minus the first.
    """
    dims = list(range(explorer.n_dims)) if dims is None else [int(d) for d in dims]
    values = [float(v) for v in values]
    rows = []
    for d in dims:
        frames = []
        for v in values:
            z = np.array(code.z, np.float32)
            z[d] = v if explorer.kind == "sdnet" else explorer.stats["mean"][d] + v * explorer.stats["std"][d]
            out = explorer.decode_grid(code.with_z(z)).astype(np.float32)
            frames.append(out if out.ndim == 2 else out[out.shape[0] // 2])  # a 3D T-L output: its middle slice
        rows.append(np.stack(frames))
    images = np.stack(rows)
    t = np.asarray(values, np.float32)[None, :, None, None]
    tc = t - t.mean()
    ic = images - images.mean(axis=1, keepdims=True)
    denom = np.sqrt((tc**2).sum(1) * (ic**2).sum(1))
    corr = np.divide((tc * ic).sum(1), denom, out=np.zeros(denom.shape, np.float32), where=denom > 1e-12)
    return {"images": images, "correlation": corr.astype(np.float32), "difference": images[:, -1] - images[:, 0],
            "dims": dims, "values": values}


def grid_mosaic(grid: dict) -> np.ndarray:
    """One 2D picture of a traversal grid: per row the decoded images, then the correlation and
    difference images, each scaled to [0, 1] (``(D * H, (V + 2) * W)`` float32)."""
    def unit(a, lo=None, hi=None):
        lo = a.min() if lo is None else lo
        hi = a.max() if hi is None else hi
        return np.clip((a - lo) / max(hi - lo, 1e-9), 0, 1)

    imgs = unit(grid["images"])
    rows = []
    for d in range(imgs.shape[0]):
        rows.append(np.concatenate(list(imgs[d]) + [unit(grid["correlation"][d], -1, 1), unit(grid["difference"][d])], axis=1))
    return np.concatenate(rows, axis=0).astype(np.float32)


def save_png(mosaic: np.ndarray, path) -> None:
    """Write a [0, 1] mosaic as an 8-bit PNG (atomically)."""
    import imageio.v3 as iio

    from .io import atomic_path

    with atomic_path(path) as tmp:
        iio.imwrite(tmp, (np.clip(mosaic, 0, 1) * 255).astype(np.uint8), extension=".png")
