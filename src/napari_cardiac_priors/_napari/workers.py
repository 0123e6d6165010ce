"""Slow work off the GUI thread: one way for every widget to run it in a napari thread worker.

:func:`start_worker` runs a function or a generator (that yields progress) in a thread, disables
the widget's button while it runs, hands the return value to a callback on the GUI thread and
turns an exception into one error notification. Exceptions are caught in the worker and
returned as :class:`Failed`: napari 0.9's task-status hook on ``errored`` takes the wrong
number of arguments and would raise in the event loop, and superqt re-raises an exception
that is returned bare.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass

from ..errors import InputError


class Cancelled(Exception):
    """Raised inside a worker's job when the user pressed Cancel."""


@dataclass(frozen=True)
class Failed:
    """What a guarded job returns instead of raising."""

    error: BaseException


def guarded(func):
    """``func`` (a function or a generator function) with every exception returned as :class:`Failed`."""
    if inspect.isgeneratorfunction(func):
        @functools.wraps(func)
        def generator(*args, **kwargs):
            try:
                return (yield from func(*args, **kwargs))
            except Exception as e:  # noqa: BLE001 - reported on the GUI thread
                return Failed(e)
        return generator

    @functools.wraps(func)
    def function(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - reported on the GUI thread
            return Failed(e)
    return function


def error_message(error: BaseException, what: str) -> str:
    """The notification for ``error``: the message alone for bad input, else ``what`` failed and why."""
    if isinstance(error, (InputError, ValueError)):
        return str(error)
    return f"{what} failed: {type(error).__name__}: {error}"


def start_worker(func, *args, what: str, on_result, on_progress=None, button=None, cancel=None, status=None):
    """Run ``func(*args)`` in a napari thread worker; returns the started worker.

    ``func`` runs off the GUI thread and must not touch layers or widgets. A generator function
    yields progress items (to ``on_progress``) and can be stopped between them with
    ``worker.quit()``. On the GUI thread: ``on_result(value)`` gets the return value; an
    exception becomes one error notification (``what`` names the task: "segmentation") and
    ``status.value = "failed"``, :class:`Cancelled` or ``quit()`` only ``"cancelled"``.
    ``button`` is disabled and ``cancel`` enabled while the worker runs.
    """
    from napari.qt.threading import create_worker

    def returned(value):
        if not isinstance(value, Failed):
            on_result(value)
            return
        cancelled = isinstance(value.error, Cancelled)
        if status is not None:
            status.value = "cancelled" if cancelled else "failed"
        if not cancelled:
            from napari.utils.notifications import show_error

            show_error(error_message(value.error, what))

    def finished():
        if button is not None:
            button.enabled = True
        if cancel is not None:
            cancel.enabled = False

    worker = create_worker(guarded(func), *args)
    worker.returned.connect(returned)
    worker.finished.connect(finished)
    if on_progress is not None:
        worker.yielded.connect(on_progress)
    if status is not None and hasattr(worker, "aborted"):
        worker.aborted.connect(lambda: setattr(status, "value", "cancelled"))
    if button is not None:
        button.enabled = False
    if cancel is not None:
        cancel.enabled = True
    worker.start()
    return worker
