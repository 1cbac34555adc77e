"""The evaluation's metrics, written in NumPy to keep scikit-learn's import off `zoolens train`, are scikit-learn's:
the same figures, the same table, on answers with every kind of hole (a class never answered, one never true)."""

import numpy as np
import pytest
from sklearn import metrics as sk

from zoolens.evaluation.metrics import Evaluation


def evaluation_of(rng, photos: int, classes: int, missing_true: int | None = None) -> Evaluation:
    logits = rng.normal(size=(photos, classes)) * 3
    probabilities = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).astype(np.float32)
    probabilities[0] = np.eye(classes, dtype=np.float32)[0]  # certain: clipped inside the log loss
    y_true = rng.integers(0, classes, photos)
    if missing_true is not None:
        y_true[y_true == missing_true] = (missing_true + 1) % classes
    names = [f"class {'x' * i}" for i in range(classes)]
    return Evaluation(list(map(str, range(classes))), y_true, probabilities, [""] * photos, "test",
                      names=dict(zip(map(str, range(classes)), names)))


def flat(report: dict) -> dict:
    return {(row, column): value for row, values in report.items()
            for column, value in (values.items() if isinstance(values, dict) else [("", values)])}


@pytest.mark.parametrize(("photos", "classes", "missing_true"), [(600, 3, None), (50, 2, None), (40, 7, 3),
                                                                   (12, 4, None), (300, 20, 0)])
def test_the_metrics_are_scikit_learns(photos, classes, missing_true):
    evaluation = evaluation_of(np.random.default_rng(photos + classes), photos, classes, missing_true)
    labels = range(classes)
    y_true, y_pred = evaluation.y_true, evaluation.y_pred
    assert np.array_equal(evaluation.confusion(), sk.confusion_matrix(y_true, y_pred, labels=labels))
    assert evaluation.loss == pytest.approx(sk.log_loss(y_true, evaluation.probabilities, labels=labels), rel=1e-6)
    options = dict(labels=labels, target_names=evaluation.shown, zero_division=0)
    assert flat(evaluation.report_dict()) == pytest.approx(flat(sk.classification_report(
        y_true, y_pred, output_dict=True, **options)), rel=1e-12)
    assert evaluation.report_text() == sk.classification_report(y_true, y_pred, digits=4, **options)
