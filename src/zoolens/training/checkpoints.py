"""Resumable training without pickle: after every epoch, `<out>.partial/` holds the network and optimizer
in safetensors and everything else (phase, epoch, history, best so far, early stopping) in JSON.
Its marker file (MARKER_FILE) makes it recognisably zoolens's: a folder of that name without it is refused.

`progress.json` is the commit point: it is replaced atomically after the epoch's tensors file is
complete, and names that file, so a kill at any moment leaves the previous epoch's state readable.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError

from zoolens.errors import ZoolensError, setting
from zoolens.files import replaced_atomically

PROGRESS_FILE = "progress.json"
# Written into `<out>.partial/` as it is made: zoolens removes or reuses only a folder that holds it, never
# a user's own folder that happens to have that name.
log = logging.getLogger(__name__)

MARKER_FILE = "zoolens-checkpoint.json"
MARKER_FORMAT = "zoolens-training-checkpoint"


def checkpoint_folder(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(f"{out.name}.partial")


def is_ours(folder: Path) -> bool:
    """Whether `folder` is a checkpoint folder zoolens made (a real folder holding its marker)."""
    marker = Path(folder) / MARKER_FILE
    if Path(folder).is_symlink() or not marker.is_file():
        return False
    try:
        return json.loads(marker.read_text(encoding="utf-8")).get("format") == MARKER_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def check_checkpoint_folder(out: str | Path) -> None:
    """Refuse to go on when `<out>.partial` exists and is not zoolens's own: it is never removed nor reused."""
    folder = checkpoint_folder(out)
    if os.path.lexists(folder) and not is_ours(folder):
        raise ZoolensError(f"{folder}: exists and is not a zoolens checkpoint (no {MARKER_FILE}); zoolens keeps "
                           f"its per-epoch checkpoints there: move it away or choose another {setting('out')}")


def _make_folder(folder: Path) -> None:
    """The checkpoint folder, made with its marker already inside (under a temporary name, then renamed): a kill
    never leaves a `<out>.partial` without one."""
    temporary = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    (temporary / MARKER_FILE).write_text(json.dumps({"format": MARKER_FORMAT, "pid": os.getpid()}) + "\n",
                                         encoding="utf-8")
    temporary.rename(folder)


# Tensors are NumPy arrays (a head trained by models/dense_head) or PyTorch tensors (a network on a FabricDevice): each
# phase's checkpoint holds one kind, written and read back with safetensors' own functions for it.
Tensor = Any


def _is_tensor(value) -> bool:
    return isinstance(value, np.ndarray) or hasattr(value, "detach")


def _plain(value: Tensor) -> Tensor:
    if isinstance(value, np.ndarray):
        return np.ascontiguousarray(value).copy()
    return value.detach().cpu().contiguous().clone()


def _plain_tensors(state: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    return {f"{prefix}{k}": _plain(v) for k, v in state.items()}


def strip_prefix(tensors: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def flatten_optimizer_state(state_dict: dict) -> tuple[dict[str, Tensor], dict]:
    """An optimizer's state_dict as safetensors-ready tensors (`optimizer.<param>.<key>`) plus JSON-ready rest."""
    tensors, plain = {}, {"param_groups": state_dict["param_groups"], "state": {}}
    for index, entries in state_dict["state"].items():
        for key, value in entries.items():
            if _is_tensor(value):
                tensors[f"optimizer.{index}.{key}"] = _plain(value)
            else:
                plain["state"].setdefault(str(index), {})[key] = value
    return tensors, plain


def unflatten_optimizer_state(tensors: dict[str, Tensor], plain: dict) -> dict:
    state: dict[int, dict] = {int(i): dict(entries) for i, entries in plain["state"].items()}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            index, key = name[len("optimizer."):].split(".", 1)
            state.setdefault(int(index), {})[key] = value
    return {"state": state, "param_groups": plain["param_groups"]}


class TrainingCheckpoints:
    """The `<out>.partial/` folder of one training run: what each phase had done when last saved."""

    def __init__(self, folder: Path, fingerprint: dict):
        self.folder = Path(folder)
        self.fingerprint = fingerprint  # the options and data that must match for a resume to make sense
        self.phases: dict[str, dict] = {}
        self.restored: list[dict] = []  # the history rows of the epochs read back from disk, in the order trained
        self.writer = True  # False in the other processes of a multi-process run: one process writes

    @classmethod
    def start(cls, out: str | Path, fingerprint: dict, resume: bool) -> tuple[TrainingCheckpoints, str]:
        """The run's checkpoints, resumed from disk when asked and possible; with a line saying what happened."""
        checkpoints = cls(checkpoint_folder(out), fingerprint)
        check_checkpoint_folder(out)
        if resume and (checkpoints.folder / PROGRESS_FILE).exists():
            checkpoints._read()
            checkpoints._drop_unnamed_tensors()
            done = ", ".join(f"{p} epoch {s['epoch']}{' (finished)' if s['finished'] else ''}"
                             for p, s in checkpoints.phases.items())
            return checkpoints, f"resuming from {checkpoints.folder} ({done or 'nothing trained yet'})"
        try:
            if os.path.lexists(checkpoints.folder):  # zoolens's own (checked above): an earlier run's
                shutil.rmtree(checkpoints.folder)
            _make_folder(checkpoints.folder)
        except OSError as error:
            raise ZoolensError(f"{checkpoints.folder}: cannot be made ({error.strerror or error})") from None
        checkpoints._write_progress()
        note = f"no checkpoint at {checkpoints.folder}; starting from the beginning" if resume else ""
        return checkpoints, note

    @classmethod
    def follow(cls, out: str | Path, fingerprint: dict) -> TrainingCheckpoints:
        """What another process of this run started or resumed from, to read and never write."""
        checkpoints = cls(checkpoint_folder(out), fingerprint)
        checkpoints.writer = False
        checkpoints._read()
        return checkpoints

    def _read(self) -> None:
        path = self.folder / PROGRESS_FILE
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            phases = saved["phases"]
            fingerprint = saved["fingerprint"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ZoolensError(f"{path}: unreadable checkpoint ({error}); delete {self.folder} to start over") from None
        if fingerprint != json.loads(json.dumps(self.fingerprint)):
            changed = sorted(k for k in set(fingerprint) | set(self.fingerprint)
                             if fingerprint.get(k) != json.loads(json.dumps(self.fingerprint.get(k))))
            raise ZoolensError(f"{self.folder}: was made with different options ({', '.join(changed)}); "
                               f"run with the same options, or without {setting('resume')} to start over")
        self.phases = phases
        self.restored = [row for state in phases.values() for row in state.get("history", [])]

    def _drop_unnamed_tensors(self) -> None:
        """Tensor files progress.json does not name: an epoch's predecessor, when a kill came after the commit point
        and before its removal."""
        named = {state.get("tensors") for state in self.phases.values()}
        for path in self.folder.glob("*.safetensors"):
            if path.name not in named:
                path.unlink(missing_ok=True)

    def _write_progress(self) -> None:
        with replaced_atomically(self.folder / PROGRESS_FILE) as staging:
            staging.write_text(json.dumps({"fingerprint": self.fingerprint, "phases": self.phases}, indent=1,
                                          default=str), encoding="utf-8")

    def phase(self, name: str) -> dict | None:
        return self.phases.get(name)

    def load_tensors(self, name: str, kind: str = "torch") -> dict[str, Tensor]:
        """A phase's tensors, as NumPy arrays (`kind` "numpy") or PyTorch tensors ("torch")."""
        if kind == "numpy":
            from safetensors.numpy import load_file
        else:
            from safetensors.torch import load_file
        path = self.folder / self.phases[name]["tensors"]
        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as error:
            raise ZoolensError(f"{path}: damaged checkpoint ({error}); delete {self.folder} to start over") from None

    def save_epoch(self, name: str, epoch: int, network, optimizer, best_state: dict | None, state: dict,
                   finished: bool = False) -> None:
        """Write the tensors under a new name, then point progress.json at them, then drop the old file."""
        if not self.writer:
            return
        tensors = _plain_tensors(network.state_dict(), "network.")
        optimizer_plain = None
        if optimizer is not None:
            optimizer_tensors, optimizer_plain = flatten_optimizer_state(optimizer.state_dict())
            tensors.update(optimizer_tensors)
        if best_state is not None:
            tensors.update(_plain_tensors(best_state, "best."))
        file_name = f"{name}-epoch{epoch:04d}{'-final' if finished else ''}.safetensors"
        if all(isinstance(value, np.ndarray) for value in tensors.values()):
            from safetensors.numpy import save_file
        else:
            from safetensors.torch import save_file
        with replaced_atomically(self.folder / file_name) as staging:
            save_file(tensors, str(staging))
        previous = (self.phases.get(name) or {}).get("tensors")
        self.phases[name] = {**state, "epoch": epoch, "finished": finished, "tensors": file_name,
                             "optimizer": optimizer_plain}
        self._write_progress()
        if previous and previous != file_name:
            (self.folder / previous).unlink(missing_ok=True)

    def remove(self) -> None:
        if not self.writer or not is_ours(self.folder):  # only ever the folder zoolens made
            return
        shutil.rmtree(self.folder, ignore_errors=True)


def drop_unfinished_checkpoint(out: str | Path) -> None:
    """After a failed run: remove the checkpoint folder zoolens made for it when it holds no finished epoch (there
    is nothing to resume from); one with finished epochs stays, for --resume."""
    folder = checkpoint_folder(out)
    if not (folder.is_dir() and is_ours(folder)):
        return
    if (folder / PROGRESS_FILE).exists():
        log.warning("%s: the finished epochs are kept there: %s goes on from them (or delete it)", folder,
                    setting("resume"))
    else:
        shutil.rmtree(folder, ignore_errors=True)


def phase_state(rows: list[dict], best_loss: float, best_epoch: int, stop_wait: int, stop_best: float,
                stopped_early: bool) -> dict:
    """The JSON half of a checkpoint: history rows, best so far and the early-stopping counter."""
    return {
        "history": rows,
        "best_loss": best_loss if math.isfinite(best_loss) else None,
        "best_epoch": best_epoch,
        "stop_wait": stop_wait,
        "stop_best": stop_best if math.isfinite(stop_best) else None,
        "stopped_early": stopped_early,
    }
