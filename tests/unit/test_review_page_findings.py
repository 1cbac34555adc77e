"""The web app's review page reads its flagged photos as the frozen `Flag` findings `zoolens data issues` makes
(issue 33, item 3: dataclasses for findings, dicts only where a file is written); the page in a real browser:
tests/integration/test_review_retrain.py."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from zoolens.apps import web
from zoolens.evaluation.data_issues import (
    IN_DOUBT,
    MISLABELLED,
    NEAR_COPY,
    OUTLIER,
    DataIssues,
    Flag,
    LabelIssue,
    NearCopy,
    Outlier,
    review_rows,
)

NAMES = {"n01": "cats", "n02": "dogs"}  # the readable names the page shows for class ids


@pytest.fixture
def flags() -> list[Flag]:
    probabilities = np.array([[0.3, 0.7], [0.9, 0.1]])
    issues = DataIssues(Path("data"), ["n01", "n02"], NAMES, ["n01/b.jpg", "n02/c.jpg"], np.array([0, 1]),
                        ["train", "val"], probabilities)
    issues.label_issues = [LabelIssue("n01/dog.jpg", "n01", "n02", 0.9, "train")]
    issues.near_duplicates = [NearCopy("n01/a.jpg", "n01/a-copy.jpg", similarity=0.97, pixel_match=0.99,
                                       part_a="train", part_b="test", crosses_split=True, same_label=True)]
    issues.outliers = [Outlier("n02/blank.jpg", "n02", 6.0, 0.5, "train")]
    return review_rows(issues)


def test_the_flags_the_page_gets_are_frozen_findings(flags):
    assert [flag.reason.split(":")[0] for flag in flags][:2] == [MISLABELLED, IN_DOUBT]
    assert all(isinstance(flag, Flag) for flag in flags)
    with pytest.raises(dataclasses.FrozenInstanceError):
        flags[0].suggested = "n01"


def test_each_flags_caption_reads_the_finding(flags):
    review = SimpleNamespace(names=NAMES)
    captions = {flag.path: web.flag_caption(review, flag) for flag in flags}
    assert captions["n01/dog.jpg"] == "filed as cats, looks like dogs (90% sure it is not cats)"
    assert captions["n01/b.jpg"] == "filed as cats, label in doubt: may be dogs (70% sure it is not cats)"
    copy, outlier = (next(flag for flag in flags if flag.reason.startswith(kind)) for kind in (NEAR_COPY, OUTLIER))
    assert captions[copy.path] == copy.reason  # a pair of photos: filed under no one class
    assert captions[outlier.path] == outlier.reason + " (filed as dogs)"


def test_a_flag_becomes_a_dict_only_as_its_file_row(flags):
    """to_review.csv's row: the one place a flag is a dict."""
    row = flags[0].to_dict()
    assert row == {"path": "n01/dog.jpg", "action": "", "label": flags[0].label, "given": "n01", "suggested": "n02",
                   "score": flags[0].score, "reason": flags[0].reason}
    assert Flag(**{key: value for key, value in row.items() if key != "action"}) == flags[0]
