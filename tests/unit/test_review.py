"""The review loop's checks, without a browser. The web app's review page in a real browser (a decision lands in the
corrections file, "Retrain now", the photo folder untouched): tests/integration/test_review_retrain.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from zoolens.apps.review import check_corrections_file
from zoolens.errors import ZoolensError


def test_the_corrections_file_may_not_lie_among_the_photos(tmp_path):
    data = tmp_path / "data"
    (data / "cats").mkdir(parents=True)
    with pytest.raises(ZoolensError, match="is inside the data folder"):
        check_corrections_file(data, data / "cats" / "fix.csv")
    (tmp_path / "split.csv").write_text("path,label,split\n")
    with pytest.raises(ZoolensError, match="not a corrections file"):
        check_corrections_file(data, tmp_path / "split.csv")


def test_zoolens_web_refuses_a_corrections_file_inside_the_data_before_starting(tmp_path, capsys):
    from PIL import Image

    from zoolens.cli import main

    data = tmp_path / "data"
    for name in ("cats", "dogs"):
        (data / name).mkdir(parents=True)
        Image.new("RGB", (64, 64), "white").save(data / name / "one.jpg")
    assert main(["web", "--review", str(data), "--corrections", str(data / "fix.csv"), "--headless"]) != 0
    assert "is inside the data folder" in capsys.readouterr().err
    assert not (data / "fix.csv").exists()


def test_a_corrections_file_without_a_review_is_refused(capsys):
    from zoolens.cli import main

    assert main(["web", "--corrections", "fix.csv", "--headless"]) != 0
    assert "--corrections: is where the review page writes: it needs --review DATA" in capsys.readouterr().err


def test_the_review_shows_the_kinds_of_flag_chosen_and_can_hide_the_decided():
    import numpy as np

    from zoolens.apps.review import FLAG_KINDS, flag_kind, shown_flags
    from zoolens.evaluation.data_issues import (
        IN_DOUBT, MISLABELLED, NEAR_COPY, OUTLIER, DataIssues, LabelIssue, NearCopy, Outlier, review_rows)

    issues = DataIssues(Path("data"), ["cats", "dogs"], {}, [], np.zeros(0, int), [], np.zeros((0, 2)))
    issues.label_issues = [LabelIssue("cats/dog.jpg", "cats", "dogs", 0.9, "train"),
                           LabelIssue("dogs/cat.jpg", "dogs", "cats", 0.8, "train")]
    issues.near_duplicates = [NearCopy("cats/a.jpg", "cats/a-copy.jpg", similarity=0.97, pixel_match=0.99,
                                       part_a="train", part_b="test", crosses_split=True, same_label=True)]
    issues.outliers = [Outlier("dogs/blank.jpg", "dogs", 6.0, 0.5, "train"),
                       Outlier("cats/dog.jpg", "cats", 5.0, 0.4, "train")]  # flagged once, as mislabelled
    flags = review_rows(issues)
    assert [flag_kind(flag) for flag in flags] == [MISLABELLED, MISLABELLED, NEAR_COPY, OUTLIER]
    assert list(FLAG_KINDS) == [MISLABELLED, IN_DOUBT, NEAR_COPY, OUTLIER]
    assert [flag.path for flag in shown_flags(flags, [NEAR_COPY, OUTLIER])] == ["cats/a-copy.jpg", "dogs/blank.jpg"]
    assert [flag.path for flag in shown_flags(flags, FLAG_KINDS, hide={"cats/dog.jpg", "dogs/blank.jpg"})] == [
        "dogs/cat.jpg", "cats/a-copy.jpg"]
    assert shown_flags(flags, []) == []
    from zoolens.apps.review import believed_class

    assert [believed_class(flag, "", issues.classes) for flag in flags] == ["dogs", "cats", "cats", "dogs"]
    assert believed_class(flags[3], "cats", issues.classes) == "cats"  # a decision made


def test_training_photos_in_doubt_come_after_the_likely_mislabelled_with_their_suggestion():
    """A training photo its heads answer another class, though not confidently enough for confident learning, is
    shown for review (after the likely mislabelled) with the class the heads lean to; a validation one is not."""
    import numpy as np

    from zoolens.apps.review import believed_class, flag_kind
    from zoolens.evaluation.data_issues import IN_DOUBT, MISLABELLED, DataIssues, LabelIssue, review_rows

    probabilities = np.array([[0.02, 0.98], [0.35, 0.65], [0.3, 0.7], [0.9, 0.1]])
    issues = DataIssues(Path("data"), ["cats", "dogs"], {}, ["cats/a.jpg", "cats/b.jpg", "cats/c.jpg", "cats/d.jpg"],
                        np.zeros(4, int), ["train", "train", "val", "train"], probabilities)
    issues.label_issues = [LabelIssue("cats/a.jpg", "cats", "dogs", 0.98, "train")]
    flags = review_rows(issues)
    assert [(flag.path, flag_kind(flag)) for flag in flags] == [("cats/a.jpg", MISLABELLED), ("cats/b.jpg", IN_DOUBT)]
    assert flags[1].score == 0.65 and believed_class(flags[1], "", issues.classes) == "dogs"
