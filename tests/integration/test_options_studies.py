"""Options as types for the study commands: tune and k-fold refuse a wrong method or k in one line before anything
runs (the training modules imported). The other options: tests/unit/test_options.py."""

from __future__ import annotations

import pytest

from zoolens.errors import ConfigError


# imports the training modules (seconds)
def test_tune_and_kfold_refuse_a_wrong_method_or_k_before_anything(tmp_path):
    from zoolens.studies.kfold import run_kfold
    from zoolens.studies.tune import run_tune

    with pytest.raises(ConfigError) as caught:
        run_tune(tmp_path / "photos", tmp_path / "out", method="bayes")
    assert str(caught.value) == "method: 'bayes': choose from tpe, random, grid"
    with pytest.raises(ConfigError) as caught:
        run_kfold(tmp_path / "photos", tmp_path / "out", k=1)
    assert str(caught.value) == "k: must be at least 2, not 1"
    assert not (tmp_path / "out").exists()
