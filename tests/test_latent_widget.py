"""The Latent explorer widget with tiny T-L and SDNet models, driven as a user would."""

import numpy as np
import pytest

from helpers import install_tiny_tl
from napari_cardiac_priors.phantom import make_subject
from test_latent import _install_tiny_sdnet

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def ph():
    return make_subject(9760, lr=True)["ed"]


def _layer(viewer, volume, name):
    from napari.layers import Layer

    from napari_cardiac_priors._napari.layers import volume_layer_data

    return viewer.add_layer(Layer.create(*volume_layer_data(volume, name=name)))


def test_latest_decoder_starts_an_isolated_request_at_once_and_groups_a_burst(qtbot):
    import threading

    from qtpy.QtWidgets import QWidget

    from napari_cardiac_priors._napari.decoder import LatestDecoder

    gate, seen, shown = threading.Event(), [], []

    def decode(code):
        gate.wait(10)
        seen.append(code)
        return code * 10

    owner = QWidget()
    dec = LatestDecoder(decode, lambda out, code, err: shown.append((out, code, err)), debounce_ms=15, parent=owner)
    dec.request(1)
    assert dec._running  # no debounce wait for a move that finds the decoder idle
    for v in (2, 3, 4, 5):  # a burst while the first decode runs
        dec.request(v)
    gate.set()
    qtbot.waitUntil(lambda: not dec.busy, timeout=10000)
    assert seen == [1, 5]  # the burst became one decode of its newest value
    assert shown == [(10, 1, None), (50, 5, None)]  # each result shown as it came, the newest last
    dec.close()
    parts = []
    dec = LatestDecoder(lambda code: code * 10, lambda out, code, err: shown.append((out, code, err)),
                        preview=lambda code, hint: (code, hint), on_preview=lambda part, code, hint: parts.append(part),
                        parent=owner)
    dec.request(6, hint=2)
    qtbot.waitUntil(lambda: not dec.busy, timeout=10000)
    dec.request(7)  # no hint: no preview
    qtbot.waitUntil(lambda: not dec.busy, timeout=10000)
    assert parts == [(6, 2)] and shown[-2:] == [(60, 6, None), (70, 7, None)]
    dec.close()
    # a request made while a preview is computed: that preview and its full decode are dropped
    gate.clear()
    decoded, parts, shown = [], [], []

    def slow_preview(code, hint):
        gate.wait(10)
        return code

    dec = LatestDecoder(lambda code: decoded.append(code) or code * 10, lambda out, code, err: shown.append(out),
                        preview=slow_preview, on_preview=lambda part, code, hint: parts.append(part), parent=owner)
    dec.request(8, hint=0)
    dec.request(9, hint=0)  # arrives while 8's preview runs
    gate.set()
    qtbot.waitUntil(lambda: not dec.busy, timeout=10000)
    assert parts == [8, 9] and decoded == [9] and shown == [90]  # 8's preview shown, its full decode skipped
    dec.close()


def _encoding(viewer, model, layer):
    """A docked Latent explorer asked to encode ``layer`` with ``model`` (in the background)."""
    from napari_cardiac_priors._napari.latent_widget import LatentExplorerWidget

    widget = LatentExplorerWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget._model.value = model
    widget._layer.value = layer
    widget._encode.clicked.emit()
    return widget


def test_tl_sliders_decode_live_into_labels(make_napari_viewer, qtbot, tmp_path, ph, notes, monkeypatch):
    from napari_cardiac_priors._napari import latent_widget

    viewer = make_napari_viewer()
    labels = _layer(viewer, ph.lr_labels, "seg")
    widget = _encoding(viewer, install_tiny_tl(tmp_path), labels)  # encodes in the background
    qtbot.waitUntil(lambda: widget._encode.enabled and len(widget.sliders) > 0, timeout=30000)
    assert not [n for n in notes if n[0] == "error"], notes
    assert any("resampled" in n[1] for n in notes)
    assert len(widget.sliders) == 8 and "Mahalanobis" in widget._plausibility.value
    qtbot.waitUntil(lambda: widget.output_layer is not None and not widget.decoder.busy, timeout=30000)
    out = widget.output_layer
    source = labels.data.copy()
    assert out.data.shape == (48, 48, 48)  # the model grid, placed in world space (no resampling per move)
    heart = np.argwhere(np.isin(labels.data, (1, 2, 3))).mean(0)
    centre = np.asarray(out.data_to_world((np.array(out.data.shape) - 1) / 2.0))
    np.testing.assert_allclose(centre, labels.data_to_world(heart), atol=1e-3)  # centred on the heart
    viewer.dims.set_point(0, float(out.data_to_world((20, 0, 0))[0]))  # model-grid slice 20 on screen
    monkeypatch.setattr(latent_widget, "PREVIEW_ABOVE_MS", 1e9)  # a volume that decodes fast: no preview
    assert widget._preview_hint() is None
    monkeypatch.setattr(latent_widget, "PREVIEW_ABOVE_MS", -1.0)  # a slow one: the slice on screen first
    assert widget._preview_hint() == 20
    shown = widget.previews_shown
    widget.sliders[1].value = widget.sliders[1].max  # one move: the slice on screen first, then the volume
    qtbot.waitUntil(lambda: not widget.decoder.busy, timeout=30000)
    assert widget.previews_shown == shown + 1
    np.testing.assert_array_equal(out.data, widget.explorer.decode_model_grid(widget.code).array)
    np.testing.assert_array_equal(widget.explorer.decode_slice(widget.code, 20), out.data[20])
    done = widget.decoder.completed
    for v in np.linspace(widget.sliders[0].min, widget.sliders[0].max, 10):  # a drag: many moves
        widget.sliders[0].value = float(v)
    qtbot.waitUntil(lambda: not widget.decoder.busy, timeout=30000)
    assert widget.decoder.completed - done < 10  # debounced: fewer decodes than moves
    expect = widget.explorer.decode_model_grid(widget.code).array
    np.testing.assert_array_equal(out.data, expect)  # the latest value won
    np.testing.assert_array_equal(labels.data, source)  # the input is untouched
    top = widget.explorer.order_by_variance()[0]
    mean, sd = widget.explorer.stats["mean"][top], widget.explorer.stats["std"][top]
    assert widget.sliders[0].max == 3.0 and widget.sliders[0].label.startswith(f"1. z{top}")  # rank, in sd
    assert widget.code.z[top] == pytest.approx(mean + 3.0 * sd, rel=1e-5)
    widget._set_a.clicked.emit()
    widget._set_b.clicked.emit()
    widget._t.value = 0.5
    qtbot.waitUntil(lambda: not widget.decoder.busy, timeout=30000)
    assert not [n for n in notes if n[0] == "error"], notes


def test_a_tl_model_with_a_preview_head_shows_the_coarse_volume_first(make_napari_viewer, qtbot, tmp_path, ph, notes,
                                                                        monkeypatch):
    from napari_cardiac_priors._napari import latent_widget
    from napari_cardiac_priors._napari.latent_widget import WHOLE

    viewer = make_napari_viewer()
    labels = _layer(viewer, ph.lr_labels, "seg")
    widget = _encoding(viewer, install_tiny_tl(tmp_path, name="tiny-tl-preview", preview_blocks=2), labels)
    qtbot.waitUntil(lambda: widget.output_layer is not None and not widget.decoder.busy, timeout=30000)
    assert widget.explorer.has_preview and not [n for n in notes if n[0] == "error"], notes
    monkeypatch.setattr(latent_widget, "PREVIEW_ABOVE_MS", -1.0)  # a volume that decodes slowly
    viewer.dims.ndisplay = 3  # in 3D too: the preview is a whole volume
    assert widget._preview_hint() == WHOLE
    out, own = widget.output_layer, widget.output_layer.data
    drawn, replaced = [], []
    out.events.set_data.connect(lambda e: drawn.append((out.data is own, out.data.copy())))
    out.events.data.connect(lambda e: replaced.append(out.data.copy()))
    widget.sliders[0].value = widget.sliders[0].max
    qtbot.waitUntil(lambda: not widget.decoder.busy, timeout=30000)
    preview, exact = widget.explorer.preview_grid(widget.code), widget.explorer.decode_model_grid(widget.code).array
    assert widget.previews_shown == 1 and not np.array_equal(preview, exact)
    assert drawn[0][0] and np.array_equal(drawn[0][1], preview)  # the coarse volume first, written into the layer's array
    assert len(replaced) == 1 and np.array_equal(replaced[0], exact)  # then the exact one replaces it (napari's data event)
    np.testing.assert_array_equal(out.data, exact)


def test_sdnet_anatomy_edits_transfer_and_grid(make_napari_viewer, qtbot, tmp_path, ph, notes):
    from napari_cardiac_priors._napari.latent_widget import LatentExplorerWidget

    sd = _install_tiny_sdnet(tmp_path)
    viewer = make_napari_viewer()
    image = _layer(viewer, ph.lr_image, "lr")
    viewer.dims.set_current_step(0, 4)
    widget = LatentExplorerWidget(viewer)
    widget._model.value = sd
    widget._layer.value = image
    assert widget.encode()
    assert widget.anatomy_layer.data.shape == (8, 64, 64) and len(widget.sliders) == 8
    assert "channels ->" in widget._status.value
    qtbot.waitUntil(lambda: widget.output_layer is not None and not widget.decoder.busy, timeout=30000)
    assert widget.output_layer.data.shape == (1, 64, 64)  # the model's slice grid, in world space
    np.testing.assert_allclose(widget.output_layer.data, widget.explorer.decode_model_grid(widget.code).array)
    c = int(np.argmax(widget.code.anatomy.sum((1, 2))))
    widget._op.value, widget._ch_a.value = "zero", c
    assert widget.apply_channel_op() and widget.anatomy_layer.data[c].sum() == 0
    widget._z_from.value = image
    viewer.dims.set_current_step(0, 2)
    assert widget.transfer()
    widget._grid.clicked.emit()  # the button: in the background
    assert not widget._grid.enabled
    qtbot.waitUntil(lambda: widget._grid.enabled and "lr traversal grid" in viewer.layers, timeout=30000)
    mosaic = viewer.layers["lr traversal grid"].data
    assert mosaic.shape == (8 * 64, 9 * 64) and "lr traversal grid" in viewer.layers
    assert widget.export_grid(tmp_path / "grid")
    assert (tmp_path / "grid.png").exists()
    qtbot.waitUntil(lambda: not widget.decoder.busy, timeout=30000)
    assert not [n for n in notes if n[0] == "error"], notes


def test_tl_encodes_an_image_through_its_predictor_and_sdnet_refuses_labels(make_napari_viewer, qtbot, tmp_path, ph, notes):
    from napari_cardiac_priors._napari.latent_widget import LatentExplorerWidget

    tl, sd = install_tiny_tl(tmp_path), _install_tiny_sdnet(tmp_path)
    viewer = make_napari_viewer()
    image = _layer(viewer, ph.lr_image, "lr")
    labels = _layer(viewer, ph.lr_labels, "seg")
    widget = LatentExplorerWidget(viewer)
    widget._model.value = tl
    widget._layer.value = image
    assert widget.encode()
    assert any("predictor" in n[1] for n in notes)
    qtbot.waitUntil(lambda: widget.output_layer is not None and not widget.decoder.busy, timeout=30000)
    from napari.layers import Labels

    assert isinstance(widget.output_layer, Labels)  # the decoded shape is a label map
    widget._model.value = sd
    widget._layer.value = labels
    n_layers = len(viewer.layers)
    assert not widget.encode()
    assert notes[-1][0] == "error" and "Image layer" in notes[-1][1]
    assert len(viewer.layers) == n_layers


def test_switching_model_family_both_ways_gives_each_its_own_layer(make_napari_viewer, qtbot, tmp_path, ph, notes):
    from napari.layers import Image, Labels

    from napari_cardiac_priors._napari.latent_widget import LatentExplorerWidget

    tl, sd = install_tiny_tl(tmp_path), _install_tiny_sdnet(tmp_path)
    viewer = make_napari_viewer()
    image = _layer(viewer, ph.lr_image, "lr")
    viewer.dims.set_current_step(0, 4)
    widget = LatentExplorerWidget(viewer)
    outputs = []
    for model, kind in ((tl, Labels), (sd, Image), (tl, Labels)):
        widget._model.value = model
        widget._layer.value = image
        assert widget.encode()
        qtbot.waitUntil(lambda: widget.output_layer is not None and widget.output_layer not in outputs
                        and not widget.decoder.busy, timeout=30000)
        assert isinstance(widget.output_layer, kind)
        outputs.append(widget.output_layer)
    sd_layer = outputs[1]
    assert sd_layer in viewer.layers and sd_layer.data.shape == (1, 64, 64)  # SDNet's layer was not overwritten
    assert not [n for n in notes if n[0] == "error"], notes


def test_the_encode_button_encodes_in_the_background(make_napari_viewer, qtbot, tmp_path, ph, notes):
    from napari_cardiac_priors._napari.latent_widget import LatentExplorerWidget

    tl = install_tiny_tl(tmp_path)
    viewer = make_napari_viewer()
    labels = _layer(viewer, ph.lr_labels, "seg")
    widget = LatentExplorerWidget(viewer)
    widget._model.value, widget._layer.value = tl, labels
    widget._encode.clicked.emit()  # the user presses Encode: the GUI thread returns at once
    assert not widget._encode.enabled and "encoding seg" in widget._status.value
    qtbot.waitUntil(lambda: widget._encode.enabled and len(widget.sliders) > 0, timeout=30000)
    assert widget.code is not None and "encoded seg" in widget._status.value
    qtbot.waitUntil(lambda: widget.output_layer is not None and not widget.decoder.busy, timeout=30000)
    assert not [n for n in notes if n[0] == "error"], notes


def test_docked_from_the_plugins_menu_a_slider_move_updates_one_layer(make_napari_viewer, qtbot, tmp_path, ph, notes):
    """Docked as the Plugins menu docks it, the widget sees the viewer through napari's proxy
    (whose layers' class name is the proxy's): a slider move still updates the decoded layer
    instead of adding another, and the Refine widget still lists the Labels layers."""
    tl = install_tiny_tl(tmp_path)
    viewer = make_napari_viewer()
    labels = _layer(viewer, ph.lr_labels, "seg")
    _, widget = viewer.window.add_plugin_dock_widget("napari-cardiac-priors", "Latent explorer")
    widget._model.value, widget._layer.value = tl, labels
    widget._encode.clicked.emit()
    qtbot.waitUntil(lambda: widget.output_layer is not None and not widget.decoder.busy, timeout=30000)
    n_layers = len(viewer.layers)
    widget.sliders[0].value = widget.sliders[0].max
    qtbot.waitUntil(lambda: not widget.decoder.busy, timeout=30000)
    assert len(viewer.layers) == n_layers
    assert [layer.name for layer in viewer.layers].count("seg decoded (tl)") == 1
    np.testing.assert_array_equal(widget.output_layer.data, widget.explorer.decode_model_grid(widget.code).array)
    _, refine = viewer.window.add_plugin_dock_widget("napari-cardiac-priors", "Refine")
    assert "seg" in [layer.name for layer in refine._labels.choices if layer is not None]
    assert not [n for n in notes if n[0] == "error"], notes
