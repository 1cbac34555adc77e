"""A model on disk: a folder with weights in safetensors and everything else in JSON. No pickle, ever.

MODEL/zoolens.json        classes, backbone, preprocessing, training configuration, metrics, version
MODEL/model.safetensors   the network's weights
MODEL/split.csv           which photo was train / val / test (when trained by zoolens)

Saving over an existing model replaces only the entries zoolens writes (OWNED); a user's own files beside
them stay as they are.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from safetensors import SafetensorError

from zoolens import files
from zoolens.errors import ZoolensError, setting
from zoolens.files import pid_alive, read_limited
from zoolens.inference import model_schema
from zoolens.inference.model_schema import MAX_META_BYTES
from zoolens.models.open_set import OPEN_SET_FILE

if TYPE_CHECKING:  # torch is loaded only where weights are read or written as tensors: answering needs none
    import torch

FORMAT = "zoolens-model"
FORMAT_VERSION = 1
META_FILE = "zoolens.json"
WEIGHTS_FILE = "model.safetensors"


# Every entry zoolens writes into a model folder (Model.save, then train()'s evaluation/). Replacing a model
# replaces these and nothing else: whatever else the folder holds (a user's notes) is never touched.
OWNED = (META_FILE, WEIGHTS_FILE, OPEN_SET_FILE, "split.csv", "history.csv", "training_curves.png", "evaluation")


def _staging_prefix(path: Path) -> str:
    return f".{path.name}.partial-"


def _staging_folders(path: Path) -> list[Path]:
    """What saves of `path` left beside it (or inside it, for a mount point): the pid ends the name."""
    found = []
    for folder, prefix in ((path.parent, _staging_prefix(path)), (path, ".zoolens-save-")):
        try:
            found += [p for p in folder.iterdir()
                      if p.name.startswith(prefix) and p.name[len(prefix):].isdigit() and p.is_dir()]
        except OSError:
            pass
    return found


def _interrupted_save(path: Path) -> bool:
    """Whether a save into `path` was killed after it took the old zoolens.json away (`old/` beside it)."""
    return any((staging / "old" / META_FILE).exists() for staging in _staging_folders(path))


def check_model_target(path: Path) -> None:
    """Refuse a `path` a model must not be saved to: a file, or a folder with other things and no model.
    Absent, empty, a zoolens model (zoolens.json), or one whose replacement was killed mid-way, are fine."""
    path = Path(path)
    if os.path.lexists(path) and not path.exists():
        raise ZoolensError(f"{path}: is a broken link; choose another {setting('out')}")
    if not path.exists():
        return
    if not path.is_dir():
        raise ZoolensError(f"{path}: is a file, not a model folder; choose another {setting('out')}")
    try:
        empty = not any(path.iterdir())
    except OSError as error:
        raise ZoolensError(f"{path}: cannot be read ({error.strerror or error})") from None
    if not (empty or (path / META_FILE).exists() or _interrupted_save(path)):
        raise ZoolensError(f"{path}: exists and is not a zoolens model; choose another {setting('out')}")


def _save_weights(state: dict, path: Path) -> None:
    """PyTorch tensors, or NumPy arrays (a model trained without PyTorch): the same names, types and bytes."""
    if all(isinstance(value, np.ndarray) for value in state.values()):
        from safetensors.numpy import save_file

        tensors = {k: np.ascontiguousarray(v) for k, v in state.items()}
    else:
        from safetensors.torch import save_file

        tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    save_file(tensors, str(path), metadata={"format": FORMAT})


def write_bundle(path: Path, state: dict, meta: dict, extra_files: dict[str, Path] | None = None,
                 check: Callable[[Path], None] | None = None):
    """Write the new model's files to a temporary folder beside `path`; then, for a new folder, rename it into
    place; for an existing model, move only zoolens's own entries (OWNED) out and the new ones in, zoolens.json
    last: no half-written bundle is ever left, and everything else in the folder is kept as it is. `check`, given
    the written folder before anything in `path` is touched, raises ZoolensError to keep it from being published."""
    path = Path(path)
    check_model_target(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        beside = not path.exists() or os.stat(path).st_dev == os.stat(path.parent).st_dev
        # A model folder that is a mount point of its own: stage inside it, where renames stay atomic.
        staging = (path.parent / f"{_staging_prefix(path)}{os.getpid()}" if beside
                   else path / f".zoolens-save-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        new = staging / "new"
        new.mkdir(parents=True)
    except OSError as error:
        raise ZoolensError(f"{path}: cannot be written ({error.strerror or error})") from None
    try:
        _save_weights(state, new / WEIGHTS_FILE)
        (new / META_FILE).write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
        for name, source in (extra_files or {}).items():
            if Path(name).name != name or name in ("", ".", "..") or name.startswith(".zoolens-save-"):
                raise ZoolensError(f"{name!r}: a model file's name must be a plain file name")
            if Path(source).is_dir():
                shutil.copytree(source, new / name)
            elif Path(source).exists():
                shutil.copyfile(source, new / name)
        if check is not None:
            check(new)
    except (OSError, SafetensorError, ZoolensError) as error:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(error, ZoolensError):
            raise
        raise ZoolensError(f"{path}: the new model could not be written ({getattr(error, 'strerror', None) or error})"
                           ) from None
    try:
        if not path.exists():
            new.replace(path)
        else:
            _replace_in_place(path, new, staging / "old", owned={*OWNED, *(extra_files or {})})
    except OSError as error:
        raise ZoolensError(f"{path}: the new model could not be moved into place ({error.strerror or error}); "
                           f"its files are in {new}") from None
    shutil.rmtree(staging, ignore_errors=True)
    for left in _staging_folders(path):  # killed saves' leftovers, the old files they had moved out
        if not pid_alive(int(left.name.rpartition("-")[2])):
            shutil.rmtree(left, ignore_errors=True)


def _replace_in_place(path: Path, new: Path, old: Path, owned: set[str]) -> None:
    """First the old zoolens.json goes (so the folder never passes for a model half-way), then the old model's
    other files, then the new ones come in, zoolens.json last. Nothing outside `owned` is moved."""
    old.mkdir()
    leaving = [name for name in (META_FILE, *sorted(owned - {META_FILE})) if os.path.lexists(path / name)]
    for name in leaving:
        os.replace(path / name, old / name)
    for name in sorted(os.listdir(new), key=lambda name: name == META_FILE):
        os.replace(new / name, path / name)


def remove_model(path: Path) -> None:
    """Delete the model zoolens wrote in `path` (its OWNED entries), then the folder if that left it empty: a
    user's own files beside the model stay, and so does the folder holding them."""
    path = Path(path)
    if not (path / META_FILE).is_file() or path.is_symlink():
        return
    for name in OWNED:  # zoolens.json first: the folder never passes for a model half-removed
        entry = path / name
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        elif os.path.lexists(entry):
            entry.unlink()
    try:
        path.rmdir()
    except OSError:  # not empty: the user's files
        pass


def move_model(source: Path, target: Path) -> None:
    """Move the model in `source` to `target`: zoolens's own entries only (a user's files stay in `source`, which
    goes when that empties it); a model already in `target` has only its zoolens entries replaced, as a save does
    (and `target` is refused like a save's)."""
    source, target = Path(source), Path(target)
    check_model_target(target)
    staging = target.parent / f"{_staging_prefix(target)}{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "new").mkdir(parents=True)
    for name in OWNED:
        if os.path.lexists(source / name):
            os.replace(source / name, staging / "new" / name)
    if not target.exists():
        (staging / "new").replace(target)
    else:
        _replace_in_place(target, staging / "new", staging / "old", owned=set(OWNED))
    shutil.rmtree(staging, ignore_errors=True)
    try:
        source.rmdir()  # only when nothing of the user's is left in it
    except OSError:
        pass


def read_meta(path: Path) -> dict:
    """zoolens.json, parsed and validated whole against model_schema before anything is built from it."""
    path = Path(path)
    meta_path = path / META_FILE
    if not path.is_dir():
        raise ZoolensError(f"{path}: no such model folder")
    try:
        meta = json.loads(read_limited(meta_path, MAX_META_BYTES).decode("utf-8"))
    except FileNotFoundError:
        if os.path.lexists(meta_path):
            raise ZoolensError(f"{meta_path}: broken symbolic link (its target does not exist)") from None
        if _interrupted_save(path):
            raise ZoolensError(f"{path}: saving a new model here was interrupted; train it again "
                               f"(the old model's files are in {_staging_folders(path)[0]}/old)") from None
        raise ZoolensError(f"{path}: not a zoolens model (no {META_FILE})") from None
    except RecursionError:
        raise ZoolensError(f"{meta_path}: unreadable model description (nested too deeply)") from None
    except (ValueError, UnicodeDecodeError, OSError) as error:
        reason = getattr(error, "strerror", None) or " ".join(str(error).split())
        raise ZoolensError(f"{meta_path}: unreadable model description ({reason})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ZoolensError(f"{meta_path}: not a zoolens model description")
    version = meta.get("format_version", 0)
    if (isinstance(version, (int, float)) and not isinstance(version, bool) and math.isfinite(version)
            and version > FORMAT_VERSION):
        raise ZoolensError(f"{meta_path}: made by a newer zoolens (format {version}); upgrade zoolens")
    wrong = model_schema.problem(meta)
    if wrong is not None:
        raise ZoolensError(f"{meta_path}: {wrong}")
    return meta


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return _read_safetensors(path, load_file)


def non_finite_weights(path: Path) -> list[str]:
    """The names of model.safetensors's tensors holding NaN or infinite values (read with NumPy)."""
    return [name for name, array in read_weights_numpy(path).items()
            if array.dtype.kind in "fc" and not np.isfinite(array).all()]


def read_weights_numpy(path: Path) -> dict[str, np.ndarray]:
    """model.safetensors as NumPy arrays: what answering needs, without PyTorch."""
    from safetensors.numpy import load_file

    return _read_safetensors(path, load_file)


def _read_safetensors(path: Path, load_file):
    weights = Path(path) / WEIGHTS_FILE
    try:
        files.regular_file(weights)
        return load_file(str(weights))
    except FileNotFoundError:
        if os.path.lexists(weights):
            raise ZoolensError(f"{weights}: broken symbolic link (its target does not exist)") from None
        raise ZoolensError(f"{weights}: missing") from None
    except (SafetensorError, OSError, ValueError) as error:
        raise ZoolensError(f"{weights}: damaged or not a safetensors file ({error})") from None
