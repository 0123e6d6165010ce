"""Docks that scroll instead of growing the window.

magicgui's ``Container(scrollable=True)`` keeps its scroll area outside ``native``, and napari
docks ``native``: the scroll area never reaches the dock. :func:`scrolling_body` puts a
widget's rows in a scrollable body that is in the dock.
"""

from __future__ import annotations


def scrolling_body(container, widgets, *, min_height: int = 120):
    """Add ``widgets`` to ``container`` inside a vertically scrolling, labelled body; returns the
    body (a magicgui Container). The dock's minimum height becomes ``min_height`` pixels."""
    from magicgui.widgets import Container

    body = Container(labels=True, scrollable=True)
    body.extend(widgets)
    scroll = body.root_native_widget
    scroll.setMinimumHeight(min_height)
    container.native.layout().addWidget(scroll)
    container.margins = (0, 0, 0, 0)
    return body
