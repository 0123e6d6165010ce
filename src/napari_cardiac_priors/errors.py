"""Exceptions the package raises for bad input (the CLI and widgets show their message)."""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input: a file that cannot be read, an array of the wrong shape, bad geometry.

    The message is one line meant for the user; the CLI prints it and exits non-zero, the
    widgets show it as a napari notification.
    """
