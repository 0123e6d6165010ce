"""``batch`` and ``classify``: cohorts."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from ..errors import InputError
from .parser import EXIT_FAILURE


def _classify(args) -> int:
    import numpy as np

    from ..classify import PCAFeatures, cross_validate, fit_predict, read_shapes, restrict, tl_features
    from ..io import atomic_path

    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise InputError(f"{out} exists; pass --overwrite to replace it")
    if args.repeats < 1:
        raise InputError(f"--repeats must be at least 1, got {args.repeats}")
    phases = ("ed", "es") if args.phases == "ed+es" else ("ed",)
    train = read_shapes(args.train, phases=phases, shape_model=args.shape_model, seg_model=args.model)
    if args.groups:
        train = restrict(train, [g.strip() for g in args.groups.split(",")])
    if any(g is None for g in train.groups):
        raise InputError(f"{args.train}: every training patient needs a Group in its Info.cfg")
    if min(train.groups.count(g) for g in set(train.groups)) < 10:
        raise InputError("10-fold cross-validation needs at least 10 training patients per group")
    if args.features == "tl":
        x = tl_features(train, shape_model=args.shape_model)
    else:
        pca = PCAFeatures(n_components=int(x_dim(args.shape_model)))
        x = pca.fit_transform(train)
    cv = cross_validate(x, train.groups, repeats=args.repeats)
    spread = f" ± {100 * np.std(cv['accuracies']):.1f} over {args.repeats} splits" if args.repeats > 1 else ""
    print(f"{args.features} features, {'+'.join(p.upper() for p in phases)}: 10-fold CV accuracy "
          f"{100 * cv['accuracy']:.1f} %{spread} on {cv['n']} training patients ({', '.join(sorted(set(train.groups)))})")
    result = {"features": args.features, "phases": list(phases), "shape_model": args.shape_model, "cross_validation": cv}
    if args.test:
        test = read_shapes(args.test, phases=phases, shape_model=args.shape_model, seg_model=args.model)
        xt = tl_features(test, shape_model=args.shape_model) if args.features == "tl" else pca.transform(test)
        result = dict(zip(test.ids, fit_predict(x, train.groups, xt)))
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


def x_dim(shape_model: str) -> int:
    """The code size of a T-L model (the PCA baseline gets as many components)."""
    from .. import registry

    return int(registry.get_model(shape_model).config.get("code_size", 64))


def _batch(args) -> int:
    from ..cohort import BatchOptions, read_cohort, run_batch
    from ..inference import resolve_device

    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers must be at least 1, got {args.workers}")
    if args.n_atlases < 1:
        raise InputError(f"--n-atlases must be at least 1, got {args.n_atlases}")
    if not args.verbose:  # the dask cluster's own INFO lines would bury the progress bar
        for handler in logging.getLogger().handlers:
            handler.addFilter(lambda r: not r.name.startswith(("distributed", "bokeh", "tornado")) or r.levelno >= logging.ERROR)
    subjects = read_cohort(args.cohort)
    options = BatchOptions(model=args.model, refine=args.refine, atlases=args.atlases, n_atlases=args.n_atlases,
                           device=resolve_device(args.device), shape_model=args.shape_model)
    bar = _ProgressBar(len(subjects))
    where = f"the scheduler at {args.scheduler}" if args.scheduler else "a local dask cluster"
    print(f"{len(subjects)} subject(s): connecting to {where} (the first results follow once models are loaded)...",
          file=sys.stderr, flush=True)

    def progress(event):
        if event["event"] == "start":
            print(f"{event['total']} subject(s); dask dashboard: {event['dashboard'] or '-'}", file=sys.stderr, flush=True)
        else:
            bar.update(event)

    summary = run_batch(subjects, args.out, options, scheduler=args.scheduler, workers=args.workers, progress=progress)
    bar.close()
    print(f"{summary.done} done, {summary.skipped} skipped (unchanged), {summary.failed} failed in {summary.seconds:.0f} s; "
          f"{summary.paths['measures']}, report {summary.paths['report']}")
    return EXIT_FAILURE if summary.failed else 0


class _ProgressBar:
    """Subjects done, on stderr: a tqdm bar on a terminal; in a log, one line per tenth of the
    cohort and one per failed subject."""

    def __init__(self, total: int):
        import time

        from tqdm import tqdm

        self.total, self.failed, self.t0, self._decile = total, 0, time.monotonic(), -1
        self.bar = tqdm(total=total, unit="subject", file=sys.stderr, dynamic_ncols=True) if sys.stderr.isatty() else None

    def update(self, event) -> None:
        import time

        failed = event["status"] == "failed"
        self.failed += failed
        why = f"{event['subject']}: {event['error']}" if failed else ""
        if self.bar is not None:
            self.bar.update(event["done"] - self.bar.n)
            self.bar.set_postfix(failed=self.failed)
            if failed:
                self.bar.write(f"failed: {why}", file=sys.stderr)
            return
        decile = event["done"] * 10 // max(self.total, 1)
        if decile != self._decile or failed:
            self._decile = decile
            rate = event["done"] / max(time.monotonic() - self.t0, 1e-9) * 60
            print(f"{event['done']}/{self.total} subjects, {self.failed} failed, {rate:.1f}/min"
                  + (f" ({why})" if failed else ""), file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


COMMANDS = {"batch": _batch, "classify": _classify}
