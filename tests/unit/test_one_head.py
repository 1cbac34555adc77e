"""One head trainer (models.dense_head.fit_dense_head) for `zoolens train`'s head phase and `zoolens data issues`'
out-of-fold heads, and data issues' findings as dataclasses written to the same bytes as before."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zoolens.models.dense_head import HeadSettings, fit_dense_head


def separable(seed: int = 0, per_class: int = 60, classes: int = 3, width: int = 32):
    """Features of `classes` classes around their own centres, as cached pooled features are (non-negative)."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 3, (classes, width))
    labels = np.repeat(np.arange(classes), per_class)
    features = np.abs(centres[labels] + rng.normal(0, 0.5, (len(labels), width))).astype(np.float32)
    order = rng.permutation(len(labels))
    return features[order], labels[order]


def test_the_shared_head_trainer_fits_the_head_train_fits():
    """The trainer's head phase (run_phase on the NumPy device, as trainer.run_phases sets it up) and
    fit_dense_head with the run's settings end with the same weights and the same history."""
    from zoolens.training.config import TrainConfig
    from zoolens.training.loop import FeatureBatches, NumpyDevice, Optimization, head_settings, run_phase
    from zoolens.models.dense_head import DenseHead

    x, y = separable()
    train, val = (x[:150], y[:150]), (x[150:], y[150:])
    config = TrainConfig(seed=3, epochs=60, patience=4, lr=0.05)  # a rate at which it stops early, past its best
    head = DenseHead(x.shape[1], 3, config.dropout, config.seed)
    phase = config.phases()[0]
    progress = run_phase(phase, head, FeatureBatches(train, val, max(config.batch_size, 64), config.seed),
                         Optimization(config.optimizer, config.weight_decay, config.label_smoothing, config.seed),
                         NumpyDevice())
    shared, fitted = fit_dense_head(*train, *val, classes=3, settings=head_settings(config))
    assert fitted.rows == progress.rows and fitted.best_epoch < len(fitted.rows) < 60
    for name, weights in head.state_dict().items():
        assert np.array_equal(weights, shared.state_dict()[name]), name


def test_the_head_settings_by_default_are_trains():
    """Data issues fits its heads with HeadSettings(); they are `zoolens train`'s head settings."""
    from zoolens.training.config import TrainConfig
    from zoolens.training.loop import head_settings

    assert head_settings(TrainConfig()) == HeadSettings()
    assert head_settings(TrainConfig(seed=5)) == HeadSettings(seed=5)


def test_data_issues_judges_every_photo_with_heads_from_the_shared_trainer(monkeypatch):
    """Each fold's head comes from fit_dense_head with train's settings, fitted on the other folds' photos (less the
    share it stops on and is calibrated on) and judging only its own fold: the probabilities are those heads'
    calibrated softmax."""
    from zoolens.evaluation import data_issues
    from zoolens.models.dense_head import fit_temperature, head_probabilities

    x, y = separable(1)
    calls = []

    def spy(train_x, train_y, val_x=None, val_y=None, **kwargs):
        head, progress = fit_dense_head(train_x, train_y, val_x, val_y, **kwargs)
        calls.append((train_x, val_x, val_y, kwargs["settings"], head))
        return head, progress

    monkeypatch.setattr(data_issues, "fit_dense_head", spy)
    probabilities = data_issues.out_of_fold_probabilities(x, y, seed=2)
    assert len(calls) == data_issues.FOLDS
    rows = {row.tobytes(): i for i, row in enumerate(x)}
    judged = set()
    for train_x, val_x, val_y, settings, head in calls:
        assert settings == HeadSettings(seed=2)
        seen = {rows[row.tobytes()] for row in np.concatenate([train_x, val_x])}
        fold = sorted(set(range(len(x))) - seen)  # the photos this head never saw
        assert len(val_x) == round(data_issues.HEAD_VALIDATION * len(seen))
        temperature = fit_temperature(head(val_x), val_y)
        assert np.allclose(probabilities[fold], head_probabilities(head, x[fold], temperature))
        judged |= set(fold)
    assert judged == set(range(len(x)))
    assert (probabilities.argmax(1) == y).mean() > 0.9


# The files `zoolens data issues` wrote from these findings at d4f0c09, when they were dicts: byte for byte.
WRITTEN_BEFORE = {
    "class_balance.csv": "class,name,photos,recall\ncats,Cat,4,0.25\ndogs,dogs,0,nan\n",
    "label_issues.csv": "path,given,suggested,score,part\ncats/a0.jpg,cats,dogs,0.97,train\n",
    "near_duplicates.csv": "path_a,path_b,similarity,pixel_match,part_a,part_b,crosses_split,same_label\n"
                           "cats/a0.jpg,cats/=a2.jpg,0.9512,0.9876,train,test,True,True\n",
    "outliers.csv": "path,given,score,distance,part\ncats/a3.jpg,cats,5.25,0.4321,val\n",
    "suggested_corrections.csv": "path,action,label,given,suggested,probability,score,reason\n"
                                 "cats/k.jpg,keep,,,,,,\n"
                                 "cats/a0.jpg,relabel,dogs,cats,dogs,0.95,0.97,likely mislabelled\n"
                                 "cats/a1.jpg,exclude,,cats,dogs,0.6,0.95,"
                                 "its out-of-fold heads disagree with its label\n",
    "to_review.csv": "path,action,label,given,suggested,score,reason\n"
                     "cats/a0.jpg,,dogs,cats,dogs,0.97,likely mislabelled\n"
                     "cats/a1.jpg,,dogs,cats,dogs,0.95,its out-of-fold heads disagree with its label\n"
                     "cats/=a2.jpg,,,,,0.9876,near-copy of cats/a0.jpg in another part of the split\n"
                     "cats/a3.jpg,,,cats,,5.25,unlike the rest of its class\n",
}


def test_findings_are_dataclasses_written_as_the_dict_rows_were(tmp_path):
    from zoolens.data.corrections import Corrections
    from zoolens.evaluation.data_issues import (
        ClassCount, DataIssues, LabelIssue, NearCopy, Outlier, write_data_issues)

    probabilities = np.array([[0.03, 0.95, 0.02], [0.05, 0.60, 0.35], [0.90, 0.05, 0.05], [0.10, 0.88, 0.02]])
    person = Corrections(keep={"cats/k.jpg"}, rows=[{"path": "cats/k.jpg", "action": "keep", "label": ""}])
    issues = DataIssues(tmp_path / "no-photos", ["cats", "dogs", "panda"], {"cats": "Cat"},
                        ["cats/a0.jpg", "cats/a1.jpg", "cats/=a2.jpg", "cats/a3.jpg"], np.zeros(4, int),
                        ["train", "train", "test", "val"], probabilities, corrections=person)
    issues.label_issues = [LabelIssue("cats/a0.jpg", "cats", "dogs", 0.97, "train")]
    issues.near_duplicates = [NearCopy("cats/a0.jpg", "cats/=a2.jpg", 0.9512, 0.9876, "train", "test", True, True)]
    issues.outliers = [Outlier("cats/a3.jpg", "cats", 5.25, 0.4321, "val")]
    issues.balance = [ClassCount("cats", "Cat", 4, 0.25), ClassCount("dogs", "dogs", 0, float("nan"))]
    assert issues.leaks == issues.near_duplicates
    write_data_issues(issues, tmp_path / "issues")
    for name, text in WRITTEN_BEFORE.items():
        assert Path(tmp_path / "issues" / name).read_bytes() == text.encode(), name
