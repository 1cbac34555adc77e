"""Data issues without a network: ranking the labels starts no process, and suggested corrections fix only undecided
training photos, relabelling only where sure. The command on real photos: tests/integration/test_data_issues.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def test_ranking_the_labels_starts_no_process(monkeypatch):
    """cleanlab forks a process pool unless told not to; forked from the web app's threaded server, a child hung
    the review page forever. Both of its uses here must run in this process."""
    import multiprocessing
    from types import SimpleNamespace

    from zoolens.evaluation.data_issues import DataIssues, ranked_label_issues
    from zoolens.evaluation.verdict import probably_mislabelled

    def no_pool(*args, **kwargs):
        raise AssertionError("a process pool was started")

    monkeypatch.setattr(multiprocessing, "Pool", no_pool)
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 40)
    probabilities = np.full((120, 3), 0.05)
    probabilities[np.arange(120), labels] = 0.9
    probabilities[:6] = [0.05, 0.9, 0.05]  # six cats that look like dogs
    probabilities = probabilities + rng.uniform(0, 0.01, probabilities.shape)
    probabilities /= probabilities.sum(1, keepdims=True)
    issues = DataIssues(Path("data"), ["cats", "dogs", "panda"], {}, [f"p{i}.jpg" for i in range(120)], labels,
                        ["train"] * 120, probabilities)
    flagged = {row.path for row in ranked_label_issues(issues)}
    assert flagged and flagged <= {f"p{i}.jpg" for i in range(6)}
    evaluation = SimpleNamespace(y_true=labels, y_pred=probabilities.argmax(1), probabilities=probabilities,
                                 classes=["cats", "dogs", "panda"])
    flagged = set(np.flatnonzero(probably_mislabelled(evaluation)).tolist())
    assert flagged and flagged <= set(range(6))


def test_suggested_corrections_fix_only_undecided_training_photos_relabelling_only_where_sure():
    """Training photos in doubt (flagged, or answered another class by their out-of-fold heads) are relabelled where
    the heads are sure of the class, left out where not, most doubtful first; validation and test photos, photos a
    person decided on and photos the heads agree with are left alone; the person's decisions come first, as written."""
    from zoolens.data.corrections import Corrections
    from zoolens.evaluation.data_issues import (
        MISLABELLED, SURE_RELABEL, DataIssues, IN_DOUBT, LabelIssue, suggested_corrections, suggested_fixes)

    probabilities = np.array([
        [0.03, 0.95, 0.02],  # a0: a cat the heads are sure is a dog
        [0.05, 0.60, 0.35],  # a1: a cat spread over dogs and panda: in doubt, not sure of either
        [0.90, 0.05, 0.05],  # a2: a cat, agreed
        [0.10, 0.88, 0.02],  # a3: a cat that looks like a dog, but a validation photo
        [0.02, 0.97, 0.01],  # a4: the same in the test part
        [0.01, 0.98, 0.01],  # a5: the person kept it a cat
        [0.40, 0.45, 0.15],  # a6: a dog, barely agreed
    ])
    labels = np.array([0, 0, 0, 0, 0, 0, 1])
    roles = ["train", "train", "train", "val", "test", "train", "train"]
    person = Corrections(keep={"a5.jpg"}, rows=[{"path": "a5.jpg", "action": "keep", "label": ""}])
    issues = DataIssues(Path("data"), ["cats", "dogs", "panda"], {}, [f"a{i}.jpg" for i in range(7)], labels, roles,
                        probabilities, corrections=person)
    issues.label_issues = [LabelIssue("a0.jpg", given="cats", suggested="dogs", score=0.97, part="train")]
    fixes = suggested_fixes(issues)
    assert [(row.path, row.action, row.label, row.reason) for row in fixes] == [
        ("a0.jpg", "relabel", "dogs", MISLABELLED), ("a1.jpg", "exclude", "", IN_DOUBT)]
    assert fixes[1].probability < SURE_RELABEL <= fixes[0].probability
    # the corrections file's rows: the person's as written, then each fix with the columns it has always had
    assert suggested_corrections(issues) == person.rows + [
        {"path": "a0.jpg", "action": "relabel", "label": "dogs", "given": "cats", "suggested": "dogs",
         "probability": 0.95, "score": 0.97, "reason": MISLABELLED},
        {"path": "a1.jpg", "action": "exclude", "label": "", "given": "cats", "suggested": "dogs",
         "probability": 0.6, "score": 0.95, "reason": IN_DOUBT}]
