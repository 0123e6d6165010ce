"""Volume <-> napari layer data, Landmarks <-> Points layer data.

napari's world axes are the reversed RAS axes ``(S, A, R)``: a layer gets ``scale`` = the
voxel spacing and ``affine`` = the rotation and origin of its NIfTI affine (see
:meth:`Volume.layer_geometry`), so an LR stack and an HR volume of one subject overlay.
Landmark points are stored directly in napari world coordinates (RAS reversed, mm).
"""

from __future__ import annotations

import numpy as np

from ..conventions import LABEL_COLORS, LABELS, LANDMARK_COLORS, LANDMARK_NAMES
from ..landmarks import Landmarks
from ..volume import Volume, affine_from_layer_geometry


def label_colormap():
    """The canonical label colours as a napari ``DirectLabelColormap``."""
    from napari.utils.colormaps import DirectLabelColormap

    colors = {None: (0.0, 0.0, 0.0, 0.0), **{k: v for k, v in LABEL_COLORS.items()}}
    return DirectLabelColormap(color_dict=colors)


def label_features() -> dict:
    """Labels layer features: one row per canonical label value (row 0 is background)."""
    return {"index": list(LABELS), "name": list(LABELS.values())}


def volume_layer_data(volume: Volume, *, name: str) -> tuple:
    """A napari layer-data tuple ``(data, kwargs, layer_type)`` for ``volume``."""
    geometry = volume.layer_geometry()
    meta = {"name": name, **geometry, "metadata": {"volume_metadata": dict(volume.metadata), "nifti_affine": volume.affine.tolist()}}
    if volume.kind == "labels":
        meta.update(colormap=label_colormap(), features=label_features(), opacity=0.5)
        return volume.array, meta, "labels"
    array = volume.array
    finite = array[::4, ::4, ::4] if array.ndim == 3 else array[..., ::4, ::4, ::4]
    lo, hi = np.percentile(finite, [0.5, 99.5]) if finite.size else (0, 1)
    meta.update(colormap="gray", contrast_limits=(float(lo), float(max(hi, lo + 1e-6))))
    return array, meta, "image"


def layer_volume(data, *, scale, affine=None, translate=None, kind: str = "image", metadata=None) -> Volume:
    """A :class:`Volume` from a layer's data and geometry (inverse of :func:`volume_layer_data`).

    ``data`` is ``(z, y, x)`` or ``(t, z, y, x)``; the last three axes carry the geometry.
    """
    nifti = affine_from_layer_geometry(scale, affine, translate)
    return Volume(np.asarray(data), affine=nifti, kind=kind, metadata=dict(metadata or {}))


def layer_to_volume(layer) -> Volume:
    """A :class:`Volume` from a napari Image or Labels layer."""
    from napari.layers import Labels

    # isinstance, not the class name: a plugin's viewer hands out layers behind a proxy
    kind = "labels" if isinstance(layer, Labels) else "image"
    return layer_volume(
        layer.data, scale=layer.scale, affine=layer.affine.affine_matrix, translate=layer.translate, kind=kind,
        metadata=layer.metadata.get("volume_metadata", {}),
    )


# -- landmarks ---------------------------------------------------------------------------
def landmarks_layer_data(landmarks: Landmarks, *, name: str = "landmarks") -> tuple:
    """Points layer data of the valid landmarks, positions in napari world ``(S, A, R)`` mm."""
    from napari.utils.colormaps.standardize_color import transform_color

    ok = landmarks.valid
    names = [n for n, v in zip(landmarks.names, ok) if v]
    data = landmarks.positions[ok][:, ::-1]
    features = {
        "name": names,
        "confidence": landmarks.confidence[ok].tolist(),
        "source": [s for s, v in zip(landmarks.source, ok) if v],
    }
    colors = transform_color([LANDMARK_COLORS[n] for n in names]) if names else np.empty((0, 4))
    meta = {
        "name": name,
        "features": features,
        "face_color": colors,
        "border_color": source_border_colors(features["source"]),
        "border_width": 0.2,
        "size": 7,
        "text": {"string": "{name}", "size": 9, "color": "white", "anchor": "upper_left"},
        "ndim": 3,
    }
    return data, meta, "points"


#: the border of a landmark point says where it comes from: a user's correction stands out
SOURCE_BORDER = {"user": "#ffd700"}
DEFAULT_BORDER = "white"


def source_border_colors(sources) -> np.ndarray:
    """RGBA ``(n, 4)`` border colours of landmark points with these ``source`` values."""
    from napari.utils.colormaps.standardize_color import transform_color

    return transform_color([SOURCE_BORDER.get(s, DEFAULT_BORDER) for s in sources]) if len(sources) else np.empty((0, 4))


def points_to_landmarks(data, *, features=None, scale=None, affine=None, translate=None) -> Landmarks:
    """:class:`Landmarks` from Points layer data (``(n, 3)`` layer coordinates) and features.

    Points are taken to world with the layer's geometry (identity for layers made by
    :func:`landmarks_layer_data`). With a ``name`` feature the points are matched by name;
    without one there must be exactly six points, in the conventional order.
    """
    data = np.asarray(data, dtype=np.float64)
    if data.ndim != 2 or data.shape[1] != 3:
        raise ValueError(f"landmark points must be 3D, got data of shape {data.shape}")
    m = np.eye(4) if affine is None else np.asarray(affine, dtype=np.float64)[-4:, -4:]
    s = np.ones(3) if scale is None else np.asarray(scale, dtype=np.float64)[-3:]
    t = np.zeros(3) if translate is None else np.asarray(translate, dtype=np.float64)[-3:]
    world = (data * s + t) @ m[:3, :3].T + m[:3, 3]
    ras = world[:, ::-1]
    columns = {k: list(v) for k, v in dict(features if features is not None else {}).items()}
    names = columns.get("name")
    if names is None:
        if len(ras) != len(LANDMARK_NAMES):
            raise ValueError(f"points without names must be exactly {len(LANDMARK_NAMES)}, got {len(ras)}")
        names = list(LANDMARK_NAMES)
    lm = Landmarks.from_dict(dict(zip(names, ras)))
    if len(set(names)) != len(names):
        raise ValueError("two points have the same landmark name")
    order = [LANDMARK_NAMES.index(n) for n in names]
    confidence, source = lm.confidence.copy(), list(lm.source)
    for i, c in zip(order, columns.get("confidence", [])):
        confidence[i] = float(c)
    for i, src in zip(order, columns.get("source", [])):
        source[i] = str(src)
    return Landmarks(lm.positions, confidence, tuple(source))


def surface_layer_data(mesh, *, name: str) -> tuple:
    """A napari Surface layer-data tuple of a :class:`~napari_cardiac_priors.surfaces.Mesh`,
    vertices in napari world ``(S, A, R)`` mm like the other layers, coloured by its label."""
    from napari.utils.colormaps.standardize_color import transform_color

    rgba = transform_color(LABEL_COLORS[mesh.label])[0]
    vertices = np.ascontiguousarray(mesh.vertices[:, ::-1])
    meta = {"name": name, "vertex_colors": np.tile(rgba, (len(vertices), 1)), "opacity": 0.6 if mesh.name != "rv" else 0.8,
            "metadata": {"surface": mesh.name, "label": int(mesh.label)}}
    return (vertices, np.asarray(mesh.faces), np.ones(len(vertices), np.float32)), meta, "surface"
