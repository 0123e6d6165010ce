"""Live decoding for the latent sliders: the newest request wins (:class:`LatestDecoder`)."""

from __future__ import annotations

from .workers import Failed, guarded

_SUPERSEDED = object()  # a decode skipped because a newer request waited after its preview


class LatestDecoder:
    """Decode in a thread worker; while one decode runs, only the newest request waits.

    ``request(code, hint)`` never blocks. ``on_result(output, code, error)`` runs in the GUI
    thread with every decode that completes, so that the output follows a dragged slider; the
    last one is always the newest request's. A request that finds the decoder idle starts at
    once (an isolated slider move waits for nothing); the requests of the next ``debounce_ms``
    and those made while a decode runs are grouped, and only the newest of them is decoded
    when both are over. With ``preview``, a request whose ``hint`` is not None first computes
    ``preview(code, hint)`` (say, the slice on screen, or a coarse volume) and hands it to
    ``on_preview(part, code, hint)``; if a newer request waits by then, its full decode is
    skipped (while a slider is dragged, previews follow it; the value it rests on is decoded
    in full).
    """

    def __init__(self, decode, on_result, *, preview=None, on_preview=None, debounce_ms: int = 15, parent=None):
        from qtpy.QtCore import QTimer

        self._decode, self._on_result = decode, on_result
        self._preview, self._on_preview = preview, on_preview
        self._pending = None
        self._running = False
        self._timer = QTimer(parent)  # owned by the widget: deleted with it, never after the QApplication
        self._timer.setSingleShot(True)
        self._timer.setInterval(debounce_ms)
        self._timer.timeout.connect(self._start)
        self.worker = None
        self.completed = 0
        self._code = None  # the code being decoded

    def request(self, code, hint=None) -> None:
        self._pending = (code, hint)
        if not self._running and not self._timer.isActive():
            self._start()  # leading edge
            self._timer.start()

    def close(self) -> None:
        """Stop the timer and drop a waiting request (a running decode finishes unseen)."""
        self._timer.stop()
        self._pending = None
        self._on_result = self._on_preview = lambda *args: None

    @property
    def waiting(self) -> bool:
        """A newer request waits: the result being shown is about to be followed by another."""
        return self._pending is not None

    @property
    def busy(self) -> bool:
        return self._running or self._pending is not None or self._timer.isActive()

    def _start(self) -> None:
        from napari.qt.threading import create_worker

        if self._running or self._pending is None:
            return
        (code, hint), self._pending = self._pending, None
        self._running, self._code = True, code
        preview = self._preview if hint is not None else None

        def work():
            if preview is not None:
                yield preview(code, hint), code, hint
                if self._pending is not None:  # overtaken: the newer request decodes instead
                    return _SUPERSEDED
            return self._decode(code)

        worker = create_worker(guarded(work))
        worker.yielded.connect(self._preview_done)
        worker.returned.connect(self._done)
        self.worker = worker
        worker.start()

    def _preview_done(self, out) -> None:
        self._on_preview(*out)

    def _done(self, out) -> None:
        self._running = False
        self.completed += 1
        failed = isinstance(out, Failed)
        if out is not _SUPERSEDED and (self._pending is None or not failed):  # a stale failure is not news
            self._on_result(None if failed else out, self._code, out.error if failed else None)
        if self._pending is not None and not self._timer.isActive():  # else the timer starts the newest request
            self._start()
