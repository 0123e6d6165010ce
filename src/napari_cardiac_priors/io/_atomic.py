"""Atomic file writing: a temporary file beside the target, renamed over it when complete."""

from __future__ import annotations

import contextlib
import os
import re
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


#: The mark of this package's temporary files: ``.NAME.XXXXXXXX.cardiac-priors-part[.SUFFIX]``.
TEMP_MARK = ".cardiac-priors-part"
_TEMP_NAME = re.compile(r"\..+\.[a-z0-9_]{8}" + re.escape(TEMP_MARK) + r"(\.[A-Za-z0-9.]+)?")


def is_own_temporary(path: str | os.PathLike) -> bool:
    """True for a temporary file that :func:`atomic_path` makes (nothing a user would name so)."""
    return bool(_TEMP_NAME.fullmatch(Path(path).name))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path with the same suffix; on success rename it to ``path``.

    On any error the temporary file is removed and ``path`` is left as it was, so a crash
    never leaves a half-written file under the final name. A ``path`` that is a link to a
    regular file is written through (the link stays, its target gets the new content); a
    ``path`` that exists and is not a regular file (a device, a pipe, a folder) is refused.
    """
    from ..errors import InputError

    path = Path(path)
    if path.is_symlink() or path.exists():
        target = path.resolve()
        if not target.is_file():
            raise InputError(f"{path} exists and is not a regular file; refusing to replace it")
        path = target
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f"{TEMP_MARK}{full_suffix(path)}", dir=path.parent)
    except OSError as e:  # name the file the user asked for, not the temporary one
        raise InputError(f"cannot write {path} ({e.strerror or e})") from e
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
