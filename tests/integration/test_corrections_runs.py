"""Corrections files in real runs: training, studies and `zoolens data issues` take a person's relabel / exclude /
keep decisions without a photo being touched, record which file they were trained with, keep the decisions on a
second run, and read a huge file in bounded memory.
Reading and applying the file alone: tests/unit/test_corrections.py."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil

import pytest
from helpers import copy_subset, tree_snapshot, write_csv

from zoolens.data.corrections import read_corrections


def _write(path, rows, columns=("path", "action", "label")):
    return write_csv(path, rows, columns)


@pytest.fixture(scope="module")
def planted(animals3, tmp_path_factory):
    """40 photos of each animals3 class with 4 dogs filed under cats/."""
    data = copy_subset(animals3, tmp_path_factory.mktemp("planted") / "data", per_class=40)
    dogs = sorted((animals3 / "dogs").iterdir())[700:704]
    return data, [shutil.copyfile(p, data / "cats" / f"dog_{p.name}").relative_to(data).as_posix() for p in dogs]


def test_train_uses_the_corrections_records_them_and_leaves_the_photos_alone(planted, tmp_path, capsys):
    from zoolens.cli import main

    data, dogs = planted
    excluded = "panda/" + sorted(p.name for p in (data / "panda").iterdir())[0]
    file = _write(tmp_path / "fix.csv", [[path, "relabel", "dogs"] for path in dogs] + [[excluded, "exclude", ""]])
    before = tree_snapshot(data)
    assert main(["train", str(data), "--out", str(tmp_path / "model"), "--corrections", str(file), "--quiet"]) == 0
    assert tree_snapshot(data) == before
    split = {row["path"]: row for row in csv.DictReader((tmp_path / "model" / "split.csv").open())}
    assert all(split[path]["label"] == "dogs" for path in dogs)
    assert excluded not in split and len(split) == 123  # 124 photos, one left out
    meta = json.loads((tmp_path / "model" / "zoolens.json").read_text())
    assert meta["data"]["corrections"] == {"file": str(file.resolve()), "relabelled": 4, "excluded": 1, "kept": 0,
                                           "sha256": hashlib.sha256(file.read_bytes()).hexdigest()}
    assert sum(meta["data"]["counts"]["train"].values()) + sum(meta["data"]["counts"]["val"].values()) + sum(
        meta["data"]["counts"]["test"].values()) == 123

    out = tmp_path / "split.csv"
    assert main(["data", "split", str(data), "--corrections", str(file), "--out", str(out)]) == 0
    assert "4 relabelled and 1 left out" in capsys.readouterr().out
    written = {row["path"]: row for row in csv.DictReader(out.open())}
    assert written == split  # the same split as train made, corrections and all


def test_issues_take_the_corrections_and_their_review_file_is_one(planted, tmp_path):
    """The review file of `data issues` names the planted dogs with "dogs" to relabel to; filled in and given back
    with --corrections, those photos are no longer flagged, and a photo kept as it is is not flagged again."""
    from zoolens.cli import main

    data, dogs = planted
    assert main(["data", "issues", str(data), "--out", str(tmp_path / "first"), "--quiet"]) == 0
    review = list(csv.DictReader((tmp_path / "first" / "to_review.csv").open()))
    assert list(review[0])[:3] == ["path", "action", "label"] and all(row["action"] == "" for row in review)
    flagged = {row["path"]: row for row in review if row["reason"] == "likely mislabelled"}
    found = set(dogs) & set(flagged)
    assert len(found) >= 3 and all(flagged[path]["label"] == "dogs" for path in found)  # measured: 3 of the 4
    kept = sorted(found)[0]  # a person looked and kept its label: it must not be flagged again
    relabelled = found - {kept}
    decided = [{**row, "action": "relabel" if row["path"] in relabelled else "keep"} for row in review
               if row["path"] in flagged]
    file = tmp_path / "decided.csv"
    with open(file, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(review[0]))
        writer.writeheader()
        writer.writerows(decided)
    assert main(["data", "issues", str(data), "--out", str(tmp_path / "second"), "--corrections", str(file),
                 "--quiet"]) == 0
    again = {row["path"] for row in csv.DictReader((tmp_path / "second" / "label_issues.csv").open())}
    assert not again & set(flagged), again  # relabelled ones fit now; kept ones (the dog too) are not asked again


def test_a_study_run_is_kept_only_when_trained_with_the_same_corrections(trained_model):
    """A finished experiment of a study is skipped on a rerun; not when the corrections file changed since."""
    from zoolens.studies.runner import _finished
    from zoolens.training.config import TrainConfig

    assert _finished(trained_model.path, TrainConfig()) is not None  # trained without corrections, asked without
    assert _finished(trained_model.path, TrainConfig(), corrections_sha256="0" * 64) is None


# ---- issue 32: decisions kept, paths as the scan names them, links followed, bounded memory ------------------
def _review(path):
    return list(csv.DictReader(path.open(encoding="utf-8")))


def test_data_issues_again_into_the_same_out_keeps_the_decisions(planted, tmp_path, capsys):
    """Finding 1, as a user meets it: decisions typed into to_review.csv survive `data issues` run again into the
    same --out, plain and with --corrections naming that very file."""
    from zoolens.cli import main

    data, dogs = planted
    out = tmp_path / "iss"
    assert main(["data", "issues", str(data), "--out", str(out), "--quiet"]) == 0
    file = out / "to_review.csv"
    rows = _review(file)
    chosen = {rows[0]["path"]: ("relabel", rows[0]["label"]), rows[1]["path"]: ("keep", ""),
              rows[-1]["path"]: ("exclude", "")}
    for row in rows:
        if row["path"] in chosen:
            row["action"], row["label"] = chosen[row["path"]]
    with open(file, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    decided = [row for row in rows if row["action"]]
    for extra in ([], ["--corrections", str(file)]):
        assert main(["data", "issues", str(data), "--out", str(out), "--quiet", *extra]) == 0
        again = {row["path"]: row for row in _review(file)}
        assert all(again[row["path"]] == row for row in decided), extra
        corrections = read_corrections(file)
        assert {path: corrections.decision(path) for path in corrections.decided()} == chosen


MEMORY_ROWS = 2_000_000  # 8 MB of `a,,` rows: 1.6 GB read whole before the fix (825 MB per million, measured)


def _peak_rss_mb(code: str) -> float:
    """The peak resident memory of a new Python process running `code`, as the process itself reports it at the end
    (resource.getrusage: the children's figure is the largest child's so far, not this one's)."""
    import subprocess
    import sys

    report = "; import resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    done = subprocess.run([sys.executable, "-c", code + report], check=True, capture_output=True, text=True)
    return int(done.stdout.split()[-1]) / 1024


def test_a_huge_corrections_file_is_read_in_bounded_memory(tmp_path):
    """Finding 13: a file of 2 million undecided rows (and one decision) reads row by row: the process peaks within
    25 MB of one reading a file of one row (measured: +1 MB), and the hash is the whole file's."""
    big = tmp_path / "big.csv"
    with open(big, "w") as handle:
        handle.write("path,action,label\ncats/x.jpg,exclude,\n")
        handle.write("a,,\n" * MEMORY_ROWS)
    small = _write(tmp_path / "small.csv", [["cats/x.jpg", "exclude", ""]])
    read = ("import sys; from zoolens.data.corrections import read_corrections; c = read_corrections(sys.argv[1]); "
            "assert c.exclude == {'cats/x.jpg'} and not c.relabel, c")
    base = _peak_rss_mb(f"import sys; sys.argv[1:] = [{str(small)!r}]; {read}")
    peak = _peak_rss_mb(f"import sys; sys.argv[1:] = [{str(big)!r}]; {read}")
    assert peak - base < 25, (base, peak)
    assert read_corrections(big).sha256 == hashlib.sha256(big.read_bytes()).hexdigest()
