"""`zoolens data issues`: photos filed under the wrong class come first among the likely mislabelled, a re-encoded
copy of a training photo in the test part is a near-duplicate across the split, and the photo folder is only read."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
from helpers import copy_subset, tree_snapshot
from PIL import Image


@pytest.fixture(scope="module")
def noisy(animals3, tmp_path_factory):
    """60 photos of each animals3 class, then 6 dogs filed under cats/ and one photo copied (4 % cropped from each
    side, re-encoded)."""
    root = tmp_path_factory.mktemp("noisy")
    data = copy_subset(animals3, root / "data", per_class=60)
    dogs = sorted((animals3 / "dogs").iterdir())[600:606]
    planted = [shutil.copyfile(p, data / "cats" / f"dog_{p.name}") for p in dogs]
    original = sorted((data / "panda").iterdir())[0]
    image = Image.open(original).convert("RGB")
    w, h = image.size
    image.crop((w * 4 // 100, h * 4 // 100, w * 96 // 100, h * 96 // 100)).save(data / "panda" / "copy_of_first.jpg",
                                                                                 quality=70)
    return data, [p.relative_to(data).as_posix() for p in planted], original.relative_to(data).as_posix()


def test_mislabelled_photos_come_first_copies_are_paired_and_nothing_is_written_inside(noisy, tmp_path, capsys):
    from zoolens.cli import main

    data, planted, original = noisy
    before = tree_snapshot(data)
    assert main(["data", "issues", str(data), "--out", str(tmp_path / "issues"), "--quiet"]) == 0
    assert tree_snapshot(data) == before
    rows = list(csv.DictReader((tmp_path / "issues" / "label_issues.csv").open()))
    assert list(rows[0]) == ["path", "given", "suggested", "score", "part"]
    top = [row["path"] for row in rows[:5]]
    assert set(top) <= set(planted), rows[:8]  # measured: 5 of the 6 planted dogs ranked first, the sixth unflagged
    assert all(row["given"] == "cats" and row["suggested"] == "dogs" for row in rows[:5])
    assert len(rows) <= len(planted) + 2  # few other photos flagged among 187 (measured: one cat)
    scores = [float(row["score"]) for row in rows]
    assert scores == sorted(scores, reverse=True)
    pairs = list(csv.DictReader((tmp_path / "issues" / "near_duplicates.csv").open()))
    copy = {original, "panda/copy_of_first.jpg"}
    assert any({row["path_a"], row["path_b"]} == copy for row in pairs), pairs
    assert len(pairs) <= 2
    for sheet in ("label_issues.png", "near_duplicates.png"):
        assert (tmp_path / "issues" / sheet).stat().st_size > 10_000
    said = capsys.readouterr().out
    assert f"likely mislabelled: {len(rows)}" in said and "given cats, looks like dogs" in said
    fixes = list(csv.DictReader((tmp_path / "issues" / "suggested_corrections.csv").open()))
    relabelled = sum(row["action"] == "relabel" for row in fixes)
    assert f"suggested corrections for the training part: {relabelled} photo(s) relabelled" in said
    assert f"{len(fixes) - relabelled} left out" in said and "--corrections" in said


def test_the_pixel_check_tells_a_resized_cropped_copy_from_another_photo(tmp_path):
    """Candidates by features are confirmed on their pixels: the cat and its copy (3/4 size, 6 % cropped off one
    corner, JPEG 50) match; the cat and the astronaut, or a flat grey picture, do not."""
    from skimage import data as photos

    from zoolens.evaluation.data_issues import PIXEL_MATCH, grey_thumbnail, pixel_match

    cat = Image.fromarray(photos.chelsea())
    cat.save(tmp_path / "cat.png")
    w, h = cat.size
    copy = cat.crop((w * 6 // 100, h * 6 // 100, w, h)).resize((w * 3 // 4, h * 3 // 4))
    copy.save(tmp_path / "copy.jpg", quality=50)
    Image.fromarray(photos.astronaut()).save(tmp_path / "astronaut.png")
    Image.new("RGB", (300, 200), (128, 128, 128)).save(tmp_path / "grey.png")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    thumbs = {name: grey_thumbnail(tmp_path / name) for name in ("cat.png", "copy.jpg", "astronaut.png", "grey.png",
                                                                 "broken.jpg")}
    assert pixel_match(thumbs["cat.png"], thumbs["copy.jpg"]) >= PIXEL_MATCH
    assert pixel_match(thumbs["cat.png"], thumbs["astronaut.png"]) < 0.5
    assert pixel_match(thumbs["cat.png"], thumbs["grey.png"]) < 0.5  # flat: correlates with nothing
    assert thumbs["broken.jpg"] is None and pixel_match(thumbs["cat.png"], None) == -1.0


def test_unusable_files_are_named_whether_found_by_the_scan_or_by_decoding(animals3, tmp_path, capsys):
    from zoolens.cli import main

    data = copy_subset(animals3, tmp_path / "data", per_class=8)
    (data / "cats" / "empty.jpg").write_bytes(b"")  # left out by the folder scan
    (data / "dogs" / "text.jpg").write_text("hello")  # left out when decoded
    assert main(["data", "issues", str(data), "--out", str(tmp_path / "issues"), "--quiet"]) == 0
    said = capsys.readouterr().out
    assert "skipped cats/empty.jpg: empty file (0 bytes)" in said.replace(f"{data}/", "")
    assert "skipped dogs/text.jpg: not an image file" in said.replace(f"{data}/", "")


def test_suggested_corrections_find_the_flipped_labels_that_confident_learning_passes_over(animals3, tmp_path):
    """On all of animals3 with 5 % of its training labels flipped in the split manifest, the suggested corrections
    touch nearly every flipped photo (relabelled to its true class, or left out) and relabel almost no right label;
    the likely-mislabelled flags alone pass over more of them. Measured (seed 4): 92 of the 105 flagged; 102 fixed
    (85 relabelled to their class, 17 left out), 2 relabelled to a wrong class, 40 photos left out in all (with
    scikit-learn's logistic regression as the out-of-fold heads: 93 flagged; 103 fixed (88, 15), 1, 42)."""
    from zoolens.data.corrections import read_corrections, relative_key
    from zoolens.data.folders import Sample, scan_folder
    from zoolens.data.split import Manifest, split_folder, write_manifest
    from zoolens.evaluation.data_issues import find_data_issues, write_data_issues

    split = split_folder(scan_folder(animals3), "70/10/20", 0)
    train = sorted(relative_key(s.path, animals3) for s in split.part("train"))
    rng = np.random.default_rng(4)
    flips = {}
    for index in sorted(rng.choice(len(train), size=round(0.05 * len(train)), replace=False)):
        truth = train[index].split("/")[0]
        others = [name for name in split.classes if name != truth]
        flips[train[index]] = others[int(rng.integers(len(others)))]
    rows = [(Sample(s.path, flips.get(relative_key(s.path, animals3), s.label)), role) for s, role in split.rows]
    manifest = write_manifest(Manifest(root=animals3, classes=split.classes, rows=rows), tmp_path / "noisy.csv")
    issues = find_data_issues(animals3, split_file=manifest, progress=False)
    written = write_data_issues(issues, tmp_path / "issues")
    fixes = read_corrections(written["suggested_corrections"], split.classes)
    touched = {path for path in flips if path in fixes.exclude or fixes.relabel.get(path) == path.split("/")[0]}
    flagged = {row.path for row in issues.label_issues} & set(flips)
    assert len(touched) >= 101 and len(touched) >= len(flagged) + 8, (len(touched), len(flagged))
    wrong = [path for path, label in fixes.relabel.items() if label != path.split("/")[0]]
    assert len(wrong) <= 2, wrong
    assert len(fixes.exclude) <= 50
