"""The desktop app given every bad input and every hostile model: a message in the window, never a dead worker."""

from __future__ import annotations

import pytest
from hardening_corpus import READABLE, make_corpus
from helpers import expected_refusals, hostile_models, open_app, pump_until


@pytest.fixture(scope="module")
def corpus(small_animals, tmp_path_factory):
    real = sorted((small_animals / "cats").glob("*.jpg"))[0].read_bytes()
    return make_corpus(tmp_path_factory.mktemp("desktop-corpus") / "bad", real)


def test_every_bad_photo_is_reported_in_the_window(root, trained_model, corpus):
    app = open_app(root, trained_model.path)
    for kind, reason in expected_refusals().items():
        app.classify_path(corpus[kind])
        pump_until(root, lambda: not app.busy, timeout=30)
        assert app.answer_text().startswith("Cannot read this photo") and reason in app.answer_text(), kind
    for kind in READABLE:
        app.classify_path(corpus[kind])
        pump_until(root, lambda: not app.busy, timeout=30)
        assert app.last_prediction is not None and app.last_prediction.error is None, (kind, app.answer_text())


def test_hostile_models_are_refused_in_the_window(root, trained_model, tmp_path):
    app = open_app(root, trained_model.path)
    for name, model in hostile_models(trained_model, tmp_path).items():
        app.load_model(model)
        pump_until(root, lambda: not app.busy, timeout=30)
        assert app.answer_text().startswith("Could not open the model: "), (name, app.answer_text())
    assert not (tmp_path / "code-ran").exists()
