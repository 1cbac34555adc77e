"""A model on disk: a folder with weights in safetensors and everything else in JSON. No pickle, ever.

MODEL/zoolens.json        classes, backbone, preprocessing, training configuration, metrics, version
MODEL/model.safetensors   the network's weights
MODEL/split.csv           which photo was train / val / test (when trained by zoolens)
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from zoolens.errors import ZoolensError

FORMAT = "zoolens-model"
FORMAT_VERSION = 1
META_FILE = "zoolens.json"
WEIGHTS_FILE = "model.safetensors"


def write_bundle(path: Path, state: dict[str, torch.Tensor], meta: dict, extra_files: dict[str, Path] | None = None):
    """Write to a temporary folder beside `path`, then swap it in, so no half-written bundle is ever left."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    save_file(tensors, str(staging / WEIGHTS_FILE), metadata={"format": FORMAT})
    (staging / META_FILE).write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
    for name, source in (extra_files or {}).items():
        if Path(source).exists():
            shutil.copyfile(source, staging / name)
    if path.exists():
        if not (path / META_FILE).exists() and any(path.iterdir()):
            shutil.rmtree(staging)
            raise ZoolensError(f"{path}: exists and is not a zoolens model; choose another --out")
        retired = path.with_name(f".{path.name}.old-{os.getpid()}")
        path.replace(retired)
        staging.replace(path)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        staging.replace(path)


def read_meta(path: Path) -> dict:
    path = Path(path)
    meta_path = path / META_FILE
    if not path.is_dir():
        raise ZoolensError(f"{path}: no such model folder")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ZoolensError(f"{path}: not a zoolens model (no {META_FILE})") from None
    except (ValueError, UnicodeDecodeError, OSError) as error:
        raise ZoolensError(f"{meta_path}: unreadable model description ({error})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ZoolensError(f"{meta_path}: not a zoolens model description")
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise ZoolensError(f"{meta_path}: made by a newer zoolens (format {meta['format_version']}); upgrade zoolens")
    for key in ("classes", "backbone", "preprocessing"):
        if key not in meta:
            raise ZoolensError(f"{meta_path}: missing {key!r}")
    return meta


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    weights = Path(path) / WEIGHTS_FILE
    try:
        return load_file(str(weights))
    except FileNotFoundError:
        raise ZoolensError(f"{weights}: missing") from None
    except (SafetensorError, OSError, ValueError) as error:
        raise ZoolensError(f"{weights}: damaged or not a safetensors file ({error})") from None
