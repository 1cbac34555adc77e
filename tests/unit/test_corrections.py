"""Corrections files: a person's relabel / exclude / keep decisions reach training, k-fold, studies, splits and
`zoolens data issues` without a photo being touched, and a model records which file it was trained with; and
`--balance weighted` makes a small class count in the loss.
The tests that train or start processes: tests/integration/test_corrections_runs.py."""

from __future__ import annotations

import csv
import hashlib

import numpy as np
import pytest
from helpers import write_csv

from zoolens.data.corrections import read_corrections, record_decision
from zoolens.data.folders import Sample
from zoolens.data.split import Manifest
from zoolens.errors import ZoolensError


def _write(path, rows, columns=("path", "action", "label")):
    return write_csv(path, rows, columns)


def _manifest(root):
    rows = [(Sample(root / "cats" / f"c{i}.jpg", "cats"), role) for i, role in enumerate(["train", "val", "test"])]
    rows += [(Sample(root / "dogs" / f"d{i}.jpg", "dogs"), role) for i, role in enumerate(["train", "val", "test"])]
    return Manifest(root=root, classes=["cats", "dogs"], rows=rows)


def test_relabels_and_exclusions_apply_to_the_split_and_undecided_rows_do_nothing(tmp_path):
    file = _write(tmp_path / "fix.csv", [["cats/c2.jpg", "relabel", "dogs"], ["dogs/d0.jpg", "exclude", ""],
                                         ["dogs/d1.jpg", "keep", ""], ["cats/c0.jpg", "", "dogs"]])
    corrections = read_corrections(file, ["cats", "dogs"])
    changed = corrections.apply(_manifest(tmp_path))
    labels = {sample.path.name: (sample.label, role) for sample, role in changed.rows}
    assert labels == {"c0.jpg": ("cats", "train"), "c1.jpg": ("cats", "val"), "c2.jpg": ("dogs", "test"),
                      "d1.jpg": ("dogs", "val"), "d2.jpg": ("dogs", "test")}
    assert changed.classes == ["cats", "dogs"]
    digest = hashlib.sha256(file.read_bytes()).hexdigest()
    assert corrections.record() == {"file": str(file.resolve()), "sha256": digest, "relabelled": 1, "excluded": 1,
                                    "kept": 1}


@pytest.mark.parametrize("rows, complaint", [
    ([["cats/a.jpg", "relabel", "wolves"]], "line 2: 'wolves' is not a class of this dataset (cats, dogs)"),
    ([["cats/a.jpg", "rename", "dogs"]], "line 2: action 'rename'"),
    ([["cats/a.jpg", "relabel", ""]], "line 2: relabel cats/a.jpg to which class?"),
    ([["../outside.jpg", "exclude", ""]], "line 2: '../outside.jpg' is not a photo inside the data folder"),
    ([["/etc/passwd", "exclude", ""]], "line 2: '/etc/passwd' is not a photo inside the data folder"),
    ([["cats/a.jpg", "exclude", ""], ["cats/a.jpg", "relabel", "dogs"]], "line 3: a second, different decision"),
])
def test_a_wrong_corrections_file_is_refused_naming_the_line(tmp_path, rows, complaint):
    file = _write(tmp_path / "fix.csv", rows)
    with pytest.raises(ZoolensError) as refused:
        read_corrections(file, ["cats", "dogs"])
    assert str(refused.value).startswith(f"{file}: ") and complaint in str(refused.value)


def test_a_file_without_the_columns_is_not_a_corrections_file(tmp_path):
    file = _write(tmp_path / "split.csv", [["cats/a.jpg", "cats", "train"]], columns=("path", "label", "split"))
    with pytest.raises(ZoolensError, match="not a corrections file"):
        read_corrections(file)


def test_recording_a_decision_replaces_the_earlier_one_and_keeps_the_other_rows(tmp_path):
    file = tmp_path / "fix.csv"
    record_decision(file, "cats/a.jpg", "relabel", "dogs", given="cats", score=0.93)
    record_decision(file, "cats/b.jpg", "exclude")
    corrections = record_decision(file, "cats/a.jpg", "keep")
    assert corrections.keep == {"cats/a.jpg"} and corrections.exclude == {"cats/b.jpg"} and not corrections.relabel
    rows = list(csv.DictReader(file.open()))
    assert [row["path"] for row in rows] == ["cats/a.jpg", "cats/b.jpg"]
    assert rows[0]["given"] == "cats" and rows[0]["label"] == ""  # a kept photo has no new label
    assert record_decision(file, "cats/a.jpg", "").decided() == {"cats/b.jpg"}  # taken back


def test_weighted_balance_lets_a_small_class_be_found():
    """Two overlapping clouds of features, 400 photos against 20: unweighted, the head gives most of the small class
    up; weighted (the balanced rule), it finds most of it."""
    from zoolens.training.config import Phase
    from zoolens.training.loop import FeatureBatches, Optimization, run_phase
    from zoolens.models.dense_head import DenseHead
    from zoolens.training.trainer import class_weights

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, (400, 8)), rng.normal(0.5, 1, (20, 8))]).astype(np.float32)
    y = np.array([0] * 400 + [1] * 20)
    train = [Sample(f"{i}", "big" if label == 0 else "small") for i, label in enumerate(y)]
    weights = class_weights(train, ["big", "small"])
    assert weights == pytest.approx((420 / 800, 420 / 40))
    recalls = {}
    for name, chosen in (("plain", None), ("weighted", weights)):
        head = DenseHead(8, 2, dropout=0.0, seed=0)
        batches = FeatureBatches((x, y), (x, y), 64, 0)
        run_phase(Phase("head", "features", 0.05, 40, 40), head, batches, Optimization("adam", 0.0, 0.0, 0, chosen))
        predicted = head.eval()(x).argmax(1)
        recalls[name] = float((predicted[y == 1] == 1).mean())
    assert recalls["plain"] <= 0.2 and recalls["weighted"] >= 0.8, recalls  # measured 0.10 and 0.90


# ---- issue 32: decisions kept, paths as the scan names them, links followed, bounded memory ------------------
def _review(path):
    return list(csv.DictReader(path.open(encoding="utf-8")))


def test_making_the_review_file_anew_keeps_every_decided_row_as_it_is(tmp_path):
    """`data issues` into the same --out: the decided rows stay (their cells, a column the person added too), the
    undecided ones are refreshed, new flags are added, undecided rows no longer flagged go."""
    from zoolens.data.corrections import refresh_review
    from zoolens.evaluation.data_issues import REVIEW_COLUMNS

    def flag(path, score):
        return {"path": path, "action": "", "label": "dogs", "given": "cats", "suggested": "dogs", "score": score,
                "reason": "likely mislabelled"}

    file = tmp_path / "to_review.csv"
    refresh_review(file, [flag(p, 0.9) for p in ("cats/a.jpg", "cats/b.jpg", "cats/c.jpg", "cats/d.jpg")],
                   REVIEW_COLUMNS)
    rows = _review(file)
    for row in rows:
        row["note"] = ""
    rows[1].update(action="relabel", label="panda", note="a panda, in fact")  # b
    rows[3].update(action="exclude", label="")  # d
    with open(file, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    decided = {row["path"]: row for row in rows if row["action"]}
    refresh_review(file, [flag(p, 0.5) for p in ("cats/a.jpg", "cats/b.jpg", "cats/e.jpg")], REVIEW_COLUMNS)
    again = _review(file)
    assert [row["path"] for row in again] == ["cats/a.jpg", "cats/b.jpg", "cats/e.jpg", "cats/d.jpg"]
    assert again[1] == decided["cats/b.jpg"] and again[3] == decided["cats/d.jpg"]  # every cell as the person left it
    assert again[0]["score"] == "0.5" and again[0]["action"] == ""  # refreshed
    assert read_corrections(file).decided() == {"cats/b.jpg", "cats/d.jpg"}


def test_a_review_file_that_is_not_one_is_refused_and_left_alone(tmp_path):
    from zoolens.data.corrections import refresh_review

    file = tmp_path / "to_review.csv"
    file.write_text("my notes, not a review file\n")
    with pytest.raises(ZoolensError, match="not a corrections file"):
        refresh_review(file, [{"path": "cats/a.jpg", "action": ""}], ["path", "action", "label"])
    assert file.read_text() == "my notes, not a review file\n"


@pytest.mark.parametrize("written", ["./cats/c2.jpg", "cats//c2.jpg", "cats/./c2.jpg", "cats\\c2.jpg",
                                     " cats/c2.jpg "])
def test_a_path_is_taken_as_the_folder_scan_names_the_photo(tmp_path, written):
    """Finding 8: `./cats/x.jpg` or `cats//x.jpg` relabels the photo (it reported "1 relabelled" and changed
    nothing)."""
    (tmp_path / "cats").mkdir()
    (tmp_path / "cats" / "c2.jpg").write_bytes(b"")
    file = _write(tmp_path / "fix.csv", [[written, "relabel", "dogs"]])
    corrections = read_corrections(file, ["cats", "dogs"])
    changed = corrections.apply(_manifest(tmp_path))
    assert {s.path.name: s.label for s, _ in changed.rows}["c2.jpg"] == "dogs"
    assert corrections.record()["relabelled"] == 1


def test_the_model_records_only_the_decisions_that_found_their_photo(tmp_path, caplog):
    file = _write(tmp_path / "fix.csv", [["cats/c2.jpg", "relabel", "dogs"], ["cats/gone.jpg", "relabel", "dogs"],
                                         ["dogs/gone.jpg", "exclude", ""], ["dogs/d1.jpg", "keep", ""]])
    corrections = read_corrections(file, ["cats", "dogs"])
    corrections.apply(_manifest(tmp_path))
    record = corrections.record()
    assert (record["relabelled"], record["excluded"], record["kept"]) == (1, 0, 1)
    assert "2 correction(s) name photos that are not in the split" in caplog.text


@pytest.mark.parametrize("written", ["./", ".", "cats/.."])
def test_a_path_naming_no_photo_is_refused_naming_the_line(tmp_path, written):
    file = _write(tmp_path / "fix.csv", [["cats/c2.jpg", "keep", ""], [written, "exclude", ""]])
    with pytest.raises(ZoolensError, match=f"{file}: line 3: .* is not a photo inside the data folder"):
        read_corrections(file)


def test_a_link_does_not_get_the_corrections_file_into_the_data_folder(tmp_path):
    """Finding 7: `--review dlink --corrections dcopy/cats/x.csv` with dlink -> dcopy, and a corrections file that
    is itself a link into the photos, are refused like the plain path."""
    from zoolens.apps.review import check_corrections_file

    data = tmp_path / "dcopy"
    (data / "cats").mkdir(parents=True)
    (tmp_path / "dlink").symlink_to(data, target_is_directory=True)
    with pytest.raises(ZoolensError, match="is inside the data folder"):
        check_corrections_file(tmp_path / "dlink", data / "cats" / "x.csv")
    with pytest.raises(ZoolensError, match="is inside the data folder"):
        check_corrections_file(data, tmp_path / "dlink" / "cats" / "x.csv")
    (tmp_path / "fix.csv").symlink_to(data / "cats" / "x.csv")
    with pytest.raises(ZoolensError, match="is inside the data folder"):
        check_corrections_file(tmp_path / "dlink", tmp_path / "fix.csv")
    assert not (data / "cats" / "x.csv").exists()
    assert check_corrections_file(tmp_path / "dlink", tmp_path / "elsewhere.csv") == tmp_path / "elsewhere.csv"


def test_a_changed_decision_rewrites_every_row_of_its_photo(tmp_path):
    """A file with two rows for one photo (`./` and plain): a new decision changes both, so the file never holds
    two different decisions for it."""
    file = _write(tmp_path / "fix.csv", [["./cats/a.jpg", "exclude", ""], ["cats/a.jpg", "exclude", ""],
                                         ["cats/b.jpg", "", ""]])
    assert record_decision(file, "cats/a.jpg", "keep").keep == {"cats/a.jpg"}
    assert [row["action"] for row in _review(file)] == ["keep", "keep", ""]


def test_recording_into_a_file_that_is_refused_leaves_it_as_it_was(tmp_path):
    file = _write(tmp_path / "fix.csv", [["cats/a.jpg", "rename", ""]])
    before = file.read_bytes()
    with pytest.raises(ZoolensError, match="line 2: action 'rename'"):
        record_decision(file, "cats/b.jpg", "keep")
    assert file.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["fix.csv"]


def test_data_split_counts_only_the_decisions_that_found_their_photo(small_animals, tmp_path, capsys):
    from zoolens.cli.program import main

    photo = sorted((small_animals / "cats").iterdir())[0].relative_to(small_animals).as_posix()
    fixes = _write(tmp_path / "fix.csv", [[photo, "relabel", "dogs"], ["cats/not-there.jpg", "relabel", "dogs"],
                                         ["dogs/gone.jpg", "exclude", ""]])
    assert main(["data", "split", str(small_animals), "--out", str(tmp_path / "split.csv"),
                 "--corrections", str(fixes)]) == 0
    assert f"(1 relabelled and 0 left out by {fixes})" in capsys.readouterr().out
