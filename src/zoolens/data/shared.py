"""The real photo sets that ship beside this project in `shared/datasets/` (tests, benchmarks, the demo).

They are unpacked once into a cache folder outside the repository, never into it.
"""

from __future__ import annotations

import logging
import os
import sys
import tarfile
from pathlib import Path

from zoolens.errors import ZoolensError

log = logging.getLogger(__name__)


def data_cache() -> Path:
    return Path(os.environ.get("ZOOLENS_DATA", Path.home() / ".cache" / "zoolens-data"))


def find_archive(name: str) -> Path | None:
    candidates = []
    if os.environ.get("ZOOLENS_SHARED_DATASETS"):
        candidates.append(Path(os.environ["ZOOLENS_SHARED_DATASETS"]))
    for base in (Path.cwd(), Path(__file__).resolve()):
        candidates += [parent / "shared" / "datasets" for parent in [base, *base.parents]]
    for folder in candidates:
        if (folder / f"{name}.tar.gz").is_file():
            return folder / f"{name}.tar.gz"
    return None


def ensure_shared_dataset(name: str) -> Path:
    """Path of the unpacked dataset `name` (animals3, imagewoof, cifar10, faces), unpacking it if needed."""
    target = data_cache() / name
    done = data_cache() / f".{name}.unpacked"
    if target.is_dir() and done.exists():
        return target
    archive = find_archive(name)
    if archive is None:
        raise ZoolensError(f"dataset {name!r}: no {name}.tar.gz in shared/datasets (set ZOOLENS_SHARED_DATASETS)")
    data_cache().mkdir(parents=True, exist_ok=True)
    log.warning("unpacking %s into %s (once)", archive, data_cache())
    with tarfile.open(archive) as tar:
        tar.extractall(data_cache(), filter="data")
    done.touch()
    return target


if __name__ == "__main__":
    print(ensure_shared_dataset(sys.argv[1] if len(sys.argv) > 1 else "animals3"))
