"""The exported ONNX classifier answers like the PyTorch one, and needs nothing of zoolens to run."""

import json

import numpy as np
import onnx
import onnxruntime as ort

from zoolens.data.images import open_image
from zoolens.data.transforms import eval_transform, preprocess_array
from zoolens.evaluation.evaluate import choose_photos
from zoolens.inference.export import check_export, export_onnx
from zoolens.inference.model import Model


# an ONNX export: 16 s
def test_export_matches_pytorch_and_carries_its_classes(trained_model, small_animals, tmp_path):
    model = Model.load(trained_model.path)
    path = export_onnx(model, tmp_path / "model.onnx")
    samples, _, _ = choose_photos(model, small_animals)
    check = check_export(model, path, samples)
    assert check.images == len(samples) == 36
    assert check.same_top1 == check.images
    assert check.max_probability_difference < 1e-4
    metadata = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(metadata["classes"]) == ["cats", "dogs", "panda"]
    assert json.loads(metadata["preprocessing"])["input_size"] == 224


# an ONNX export: 7 s
def test_exported_model_alone_agrees_with_model_predict(trained_model, other_animals, tmp_path):
    model = Model.load(trained_model.path)
    session = ort.InferenceSession(str(export_onnx(model, tmp_path / "m.onnx")), providers=["CPUExecutionProvider"])
    photos = sorted((other_animals / "dogs").iterdir())[:4]
    images = np.stack([preprocess_array(open_image(p), model.preprocessing) for p in photos])
    probabilities = session.run(None, {"images": images})[0]
    for row, prediction in zip(probabilities, model.predict(photos)):
        assert model.classes[int(row.argmax())] == prediction.label
        assert abs(float(row.max()) - prediction.confidence) < 1e-4


def test_numpy_preprocessing_equals_the_torchvision_pipeline(animals3):
    from zoolens.data.transforms import Preprocessing

    image = open_image(sorted((animals3 / "panda").iterdir())[3])
    for prep in (Preprocessing(), Preprocessing(128, 146)):
        assert np.abs(preprocess_array(image, prep) - eval_transform(prep)(image).numpy()).max() < 1e-5
