"""`make demo` anywhere (`python -m zoolens.data.shared`): the shared animals3 archive first; where there is none,
three Oxford-IIIT Pet breeds that torchvision downloads, arranged into class folders; offline, one line saying what
to do."""

from __future__ import annotations

import tarfile
import urllib.error
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from zoolens.data import shared
from zoolens.errors import ZoolensError

COLOURS = {"Abyssinian": (200, 120, 40), "Persian": (240, 240, 240), "Pug": (90, 70, 50), "Samoyed": (30, 90, 200)}
# torchvision's Oxford-IIIT Pet files: an image id per photo (its breed, then a number; cats' breeds capitalised),
# with its class (1-based), species (1 cat, 2 dog) and breed id.
PET_ROWS = [("Abyssinian_1", 1, 1, 1), ("Persian_1", 2, 1, 2), ("Persian_2", 2, 1, 2), ("pug_1", 3, 2, 1),
            ("samoyed_1", 4, 2, 2), ("samoyed_2", 4, 2, 2), ("samoyed_3", 4, 2, 2)]


@pytest.fixture
def nowhere(tmp_path, monkeypatch) -> Path:
    """No shared archive where they are looked for, an empty data cache."""
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("ZOOLENS_SHARED_DATASETS", str(tmp_path / "empty"))
    monkeypatch.setenv("ZOOLENS_DATA", str(tmp_path / "cache"))
    assert shared.archive_folders() == [tmp_path / "empty"]  # the setting alone: not the real archive beside us
    return tmp_path / "cache"


@pytest.fixture
def offline(monkeypatch) -> list:
    """Every download torchvision tries fails as it does without a network; the list records what was tried."""
    import torchvision.datasets.oxford_iiit_pet as pet

    tried = []

    def no_network(url, *args, **kwargs):
        tried.append(url)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(pet, "download_and_extract_archive", no_network)
    return tried


def fake_pet_download(cache: Path) -> None:
    """What torchvision's download leaves: oxford-iiit-pet/images/<id>.jpg and annotations/trainval.txt."""
    base = cache / "downloads" / "oxford-iiit-pet"
    (base / "images").mkdir(parents=True)
    (base / "annotations").mkdir()
    (base / "annotations" / "trainval.txt").write_text("".join(f"{i} {c} {s} {b}\n" for i, c, s, b in PET_ROWS))
    for image_id, *_ in PET_ROWS:
        breed = " ".join(part.title() for part in image_id.rsplit("_", 1)[0].split("_"))
        Image.new("RGB", (64, 48), COLOURS[breed]).save(base / "images" / f"{image_id}.jpg", quality=100)


def test_offline_without_the_shared_archive_says_what_to_do_in_one_line(nowhere, offline, capsys):
    assert shared.main(["animals3"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1, err
    line = err.strip()
    assert line.startswith("zoolens: error: no animals3.tar.gz in shared/datasets and Oxford-IIIT Pet could not "
                           "be downloaded (")
    assert "name resolution" in line and "connect to the internet" in line
    assert "ZOOLENS_SHARED_DATASETS" in line and "zoolens train PHOTOS/ --out MODEL" in line
    assert offline and offline[0].startswith("https://www.robots.ox.ac.uk/")  # it did try torchvision's download
    assert not (nowhere / shared.PET_FOLDER).exists()  # and left no dataset behind


def test_the_shared_archive_comes_first(nowhere, offline, tmp_path, monkeypatch, capsys):
    photo = tmp_path / "cats_00001.jpg"
    Image.new("RGB", (32, 32), "orange").save(photo)
    with tarfile.open(tmp_path / "empty" / "animals3.tar.gz", "w:gz") as tar:
        tar.add(photo, arcname="animals3/cats/cats_00001.jpg")
    assert shared.main(["animals3"]) == 0
    assert capsys.readouterr().out.strip() == str(nowhere / "animals3")
    assert (nowhere / "animals3" / "cats" / "cats_00001.jpg").read_bytes() == photo.read_bytes()
    assert offline == []  # no download tried


def test_a_downloaded_pet_set_becomes_three_class_folders(nowhere, offline, capsys):
    fake_pet_download(nowhere)  # torchvision finds it there and downloads nothing
    assert shared.main(["animals3"]) == 0
    folder = Path(capsys.readouterr().out.strip())
    assert folder == nowhere / shared.PET_FOLDER and offline == []
    assert sorted(p.name for p in folder.iterdir()) == ["persian", "pug", "samoyed"]  # not the Abyssinian
    counts = {name: sorted(p.name for p in (folder / name).iterdir()) for name in ("persian", "pug", "samoyed")}
    assert counts == {"persian": ["persian_00001.jpg", "persian_00002.jpg"], "pug": ["pug_00001.jpg"],
                      "samoyed": ["samoyed_00001.jpg", "samoyed_00002.jpg", "samoyed_00003.jpg"]}
    for name, breed in (("persian", "Persian"), ("pug", "Pug"), ("samoyed", "Samoyed")):
        for photo in (folder / name).iterdir():
            pixels = np.asarray(Image.open(photo).convert("RGB"), dtype=int)
            assert pixels.shape == (48, 64, 3) and np.abs(pixels - COLOURS[breed]).max() <= 8, photo
    assert shared.main(["animals3"]) == 0  # a second run uses it as it is
    assert capsys.readouterr().out.strip() == str(folder)


def test_arranging_a_set_that_lacks_a_class_leaves_nothing_behind(tmp_path):
    samples = [(Image.new("RGB", (8, 8), "white"), 0), (Image.new("RGB", (8, 8), "black"), 1)]
    with pytest.raises(ZoolensError, match="no photos of samoyed"):
        shared.arrange_class_folders(samples, ["Persian", "Pug"], {"Persian": "persian", "Samoyed": "samoyed"},
                                     tmp_path / "pets")
    assert list(tmp_path.iterdir()) == []
