"""Atomic file writing: a temporary file beside the target, renamed over it when complete."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def full_suffix(path: str | os.PathLike) -> str:
    """``.nii.gz`` for ``a.nii.gz``, ``.json`` for ``a.json`` (lower case)."""
    name = Path(path).name.lower()
    for double in (".nii.gz", ".tar.gz"):
        if name.endswith(double):
            return double
    return Path(name).suffix


def stem(path: str | os.PathLike) -> str:
    """File name without its (double) suffix: ``patient001_frame01`` for ``.../patient001_frame01.nii.gz``."""
    name = Path(path).name
    suffix = full_suffix(path)
    return name[: len(name) - len(suffix)] if suffix else name


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path with the same suffix; on success rename it to ``path``.

    On any error the temporary file is removed and ``path`` is left as it was, so a crash
    never leaves a half-written file under the final name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".part{full_suffix(path)}", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
