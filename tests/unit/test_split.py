"""Stratified, deterministic splits written as manifests; the user's folder is never touched."""

from collections import Counter
from pathlib import Path

import pytest
from helpers import tree_snapshot
from PIL import Image

from zoolens.data.folders import scan_folder
from zoolens.data.split import parse_ratios, read_manifest, split_folder, write_manifest
from zoolens.errors import ZoolensError


def make_folder(root: Path, counts: dict[str, int]) -> Path:
    for label, n in counts.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.new("RGB", (8, 8), (i % 255, 0, 0)).save(root / label / f"{i:04d}.png")
    return root


def roles_by_class(manifest):
    return Counter((sample.label, role) for sample, role in manifest.rows)


def test_70_10_20_is_exact_per_class_and_deterministic(tmp_path):
    folder = scan_folder(make_folder(tmp_path / "d", {"a": 100, "b": 50, "c": 30}))
    first, again = split_folder(folder, "70/10/20", seed=0), split_folder(folder, "70/10/20", seed=0)
    counts = roles_by_class(first)
    assert (counts["a", "train"], counts["a", "val"], counts["a", "test"]) == (70, 10, 20)
    assert (counts["b", "train"], counts["b", "val"], counts["b", "test"]) == (35, 5, 10)
    assert (counts["c", "train"], counts["c", "val"], counts["c", "test"]) == (21, 3, 6)
    assert first.rows == again.rows
    other_seed = split_folder(folder, "70/10/20", seed=1)
    assert {str(s.path) for s in other_seed.part("test")} != {str(s.path) for s in first.part("test")}


def test_80_20_means_train_test_with_validation_carved_from_train(tmp_path):
    folder = scan_folder(make_folder(tmp_path / "d", {"a": 80, "b": 80}))
    counts = roles_by_class(split_folder(folder, "80/20"))
    assert counts["a", "test"] == 16 and counts["a", "val"] == 8 and counts["a", "train"] == 56


def test_tiny_classes_keep_a_training_photo(tmp_path):
    folder = scan_folder(make_folder(tmp_path / "d", {"one": 1, "two": 2, "many": 20}))
    counts = roles_by_class(split_folder(folder))
    assert counts["one", "train"] == 1
    assert counts["two", "train"] >= 1


def test_presplit_folder_keeps_parts_and_val_becomes_test_without_a_test_folder(tmp_path):
    make_folder(tmp_path / "d" / "train", {"a": 40, "b": 40})
    make_folder(tmp_path / "d" / "val", {"a": 10, "b": 10})
    manifest = split_folder(scan_folder(tmp_path / "d"))
    test_paths = {s.path.parent.parent.name for s in manifest.part("test")}
    assert test_paths == {"val"} and len(manifest.part("test")) == 20
    assert len(manifest.part("val")) == 10  # carved from train
    assert {s.path.parent.parent.name for s in manifest.part("val")} == {"train"}


def test_manifest_round_trip_and_folder_untouched(tmp_path):
    root = make_folder(tmp_path / "d", {"a": 12, "b": 9})
    before = tree_snapshot(root)
    manifest = split_folder(scan_folder(root), "70/10/20", seed=3)
    path = write_manifest(manifest, tmp_path / "split.csv")
    again = read_manifest(path, root)
    assert [(s.path, s.label, r) for s, r in again.rows] == [(s.path, s.label, r) for s, r in manifest.rows]
    assert tree_snapshot(root) == before


@pytest.mark.parametrize("text", ["70/10", "abc", "0/50/50", "-1/2/3"])
def test_bad_ratios_get_one_clear_error(text):
    if text == "70/10":
        assert parse_ratios(text) == pytest.approx((70 / 80, 0, 10 / 80))
        return
    with pytest.raises(ValueError, match="^ratios: "):  # a ConfigError: a ZoolensError and a ValueError
        parse_ratios(text)


def test_fewer_than_two_classes_is_one_sentence(tmp_path):
    make_folder(tmp_path / "d", {"only": 5})
    (tmp_path / "d" / "empty").mkdir()
    with pytest.raises(ZoolensError, match="at least two class folders"):
        scan_folder(tmp_path / "d")


def test_non_images_empty_class_and_loose_files_are_named(tmp_path):
    root = make_folder(tmp_path / "d", {"a": 3, "b": 3})
    (root / "a" / "notes.txt").write_text("hello")
    (root / "a" / "zero.jpg").write_bytes(b"")
    (root / "empty").mkdir()
    Image.new("RGB", (4, 4)).save(root / "loose.jpg")
    folder = scan_folder(root)
    reasons = {Path(p).name: r for p, r in folder.skipped}
    assert "not an image file type" in reasons["notes.txt"]
    assert "empty file" in reasons["zero.jpg"]
    assert "no usable images" in reasons["empty"]
    assert "not inside a class folder" in reasons["loose.jpg"]
    assert folder.classes == ["a", "b"]


def test_links_to_folders_inside_a_class_are_named_and_not_followed(tmp_path):
    import os

    from zoolens.data.folders import scan_folder

    root = tmp_path / "photos"
    for name in ("cats", "dogs"):
        (root / name).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (32, 32), (i * 40, 90, 10)).save(root / name / f"{name}{i}.jpg")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    Image.new("RGB", (32, 32)).save(elsewhere / "stray.jpg")
    os.symlink(elsewhere, root / "cats" / "more")
    os.symlink(root, root / "dogs" / "loop")  # a folder that holds itself: a walk that followed it would not end
    folder = scan_folder(root)
    assert sorted(s.path.name for s in folder.samples) == [f"{n}{i}.jpg" for n in ("cats", "dogs") for i in range(3)]
    reasons = dict(folder.skipped)
    for link in (root / "cats" / "more", root / "dogs" / "loop"):
        assert reasons[str(link)].startswith("a link to a folder, not followed"), folder.skipped
