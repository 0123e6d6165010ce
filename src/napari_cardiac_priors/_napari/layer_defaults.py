"""Layer choices that follow the viewer: a widget's layer combo box picks a fitting layer
without the user touching it, and keeps up as layers come and go."""

from __future__ import annotations


def follow_layers(viewer, combo, fits) -> None:
    """Keep ``combo`` (a magicgui ComboBox whose choices are viewer layers) on a fitting layer.

    Until the user picks one, it holds the selected layer when that fits (``fits(layer)``),
    else the newest fitting layer, and moves to a fitting layer when one is added. A layer the
    user picked stays until it is removed; then the default rule applies again.
    """
    state = {"auto": True, "setting": False}

    def set_value(layer):
        state["setting"] = True
        try:
            combo.value = layer
        finally:
            state["setting"] = False

    def pick(event=None):
        state["setting"] = True
        try:
            combo.reset_choices()
        finally:
            state["setting"] = False
        current = combo.value
        if current is not None and current not in viewer.layers:
            current = None
        if current is not None and not state["auto"]:
            return
        state["auto"] = True
        added = getattr(event, "value", None) if getattr(event, "type", "") == "inserted" else None
        active = viewer.layers.selection.active
        fitting = [layer for layer in viewer.layers if fits(layer)]
        if added is not None and fits(added):
            choice = added  # a new fitting layer (a loaded image, a segmentation result)
        elif active is not None and fits(active):
            choice = active
        else:
            choice = fitting[-1] if fitting else None
        if choice is not None and choice is not current:
            set_value(choice)

    def chosen(*_):
        if not state["setting"]:
            state["auto"] = combo.value is None

    combo.changed.connect(chosen)
    viewer.layers.events.inserted.connect(pick)
    viewer.layers.events.removed.connect(pick)
    pick()


def made_by_a_model(layer) -> bool:
    """Whether ``layer`` holds a model's output (a super-resolved image, a segmentation), as
    this plugin's widgets add them: not a default input for another run of the same model."""
    return "model" in (layer.metadata.get("volume_metadata") or {})
