"""The model pipeline's steps alone: train names an option it does not know, and each step reads its own slice of
the features. The pipeline of a trained model: tests/integration/test_model_pipeline.py."""

import pytest

import zoolens
from zoolens.errors import ZoolensError


def test_train_names_an_option_it_does_not_know(small_animals, tmp_path):
    with pytest.raises(ZoolensError) as error:
        zoolens.train(small_animals, tmp_path / "m", epochz=3, progress=False)
    assert "'epochz' is not a setting" in str(error.value) and "epochs" in str(error.value)
    assert "\n" not in str(error.value) and not (tmp_path / "m").exists()


def test_the_steps_split_the_features_each_reads():
    import numpy as np

    from zoolens.data.transforms import Preprocessing
    from zoolens.inference.steps import FeatureStep
    from zoolens.runtime.features import FeatureExtractor

    own = FeatureExtractor("own", 3, Preprocessing(), lambda: None)
    beside = FeatureExtractor("beside", 2, Preprocessing(), lambda: None)
    features = np.arange(10, dtype=np.float32).reshape(2, 5)
    step = FeatureStep(own, beside)
    assert step.separate and step.extractor.members == (own, beside) and step.extractor.feature_dim == 5
    head, check = step.split(features)
    assert head.tolist() == [[0, 1, 2], [5, 6, 7]] and check.tolist() == [[3, 4], [8, 9]]
    alone = FeatureStep(own, own)
    assert not alone.separate and alone.extractor is own
    assert all(part is features for part in alone.split(features))
