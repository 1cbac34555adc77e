import os
import shutil
import tempfile
from pathlib import Path

import pytest

# Every test session starts with an empty feature/ONNX cache, as a new user would.
os.environ.setdefault("ZOOLENS_CACHE", tempfile.mkdtemp(prefix="zoolens-cache-"))


@pytest.fixture(scope="session")
def animals3() -> Path:
    from zoolens.data.shared import ensure_shared_dataset

    return ensure_shared_dataset("animals3")


@pytest.fixture(scope="session")
def imagewoof() -> Path:
    from zoolens.data.shared import ensure_shared_dataset

    return ensure_shared_dataset("imagewoof")


def copy_subset(source: Path, target: Path, per_class: int, offset: int = 0) -> Path:
    """A small real dataset: `per_class` photos of each class of `source`, copied (never linked)."""
    for class_dir in sorted(p for p in source.iterdir() if p.is_dir()):
        (target / class_dir.name).mkdir(parents=True, exist_ok=True)
        for photo in sorted(class_dir.iterdir())[offset : offset + per_class]:
            shutil.copyfile(photo, target / class_dir.name / photo.name)
    return target


@pytest.fixture(scope="session")
def small_animals(animals3, tmp_path_factory) -> Path:
    """60 real photos per class of animals3 (cats, dogs, panda)."""
    return copy_subset(animals3, tmp_path_factory.mktemp("small") / "animals", per_class=60)


@pytest.fixture(scope="session")
def other_animals(animals3, tmp_path_factory) -> Path:
    """Different animals3 photos from `small_animals`, for evaluating on a folder the model never saw."""
    return copy_subset(animals3, tmp_path_factory.mktemp("other") / "animals", per_class=20, offset=500)


@pytest.fixture(scope="session")
def trained_model(small_animals, tmp_path_factory):
    import zoolens

    out = tmp_path_factory.mktemp("models") / "small"
    return zoolens.train(small_animals, out, progress=False)


def tree_snapshot(root: Path) -> dict:
    """Every file below root with its size, mtime and content hash: to prove a folder was left alone."""
    import hashlib

    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }
