"""Finding 15 of issue 32 through the commands: names a spreadsheet takes for a formula go through the commands and
come back, the photo found again. The CSV writer and readers alone: tests/unit/test_csv_cells.py."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from helpers import copy_subset

from zoolens.data.corrections import record_decision
from zoolens.data.split import read_manifest

FORMULA = '=HYPERLINK("evil.example","click").jpg'
NAMES = [FORMULA, "-1.jpg", "+1.jpg", "@sum.jpg", "\tx.jpg", "'a.jpg", "''b.jpg", "'=c.jpg"]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


FORMULA_CLASS = '=HYPERLINK("evil.example","panda")'


@pytest.fixture
def named(animals3, tmp_path):
    """6 animals3 photos per class, the panda class in a folder named like a formula, and cat photos under names a
    spreadsheet would run."""
    data = copy_subset(animals3, tmp_path / "data", per_class=6)
    (data / "panda").rename(data / FORMULA_CLASS)
    cats = sorted((animals3 / "cats").iterdir())[100:100 + len(NAMES)]
    for name, photo in zip(NAMES, cats):
        shutil.copyfile(photo, data / "cats" / name)
    return data


def _no_formula(path: Path) -> list[list[str]]:
    """The file's rows; asserts that no cell starts like a formula."""
    with open(path, newline="", encoding="utf-8") as handle:
        table = list(csv.reader(handle))
    assert not [cell for row in table for cell in row if cell.startswith(FORMULA_STARTS)], path
    return table


def test_such_names_go_through_the_commands_and_come_back(named, tmp_path, monkeypatch):
    """data split, data issues, train with that split and to_review.csv's decisions, predict --csv: every CSV cell
    is neutralised, and the photos are found again by the commands reading them."""
    from zoolens.cli import main

    assert main(["data", "split", str(named), "--out", str(tmp_path / "split.csv")]) == 0
    _no_formula(tmp_path / "split.csv")
    assert main(["data", "issues", str(named), "--out", str(tmp_path / "iss"), "--quiet"]) == 0
    for table in ("label_issues", "outliers", "near_duplicates", "class_balance", "to_review",
                  "suggested_corrections"):
        _no_formula(tmp_path / "iss" / f"{table}.csv")
    assert ["'" + FORMULA_CLASS] in [row[:1] for row in _no_formula(tmp_path / "iss" / "class_balance.csv")]
    panda = sorted(p.name for p in (named / FORMULA_CLASS).iterdir())[0]
    review = tmp_path / "iss" / "to_review.csv"
    record_decision(review, f"{FORMULA_CLASS}/{panda}", "exclude")
    record_decision(review, f"cats/{FORMULA}", "relabel", FORMULA_CLASS)
    assert main(["train", str(named), "--out", str(tmp_path / "m"), "--split", str(tmp_path / "split.csv"),
                 "--corrections", str(review), "--quiet"]) == 0
    trained = read_manifest(tmp_path / "m" / "split.csv", named)
    labels = {sample.path.relative_to(named).as_posix(): sample.label for sample, _ in trained.rows}
    assert labels[f"cats/{FORMULA}"] == FORMULA_CLASS and f"{FORMULA_CLASS}/{panda}" not in labels
    assert len(labels) == 3 * 6 + len(NAMES) - 1

    monkeypatch.chdir(named / "cats")
    assert main(["predict", "--csv", str(tmp_path / "p.csv"), str(tmp_path / "m"), "--", FORMULA, "-1.jpg"]) == 0
    table = _no_formula(tmp_path / "p.csv")
    assert [row[0] for row in table[1:]] == ["'" + FORMULA, "'-1.jpg"]
