"""Developer tool: bundle a finished training run into the package's model library.

``python -m napari_cardiac_priors.registry.bundle training_runs/sslln-acdc`` copies the run's
``model.safetensors`` to ``registry/weights/NAME.safetensors`` and puts its
``manifest_entry.json`` (with the file's sha256) into ``registry/manifest.json``.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from . import BUNDLED_DIR, MANIFEST_NAME, ModelEntry, _read_manifest, _write_manifest, sha256_of
from ..io._atomic import atomic_path


def bundle(run_dir, *, extra: dict | None = None) -> ModelEntry:
    run = Path(run_dir)
    doc = json.loads((run / "manifest_entry.json").read_text(encoding="utf-8"))
    doc.update(extra or {})
    target = BUNDLED_DIR / "weights" / f"{doc['name']}.safetensors"
    with atomic_path(target) as tmp:
        shutil.copyfile(run / "model.safetensors", tmp)
    doc["file"] = f"weights/{target.name}"
    doc["sha256"] = sha256_of(target)
    entry = ModelEntry.from_dict(doc, root=BUNDLED_DIR)
    entries = [e for e in _read_manifest(BUNDLED_DIR) if e.name != entry.name] + [entry]
    _write_manifest(BUNDLED_DIR, entries)
    return entry


if __name__ == "__main__":  # pragma: no cover
    for arg in sys.argv[1:]:
        e = bundle(arg)
        sys.stdout.write(f"bundled {e.name} ({e.path}) into {BUNDLED_DIR / MANIFEST_NAME}\n")
