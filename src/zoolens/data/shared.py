"""The real photo sets that ship beside this project in `shared/datasets/` (tests, benchmarks, the demo), and the
demo's public stand-in where they do not: three breeds of the Oxford-IIIT Pet set, downloaded by torchvision.

They are unpacked once into a cache folder outside the repository, never into it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import tarfile
from collections.abc import Iterable
from pathlib import Path

from zoolens.errors import ZoolensError

log = logging.getLogger(__name__)

# The demo's photos where no shared animals3 archive is found: one cat and two dog breeds of Oxford-IIIT Pet
# (torchvision's names for its classes), each in a class folder of its own name.
PET_CLASSES = {"Persian": "persian", "Pug": "pug", "Samoyed": "samoyed"}
PET_FOLDER = "oxford-pet-3"


def data_cache() -> Path:
    return Path(os.environ.get("ZOOLENS_DATA", Path.home() / ".cache" / "zoolens-data"))


def archive_folders() -> list[Path]:
    """Where the shared archives are looked for: ZOOLENS_SHARED_DATASETS alone when it is set, else
    `shared/datasets/` in the working folder, beside this checkout, or in a folder above either."""
    if os.environ.get("ZOOLENS_SHARED_DATASETS"):
        return [Path(os.environ["ZOOLENS_SHARED_DATASETS"])]
    return [parent / "shared" / "datasets" for base in (Path.cwd(), Path(__file__).resolve())
            for parent in [base, *base.parents]]


def find_archive(name: str) -> Path | None:
    return next((folder / f"{name}.tar.gz" for folder in archive_folders() if (folder / f"{name}.tar.gz").is_file()),
                None)


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


def arrange_class_folders(samples: Iterable, class_names: list[str], wanted: dict[str, str], target: Path) -> Path:
    """A torchvision-style dataset's (PIL image, class index) samples of the `wanted` classes ({its class name:
    folder name}) saved as `target/<folder>/<folder>_00001.jpg`, ...; written beside `target` and renamed into
    place whole, so that a run stopped half-way leaves no half-filled dataset."""
    partial = target.with_name(f".{target.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        counts = dict.fromkeys(wanted.values(), 0)
        for folder in counts:
            (partial / folder).mkdir(parents=True)
        for image, label in samples:
            folder = wanted.get(class_names[label])
            if folder is not None:
                counts[folder] += 1
                image.convert("RGB").save(partial / folder / f"{folder}_{counts[folder]:05d}.jpg", quality=95)
        if empty := [folder for folder, count in counts.items() if count == 0]:
            raise ZoolensError(f"{target}: no photos of {', '.join(empty)} in the downloaded set")
        partial.rename(target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target


def download_pets(instead_of: str = "animals3") -> Path:
    """Three Oxford-IIIT Pet breeds in class folders (downloaded once by torchvision, about 800 MB, into the data
    cache); a ZoolensError when that cannot be done (no internet)."""
    target = data_cache() / PET_FOLDER
    if target.is_dir():
        return target
    from torchvision.datasets import OxfordIIITPet

    log.warning("no %s.tar.gz in shared/datasets: downloading Oxford-IIIT Pet (about 800 MB, once) into %s",
                instead_of, data_cache())
    try:
        # stdout is for the folder's path (`make demo` reads it); older torchvisions print their downloads there
        with contextlib.redirect_stdout(sys.stderr):
            pets = OxfordIIITPet(data_cache() / "downloads", split="trainval", download=True)
    except (OSError, RuntimeError) as error:  # no network (URLError is an OSError), a damaged download
        reason = str(error).splitlines()[0][:120] if str(error).strip() else type(error).__name__
        raise ZoolensError(
            f"no {instead_of}.tar.gz in shared/datasets and Oxford-IIIT Pet could not be downloaded ({reason}): "
            f"connect to the internet and run it again, or set ZOOLENS_SHARED_DATASETS to a folder holding "
            f"{instead_of}.tar.gz, or train on a folder of class folders of your own photos: "
            f"zoolens train PHOTOS/ --out MODEL") from None
    return arrange_class_folders(pets, pets.classes, PET_CLASSES, target)


def demo_photos(name: str = "animals3") -> Path:
    """The demo's dataset: the shared archive `name` first, else the Oxford-IIIT Pet breeds."""
    try:
        return ensure_shared_dataset(name)
    except ZoolensError:  # no such archive where they are looked for
        return download_pets(instead_of=name)


def main(argv: list[str]) -> int:
    """`python -m zoolens.data.shared [NAME]` (`make demo`): prints the demo dataset's folder, or one line why not."""
    try:
        print(demo_photos(argv[0] if argv else "animals3"))
    except ZoolensError as error:
        print(f"zoolens: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
