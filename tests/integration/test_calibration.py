"""Temperature scaling: fitted when a model has enough validation photos, it lowers their negative log-likelihood
and calibration error; and every way of asking a model (Model.predict, the CLI's CSV, batch prediction locally
and on Ray, the ONNX export, the web app) divides by the same temperature."""

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import copy_subset

import zoolens
from zoolens.inference.model import Model

TEMPERATURE = 2.5


def probabilities_at(model: Model, photos: list[Path], temperature: float) -> np.ndarray:
    """The head's softmax at `temperature`, computed here from the model's features and weights."""
    features = model.features_of_paths(photos).features[:, : model.network.backbone.feature_dim]
    dense = model.network.head[-1]
    logits = features @ dense.weight.detach().numpy().T + dense.bias.detach().numpy()
    scaled = np.exp((logits - logits.max(1, keepdims=True)) / temperature)
    return scaled / scaled.sum(1, keepdims=True)


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    confidence, correct = probabilities.max(1), probabilities.argmax(1) == labels
    edges = np.linspace(0, 1, bins + 1)
    error = 0.0
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            error += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(error)


def test_a_temperature_is_fitted_on_enough_validation_photos_and_lowers_their_nll_and_ece(imagewoof, tmp_path):
    data = copy_subset(imagewoof / "train", tmp_path / "woof", per_class=25)  # ten breeds, one folder each
    model = zoolens.train(data, tmp_path / "model", progress=False, ratios="40/40/20", image_size=160)
    assert model.meta["calibration"]["fitted_on"] == "100 validation photos"
    with open(tmp_path / "model" / "split.csv", newline="") as handle:
        validation = [row for row in csv.DictReader(handle) if row["split"] == "val"]
    photos = [data / row["path"] for row in validation]
    labels = np.array([model.classes.index(row["label"]) for row in validation])
    calibrated, plain = (probabilities_at(model, photos, t) for t in (model.temperature, 1.0))
    assert model.temperature != pytest.approx(1.0, abs=0.05)
    nll = {name: -np.log(p[np.arange(len(labels)), labels]).mean() for name, p in
           (("calibrated", calibrated), ("plain", plain))}
    # Measured (the head trained by models/dense_head): temperature 0.74, NLL 0.471 against 0.500, ECE 0.052 against 0.068.
    assert nll["calibrated"] < nll["plain"] - 0.02, nll
    assert expected_calibration_error(calibrated, labels) < expected_calibration_error(plain, labels) - 0.01
    # Model.predict gives the calibrated probabilities, not the plain ones.
    answers = model.predict(photos[:5], top_k=1, open_set="off")
    assert [a.confidence for a in answers] == pytest.approx(list(calibrated[:5].max(1)), abs=1e-5)


@pytest.fixture(scope="module")
def warmer_model(trained_model, tmp_path_factory) -> Model:
    """The session's model (whose validation part is under 50 photos, so its temperature is 1) saved with a
    temperature of 2.5 in its zoolens.json, and loaded as any saved model is."""
    folder = tmp_path_factory.mktemp("calibrated") / "model"
    shutil.copytree(trained_model.path, folder)
    meta = json.loads((folder / "zoolens.json").read_text())
    meta["calibration"] = {"temperature": TEMPERATURE, "fitted_on": "set by the test"}
    (folder / "zoolens.json").write_text(json.dumps(meta))
    return Model.load(folder)


@pytest.fixture(scope="module")
def photos(other_animals, tmp_path_factory) -> Path:
    return copy_subset(other_animals, tmp_path_factory.mktemp("calibration-photos") / "photos", per_class=3)


def photo_list(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def expected_top(model: Model, paths: list[Path]) -> dict[str, list[float]]:
    probabilities = probabilities_at(model, paths, TEMPERATURE)
    return {str(path): sorted(row, reverse=True)[:3] for path, row in zip(paths, probabilities)}


def test_the_temperature_changes_the_answers(warmer_model, photos):
    paths = photo_list(photos)
    warm, plain = probabilities_at(warmer_model, paths, TEMPERATURE), probabilities_at(warmer_model, paths, 1.0)
    assert (plain.max(1) - warm.max(1)).max() > 0.05  # else the paths below could not tell it was applied


def test_model_predict_and_the_web_app_apply_the_temperature(warmer_model, photos):
    from zoolens.apps.web import check_upload, classify_upload

    paths = photo_list(photos)
    wanted = expected_top(warmer_model, paths)
    for answer in warmer_model.predict(paths, top_k=3, open_set="off"):
        assert [p for _, p in answer.top] == pytest.approx(wanted[answer.source], abs=1e-5)
    for path in paths:
        answer = classify_upload(warmer_model, check_upload(path.name, path.read_bytes()), 3, 0.0, open_set="off")
        assert [p for _, p in answer.top] == pytest.approx(wanted[str(path)], abs=1e-4)


def test_the_command_lines_csv_applies_the_temperature(warmer_model, photos, tmp_path):
    paths = photo_list(photos)
    wanted = expected_top(warmer_model, paths)
    table = tmp_path / "answers.csv"
    result = subprocess.run([sys.executable, "-m", "zoolens.cli", "predict", str(warmer_model.path), str(photos),
                             "--top-k", "3", "--open-set", "off", "--csv", str(table)], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    with open(table, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(row["path"] for row in rows) == sorted(wanted)
    for row in rows:
        assert [float(row[f"top{i}_confidence"]) for i in (1, 2, 3)] == pytest.approx(wanted[row["path"]], abs=1e-4)


@pytest.mark.parametrize("engine", ["local", pytest.param("ray", marks=pytest.mark.slow)])
def test_batch_prediction_applies_the_temperature(warmer_model, photos, tmp_path, engine):
    import pyarrow.parquet as pq

    from zoolens.inference.batch import predict_folder

    options = {"workers": 0} if engine == "local" else {"engine": "ray", "concurrency": 1}
    predict_folder(warmer_model, photos, tmp_path / "results", top_k=3, open_set="off", progress=False, **options)
    wanted = expected_top(warmer_model, photo_list(photos))
    rows = pq.read_table(tmp_path / "results").to_pylist()
    assert sorted(row["path"] for row in rows) == sorted(wanted)
    for row in rows:
        assert [row[f"top{i}_confidence"] for i in (1, 2, 3)] == pytest.approx(wanted[row["path"]], abs=1e-4)


# exports the whole network to ONNX
def test_the_onnx_export_applies_the_temperature(warmer_model, photos, tmp_path):
    import onnxruntime as ort

    from zoolens.data.images import open_image
    from zoolens.data.transforms import preprocess_array
    from zoolens.inference.export import export_onnx

    paths = photo_list(photos)
    session = ort.InferenceSession(str(export_onnx(warmer_model, tmp_path / "m.onnx")),
                                   providers=["CPUExecutionProvider"])
    images = np.stack([preprocess_array(open_image(p), warmer_model.preprocessing) for p in paths])
    exported = session.run(None, {"images": images})[0]
    assert exported == pytest.approx(probabilities_at(warmer_model, paths, TEMPERATURE), abs=1e-4)
