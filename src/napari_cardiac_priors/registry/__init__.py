"""The model library: a plain manifest of models and atlas sets, with sha256-checked safetensors.

Bundled entries live in ``registry/manifest.json`` with their files in ``registry/weights/``;
user entries live in a user directory (``$CARDIAC_PRIORS_HOME`` or the platform's user data
folder) with their own ``manifest.json`` and are added with :func:`add_model` (the
``cardiac-priors models add`` command), never by copying files by hand. Weights are
safetensors only: loading never executes code, and a file whose hash does not match its
manifest entry is refused with an error that names the model and the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..errors import InputError
from ..io._atomic import atomic_path

BUNDLED_DIR = Path(__file__).parent
MANIFEST_NAME = "manifest.json"
TASKS = ("segmentation", "landmarks", "super-resolution", "shape-prior", "disentanglement", "atlas", "test")


class RegistryError(InputError):
    """A model that is unknown, whose file is missing, or whose hash does not match."""


@dataclass(frozen=True)
class ModelEntry:
    """One manifest entry: what a model is, what it expects and where its weights are.

    ``input`` is the input contract (e.g. ``{"spacing": [sz, sy, sx], "size": [...],
    "normalisation": "percentile_1_99"}``); ``labels`` maps output channel to canonical label
    value; ``training`` records data, recipe and seed; ``license`` is the weights' licence
    (ACDC-trained weights: CC BY-NC-SA 4.0 and the ACDC citation).
    """

    name: str
    version: str
    task: str
    architecture: str
    file: str
    sha256: str
    description: str = ""
    config: dict = field(default_factory=dict)
    labels: dict = field(default_factory=dict)
    landmarks: list = field(default_factory=list)
    input: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    license: str = ""
    citation: str = ""
    extra: dict = field(default_factory=dict)
    #: folder that holds ``file`` (not stored in the manifest)
    root: str = field(default="", compare=False)

    @classmethod
    def from_dict(cls, d: dict, *, root: str | os.PathLike = "") -> "ModelEntry":
        known = {f.name for f in fields(cls)} - {"root"}
        missing = {"name", "version", "task", "architecture", "file", "sha256"} - set(d)
        if missing:
            raise RegistryError(f"manifest entry {d.get('name', '?')!r} lacks {', '.join(sorted(missing))}")
        extra = {k: v for k, v in d.items() if k not in known}
        args = {k: v for k, v in d.items() if k in known}
        if extra:
            args["extra"] = {**args.get("extra", {}), **extra}
        return cls(**args, root=str(root))

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("root")
        return d

    @property
    def path(self) -> Path:
        """The entry's file (or atlas folder); it must lie inside the folder that holds the
        manifest: a ``file`` such as ``../../elsewhere`` or an absolute path is refused."""
        return inside(Path(self.root), self.file, what=f"model {self.name!r}")


def inside(folder: Path, relative: str, *, what: str) -> Path:
    """``folder / relative`` if it resolves (links followed) inside ``folder``; else :class:`RegistryError`."""
    base = Path(folder).resolve()
    target = (base / str(relative)).resolve()
    if Path(str(relative)).is_absolute() or target == base or base not in target.parents:
        raise RegistryError(f"{what}: its file {relative!r} lies outside {folder}; refusing to use it")
    return target


_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def check_name(name, *, what: str = "model") -> str:
    """A model or atlas-set name is a word (letters, digits, ``.``, ``_``, ``-``; not starting
    with ``.`` or ``-``): never a path."""
    if not isinstance(name, str) or not _WORD.fullmatch(name) or name in (".", ".."):
        raise RegistryError(f"{what} name {name!r} must be a word of letters, digits, '.', '_' or '-' "
                            "(starting with a letter or digit), not a path")
    return name


def user_dir() -> Path:
    """The user model folder: ``$CARDIAC_PRIORS_HOME/models`` or the platform user data folder."""
    env = os.environ.get("CARDIAC_PRIORS_HOME")
    if env:
        return Path(env) / "models"
    import platformdirs

    return Path(platformdirs.user_data_dir("napari-cardiac-priors", appauthor=False)) / "models"


def _read_manifest(directory: Path) -> list[ModelEntry]:
    path = directory / MANIFEST_NAME
    if not path.is_file():
        return []
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise RegistryError(f"{path}: unreadable model manifest ({e})") from e
    return [ModelEntry.from_dict(d, root=directory) for d in doc.get("models", [])]


def _write_manifest(directory: Path, entries: list[ModelEntry]) -> None:
    doc = {"models": [e.to_dict() for e in sorted(entries, key=lambda e: e.name)]}
    with atomic_path(directory / MANIFEST_NAME) as tmp:
        tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")


def list_models(*, task: str | None = None) -> list[ModelEntry]:
    """Bundled and user models (and atlas sets), sorted by name; ``task`` filters."""
    entries = _read_manifest(BUNDLED_DIR) + _read_manifest(user_dir())
    if task is not None:
        entries = [e for e in entries if e.task == task]
    return sorted(entries, key=lambda e: e.name)


def trained_on_phantoms(entry: ModelEntry) -> bool:
    """True for a model trained on synthetic phantoms only (not meant for real scans)."""
    return str((entry.training or {}).get("data", "")).startswith("phantom")


def intended_use(entry: ModelEntry) -> str:
    """What a model is for, in a few words for a model menu: ``"real scans"``, ``"phantoms only"``,
    with ``"super-resolution, "`` before it for an SR model."""
    data = "phantoms only" if trained_on_phantoms(entry) else "real scans"
    return f"super-resolution, {data}" if entry.task == "super-resolution" else data


def runs_on_stacks(entry: ModelEntry) -> bool:
    """False for a model whose contract is one 2D slice (SDNet's U-Net baselines): it is not
    offered for a stack, and ``segment`` refuses it with a clear message."""
    return len(entry.input.get("size", (None, None, None))) != 2


def segmentation_choices() -> list[str]:
    """Names of the models that segment or enhance a stack, in the order to offer them for a
    real scan: the default model, then the other models trained on real scans, then those
    trained on phantoms, then super-resolution models."""
    from ..conventions import DEFAULT_MODEL

    entries = [e for e in list_models(task="segmentation") + list_models(task="super-resolution") if runs_on_stacks(e)]
    rank = lambda e: (e.name != DEFAULT_MODEL, e.task != "segmentation", trained_on_phantoms(e), e.name)  # noqa: E731
    return [e.name for e in sorted(entries, key=rank)]


def get_model(name: str) -> ModelEntry:
    """The manifest entry called ``name``; :class:`RegistryError` lists the known names."""
    for e in list_models():
        if e.name == name:
            return e
    known = ", ".join(e.name for e in list_models()) or "none installed"
    raise RegistryError(f"unknown model {name!r}; known models: {known}")


def sha256_of(path: str | os.PathLike) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_of_folder(folder: str | os.PathLike) -> str:
    """Hex sha256 of a folder's files (not hidden ones, not subfolders): of the lines
    ``name:sha256`` in name order, so a renamed, changed, added or removed file changes it."""
    lines = [f"{p.name}:{sha256_of(p)}" for p in sorted(Path(folder).iterdir()) if p.is_file() and not p.name.startswith(".")]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def verified_path(entry: ModelEntry | str) -> Path:
    """The weights file of ``entry`` after checking that it exists and its sha256 matches."""
    entry = get_model(entry) if isinstance(entry, str) else entry
    path = entry.path
    if entry.task == "atlas" and path.is_dir():
        if sha256_of_folder(path) != entry.sha256:
            raise RegistryError(f"atlas set {entry.name!r}: the files in {path.name} differ from the manifest (sha256 mismatch)")
        return path
    if not path.is_file():
        raise RegistryError(f"model {entry.name!r}: weights file {path} is missing")
    digest = sha256_of(path)
    if digest != entry.sha256:
        raise RegistryError(
            f"model {entry.name!r}: weights file {path.name} has sha256 {digest[:12]}..., "
            f"the manifest expects {entry.sha256[:12]}...; the file is corrupt or was replaced"
        )
    return path


def load_state_dict(entry: ModelEntry | str, *, device: str = "cpu") -> dict:
    """Tensors of a model (safetensors, hash-checked) as a ``{name: torch.Tensor}`` dict."""
    from safetensors.torch import load_file

    entry = get_model(entry) if isinstance(entry, str) else entry
    path = verified_path(entry)
    try:
        return load_file(str(path), device=str(device))
    except Exception as e:  # safetensors raises its own error types for bad headers
        raise RegistryError(f"model {entry.name!r}: cannot load {path.name} ({e})") from e


def load_arrays(entry: ModelEntry | str) -> dict:
    """Arrays of a model or atlas set (safetensors, hash-checked) as ``{name: np.ndarray}``."""
    from safetensors.numpy import load_file

    entry = get_model(entry) if isinstance(entry, str) else entry
    path = verified_path(entry)
    try:
        return load_file(str(path))
    except Exception as e:
        raise RegistryError(f"model {entry.name!r}: cannot load {path.name} ({e})") from e


def save_weights(tensors: dict, path: str | os.PathLike, *, metadata: dict | None = None) -> str:
    """Write ``{name: tensor or array}`` as safetensors atomically; returns the file's sha256."""
    import numpy as np

    path = Path(path)
    meta = {k: str(v) for k, v in (metadata or {}).items()}
    with atomic_path(path) as tmp:
        if tensors and all(isinstance(v, np.ndarray) for v in tensors.values()):
            from safetensors.numpy import save_file

            save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(tmp), metadata=meta)
        else:
            from safetensors.torch import save_file

            save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp), metadata=meta)
    return sha256_of(path)


def add_model(weights: str | os.PathLike, entry: dict, *, directory: str | os.PathLike | None = None, overwrite: bool = False) -> ModelEntry:
    """Install a safetensors file and its manifest entry into the user model folder.

    ``entry`` holds the manifest fields (``name``, ``version``, ``task``, ``architecture``,
    ...); ``file`` and ``sha256`` are set here. A name that is bundled, or already installed
    without ``overwrite``, is refused.
    """
    weights = Path(weights)
    if not weights.is_file():
        raise RegistryError(f"{weights}: no such weights file")
    if weights.suffix != ".safetensors":
        raise RegistryError(f"{weights.name}: weights must be a .safetensors file")
    name = check_name(entry.get("name"))
    if entry.get("task") not in TASKS:
        raise RegistryError(f"model {name!r}: task must be one of {', '.join(TASKS)}")
    if any(e.name == name for e in _read_manifest(BUNDLED_DIR)):
        raise RegistryError(f"model {name!r} is bundled with the package; choose another name")
    directory = Path(directory) if directory is not None else user_dir()
    directory.mkdir(parents=True, exist_ok=True)
    entries = _read_manifest(directory)
    if any(e.name == name for e in entries) and not overwrite:
        raise RegistryError(f"model {name!r} is already installed in {directory}; pass --overwrite (overwrite=True) to replace it")
    _check_safetensors(weights, name)
    declared = entry.get("sha256")
    if declared and declared != sha256_of(weights):
        raise RegistryError(f"model {name!r}: {weights.name} has sha256 {sha256_of(weights)[:12]}..., the manifest entry "
                            f"declares {str(declared)[:12]}...; the file is not the one described")
    _check_architecture(weights, entry, name)
    file = f"{name}.safetensors"
    with atomic_path(directory / file) as tmp:
        shutil.copyfile(weights, tmp)
    new = ModelEntry.from_dict({**entry, "file": file, "sha256": sha256_of(directory / file)}, root=directory)
    _write_manifest(directory, [e for e in entries if e.name != name] + [new])
    return new


def remove_model(name: str, *, directory: str | os.PathLike | None = None) -> None:
    """Remove a user model or atlas set: its file (or atlas folder) and its manifest entry.

    Only what the entry owns goes: the path must lie inside the user folder, a weights file
    must still match its sha256 and an atlas set's folder must lie under ``atlases/``;
    otherwise nothing is removed and the error says why.
    """
    directory = Path(directory) if directory is not None else user_dir()
    entries = _read_manifest(directory)
    mine = [e for e in entries if e.name == name]
    if not mine:
        raise RegistryError(f"model {name!r} is not installed in {directory}")
    e = mine[0]
    path = e.path  # refuses a path outside the folder
    if e.task == "atlas":
        if path.exists() and (not path.is_dir() or path.parent != (directory / "atlases").resolve()):
            raise RegistryError(f"atlas set {name!r}: {e.file!r} is not a folder under atlases/; refusing to remove it")
        if path.is_dir():
            shutil.rmtree(path)
    elif path.exists():
        if not path.is_file() or path.is_symlink() or sha256_of(path) != e.sha256:
            raise RegistryError(f"model {name!r}: {e.file} is not the file that was installed (sha256 differs); "
                                "refusing to remove it")
        path.unlink()
    _write_manifest(directory, [x for x in entries if x.name != name])


def _check_architecture(path: Path, entry: dict, name: str) -> None:
    """The weights must fit the declared network (checked at ``add``, not at first use)."""
    arch = entry.get("architecture")
    if entry.get("task") in ("atlas", "test") or arch in (None, "atlas-set"):
        return
    from safetensors.torch import load_file

    from ..nn import build

    try:
        net = build(arch, entry.get("config") or {})
        net.load_state_dict({k: v.float() for k, v in load_file(str(path)).items()})
    except Exception as e:  # noqa: BLE001 - unknown architecture, bad config or mismatched tensors
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise RegistryError(f"model {name!r}: {path.name} does not fit architecture {arch!r} with its config ({first})") from e


def _check_safetensors(path: Path, name: str) -> None:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            list(f.keys())
    except Exception as e:
        raise RegistryError(f"model {name!r}: {path.name} is not a valid safetensors file ({e})") from e
