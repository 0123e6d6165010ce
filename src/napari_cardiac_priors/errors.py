"""Exceptions the package raises for bad input (the CLI and widgets show their message), and
:func:`note`, how a function reports a finding the user should see."""

from __future__ import annotations

import warnings


def note(message: str, notes: list | None, *, stacklevel: int = 2) -> None:
    """Report a finding (a missing landmark, an empty segmentation): appended to ``notes`` when
    the caller collects them (the workflows: their results carry the notes, no warnings on a
    thread worker), else a ``UserWarning`` for a direct library call. ``stacklevel`` as for
    :func:`warnings.warn`, counted from the caller of ``note``."""
    if notes is None:
        warnings.warn(message, stacklevel=stacklevel + 1)
    else:
        notes.append(message)


class InputError(ValueError):
    """Bad user input: a file that cannot be read, an array of the wrong shape, bad geometry.

    The message is one line meant for the user; the CLI prints it and exits non-zero, the
    widgets show it as a napari notification.
    """
