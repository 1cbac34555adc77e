"""Finding 15 of issue 32: a name that a spreadsheet takes for a formula (`=HYPERLINK(...)`, `-1`, `+x`, `@x`) is
written into every CSV people open behind a quote (zoolens/spreadsheet.py), and every zoolens reader of its own CSV
files takes it back: the photo is found again.
The tests that train or start processes: tests/integration/test_csv_cells_commands.py."""

from __future__ import annotations

import csv
from collections import Counter

import pytest
from helpers import FORMULA, FORMULA_CLASS, FORMULA_NAMES, FORMULA_STARTS, no_formula

from zoolens.data.corrections import corrected, read_corrections, record_decision, write_corrections
from zoolens.data.folders import scan_folder
from zoolens.data.split import read_manifest, split_folder, write_manifest
from zoolens.inference.batch.summary import summary_rows, write_summary_csv
from zoolens.inference.prediction import Prediction, csv_text
from zoolens.spreadsheet import from_cell, to_cell


@pytest.mark.parametrize("text", ["", "'", "''", "=", "'=", "''=", "-1", "+x", "@x", "\tx", "\rx", "a", "'a", "a=b",
                                  "-", "'\t", FORMULA])
def test_the_rule_is_a_bijection_and_no_cell_starts_like_a_formula(text):
    cell = to_cell(text)
    assert from_cell(cell) == text
    assert not cell.startswith(FORMULA_STARTS)
    assert cell == text or cell == "'" + text


def test_numbers_and_plain_text_are_written_as_they_are():
    assert to_cell(-0.5) == -0.5 and to_cell(3) == 3 and to_cell(None) is None and to_cell("cats") == "cats"
    assert from_cell("'hello") == "'hello"  # a quote a person typed before plain text is theirs
    assert from_cell("=x.jpg") == "=x.jpg"  # as a spreadsheet saves it back (without its display quote)


def test_the_prediction_csv_and_the_batch_summary_neutralise_names():
    predictions = [Prediction(source=name, label="-cats", confidence=0.9, top=[("-cats", 0.9)])
                   for name in FORMULA_NAMES]
    rows = list(csv.reader(csv_text(predictions, top_k=1).splitlines()))[1:]
    assert [row[0] for row in rows] == [to_cell(name) for name in FORMULA_NAMES]
    assert rows[0][0].startswith("'=HYPERLINK") and rows[0][2] == "'-cats"
    assert rows[0][4] == "0.900000"  # numbers stay numbers


def test_the_batch_summary_neutralises_folder_and_class_names(tmp_path):
    header, rows = summary_rows({"=cmd|' /C calc'!A0": Counter({"-cats": 2})}, ["-cats"])
    write_summary_csv(tmp_path / "s.csv", header, rows)
    with open(tmp_path / "s.csv", newline="", encoding="utf-8") as handle:
        table = list(csv.reader(handle))
    assert table[0][2] == "'-cats" and table[1][:3] == ["'=cmd|' /C calc'!A0", "2", "2"]


def test_a_split_manifest_round_trips_such_names(formula_named, tmp_path):
    manifest = split_folder(scan_folder(formula_named))
    write_manifest(manifest, tmp_path / "split.csv")
    table = no_formula(tmp_path / "split.csv")
    assert ["'" + FORMULA_CLASS in row[0] for row in table].count(True) == 6  # path and label quoted
    assert ["'" + FORMULA_CLASS, "'" + FORMULA_CLASS] in [[row[0][:len(FORMULA_CLASS) + 1], row[1]] for row in table]
    again = read_manifest(tmp_path / "split.csv", formula_named)
    assert again.rows == manifest.rows and all(sample.path.is_file() for sample, _ in again.rows)


def test_a_decision_for_such_a_photo_is_quoted_and_reaches_it(formula_named, tmp_path):
    panda = sorted(p.name for p in (formula_named / FORMULA_CLASS).iterdir())
    file = tmp_path / "fix.csv"
    record_decision(file, f"{FORMULA_CLASS}/{panda[0]}", "relabel", "cats")
    record_decision(file, f"{FORMULA_CLASS}/{panda[1]}", "exclude")
    record_decision(file, "cats/-1.jpg", "relabel", FORMULA_CLASS)
    table = no_formula(file)
    assert table[1][0] == f"'{FORMULA_CLASS}/{panda[0]}" and table[3][2] == "'" + FORMULA_CLASS
    write_corrections(tmp_path / "copy.csv", read_corrections(file).rows)
    no_formula(tmp_path / "copy.csv")
    for written in (file, tmp_path / "copy.csv"):
        manifest, applied = corrected(split_folder(scan_folder(formula_named)), written)
        labels = {sample.path.relative_to(formula_named).as_posix(): sample.label for sample, _ in manifest.rows}
        assert labels[f"{FORMULA_CLASS}/{panda[0]}"] == "cats" and f"{FORMULA_CLASS}/{panda[1]}" not in labels
        assert labels["cats/-1.jpg"] == FORMULA_CLASS
        assert (applied.record()["relabelled"], applied.record()["excluded"]) == (2, 1)
