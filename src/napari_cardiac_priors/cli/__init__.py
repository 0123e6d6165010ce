"""The ``cardiac-priors`` command.

Every command exits 0 on success; bad input gives one line on stderr and exit status 2;
an unexpected failure gives one line and status 1. Outputs are written atomically.

One module per group of commands: :mod:`.parser` (arguments, exit statuses), :mod:`.subject`
(segment, enhance, latent, refine, measure, evaluate), :mod:`.cohort` (batch, classify),
:mod:`.library` (models, atlases, train, phantom) and :mod:`.demo`. They parse and print; the
work is in the workflows and services they call.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings

from ..errors import InputError
from .library import format_progress
from .parser import EXIT_BAD_INPUT, EXIT_FAILURE, build_parser

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILURE", "build_parser", "format_progress", "main"]


def main(argv=None) -> int:
    """Entry point of the ``cardiac-priors`` console script."""
    try:
        args = build_parser().parse_args(argv)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except SystemExit as e:  # --help / --version
        return int(e.code or 0)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    shown = warnings.showwarning
    warnings.showwarning = _warning_printer(args.command)
    try:
        return _run(args)
    finally:
        warnings.showwarning = shown


def _run(args) -> int:
    from . import cohort, demo, library, subject

    handler = {**library.COMMANDS, **subject.COMMANDS, **cohort.COMMANDS, **demo.COMMANDS}[args.command]
    try:
        return int(handler(args) or 0)
    except (InputError, OSError) as e:  # bad input or a file system refusal: the user's to fix
        print(f"cardiac-priors {args.command}: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"cardiac-priors {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # one line, not a traceback; -v shows it
        if args.verbose:
            logging.exception("unexpected failure")
        print(f"cardiac-priors {args.command}: failed: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_FAILURE


def _warning_printer(command: str):
    """A ``warnings.showwarning``: warnings that reach the top (not collected by a command as
    notes of its own) print as one line each, this package's as a note, a library's (nibabel,
    ITK, torch) only with -v."""

    def show(message, category, filename, lineno, file=None, line=None):
        text = " ".join(str(message).split())
        if "napari_cardiac_priors" in str(filename).replace(os.sep, "/").replace("-", "_"):
            print(f"cardiac-priors {command}: note: {text}", file=sys.stderr)
        else:
            logging.getLogger("cardiac_priors.libraries").info("%s: %s", category.__name__, text)

    return show

