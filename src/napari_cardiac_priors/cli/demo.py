"""``demo``: napari with the plugin and sample data, or the headless pipeline."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def _has_display() -> bool:
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def _demo_folder() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("napari-cardiac-priors")) / "demo"


def _demo(args) -> int:
    from ..demo import run_headless

    if args.headless or not _has_display():
        if not args.headless:
            print("no display found: running the headless demo", file=sys.stderr)
        out = Path(args.out) if args.out else _demo_folder()
        summary = run_headless(out)
        print(summary)
        print(f"outputs in {out}")
        return 0
    from .._napari.demo import run_viewer  # the one place where the CLI reaches the GUI

    run_viewer()
    return 0


COMMANDS = {"demo": _demo}
