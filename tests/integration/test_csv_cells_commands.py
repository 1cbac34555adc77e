"""Finding 15 of issue 32 through the commands: names a spreadsheet takes for a formula go through the commands and
come back, the photo found again. The CSV writer and readers alone: tests/unit/test_csv_cells.py."""

from __future__ import annotations

from helpers import FORMULA, FORMULA_CLASS, FORMULA_NAMES, no_formula

from zoolens.data.corrections import record_decision
from zoolens.data.split import read_manifest


def test_such_names_go_through_the_commands_and_come_back(formula_named, tmp_path, monkeypatch):
    """data split, data issues, train with that split and to_review.csv's decisions, predict --csv: every CSV cell
    is neutralised, and the photos are found again by the commands reading them."""
    from zoolens.cli import main

    assert main(["data", "split", str(formula_named), "--out", str(tmp_path / "split.csv")]) == 0
    no_formula(tmp_path / "split.csv")
    assert main(["data", "issues", str(formula_named), "--out", str(tmp_path / "iss"), "--quiet"]) == 0
    for table in ("label_issues", "outliers", "near_duplicates", "class_balance", "to_review",
                  "suggested_corrections"):
        no_formula(tmp_path / "iss" / f"{table}.csv")
    assert ["'" + FORMULA_CLASS] in [row[:1] for row in no_formula(tmp_path / "iss" / "class_balance.csv")]
    panda = sorted(p.name for p in (formula_named / FORMULA_CLASS).iterdir())[0]
    review = tmp_path / "iss" / "to_review.csv"
    record_decision(review, f"{FORMULA_CLASS}/{panda}", "exclude")
    record_decision(review, f"cats/{FORMULA}", "relabel", FORMULA_CLASS)
    assert main(["train", str(formula_named), "--out", str(tmp_path / "m"), "--split", str(tmp_path / "split.csv"),
                 "--corrections", str(review), "--quiet"]) == 0
    trained = read_manifest(tmp_path / "m" / "split.csv", formula_named)
    labels = {sample.path.relative_to(formula_named).as_posix(): sample.label for sample, _ in trained.rows}
    assert labels[f"cats/{FORMULA}"] == FORMULA_CLASS and f"{FORMULA_CLASS}/{panda}" not in labels
    assert len(labels) == 3 * 6 + len(FORMULA_NAMES) - 1

    monkeypatch.chdir(formula_named / "cats")
    assert main(["predict", "--csv", str(tmp_path / "p.csv"), str(tmp_path / "m"), "--", FORMULA, "-1.jpg"]) == 0
    table = no_formula(tmp_path / "p.csv")
    assert [row[0] for row in table[1:]] == ["'" + FORMULA, "'-1.jpg"]
