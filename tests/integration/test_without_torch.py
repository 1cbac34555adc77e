"""Answering without PyTorch: a saved model predicts with ONNX Runtime, NumPy and Pillow alone (the CLI, batch jobs,
Model.predict), with the same answers as the PyTorch network, and builds nothing it does not need."""

from pathlib import Path

import numpy as np
import pytest
from helpers import answers_without_torch, run_without_torch
from PIL import Image

from zoolens.inference.model import Model


def answers_here(model: Model, photos: list[Path]) -> list[list]:
    return [[a.verdict, a.label, a.reason, round(a.confidence, 4)] for a in model.predict(photos, top_k=3)]


@pytest.fixture
def mixed_photos(small_animals, tmp_path) -> list[Path]:
    """Photos of each of the model's classes, a person, an object, and one that is not a photo at all; each with
    one corner pixel drawn at random, so that no feature cache knows them and the network must run."""
    from skimage import data

    corner = np.random.default_rng()
    pictures = [(name, np.asarray(Image.open(sorted((small_animals / name).iterdir())[-1]).convert("RGB")))
                for name in ("cats", "dogs", "panda")]
    photos = []
    for name, pixels in pictures + [("astronaut", data.astronaut()), ("coffee", data.coffee())]:
        pixels = pixels.copy()
        pixels[0, 0] = corner.integers(0, 256, 3)
        photos.append(tmp_path / f"{name}-{len(photos)}.png")
        Image.fromarray(pixels).save(photos[-1])
    (tmp_path / "notes.jpg").write_text("not a photo")
    return photos + [tmp_path / "notes.jpg"]


def test_a_saved_model_answers_without_torch_as_it_does_with_it(trained_model, mixed_photos):
    without = answers_without_torch(trained_model.path, mixed_photos)  # first: no cached features to find
    here = answers_here(Model.load(trained_model.path), mixed_photos)
    assert without == here
    verdicts = [verdict for verdict, *_ in here]
    assert verdicts[:3] == ["class"] * 3 and verdicts[3:5] == ["none of these"] * 2 and verdicts[5] == "error"


def test_the_command_line_predicts_without_torch(trained_model, mixed_photos, tmp_path):
    csv = tmp_path / "answers.csv"
    done = run_without_torch("from zoolens.cli.program import run\nsys.argv = ['zoolens'] + sys.argv[1:]\nrun()",
                             "predict", trained_model.path, *mixed_photos[:4], "--csv", csv)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "none of these: a person" in done.stdout
    assert len(csv.read_text().splitlines()) == 5


def test_a_batch_job_runs_without_torch(trained_model, small_animals, tmp_path):
    out = tmp_path / "results.parquet"
    done = run_without_torch("from zoolens.cli.program import run\nsys.argv = ['zoolens'] + sys.argv[1:]\nrun()",
                             "predict", trained_model.path, small_animals / "cats", "--out", out, "--workers", "2")
    assert done.returncode == 0, done.stderr[-2000:]
    import pyarrow.dataset

    rows = pyarrow.dataset.dataset(out).to_table().to_pylist()
    assert len(rows) == len(list((small_animals / "cats").iterdir()))
    assert sum(row["label"] == "cats" for row in rows) >= 0.9 * len(rows)


def test_loading_reads_the_head_and_builds_no_network(trained_model):
    model = Model.load(trained_model.path)
    assert "network" not in vars(model)  # not built
    weight, bias = model.head.weight, model.head.bias
    dense = model.network.head[-1]  # built now, on demand, from the same file
    assert np.array_equal(weight, dense.weight.detach().numpy()) and np.array_equal(bias, dense.bias.detach().numpy())


def test_cropping_matches_torchvision_pixel_for_pixel():
    from torchvision.transforms.v2 import functional as F

    from zoolens.data.transforms import Preprocessing, cropped_pixels

    rng = np.random.default_rng(0)
    sizes = [(500, 375), (375, 500), (256, 256), (257, 1000), (1000, 257), (100, 80), (3, 700), (301, 299)]
    for width, height in sizes:
        image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
        for prep in (Preprocessing(), Preprocessing(240, 274), Preprocessing(300, 200)):
            expected = np.asarray(F.center_crop(F.resize(image, prep.resize_size, antialias=True), prep.input_size))
            assert np.array_equal(cropped_pixels(image, prep), expected), (width, height, prep)


def test_an_export_that_differs_from_pytorch_is_not_kept(tmp_path, monkeypatch, caplog):
    import torch

    from zoolens.data.transforms import Preprocessing
    from zoolens.runtime import features

    monkeypatch.setenv("ZOOLENS_CACHE", str(tmp_path))
    monkeypatch.setattr(features, "_ENGINES", {})
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    original = features.write_onnx

    def exports_another(_, path, size, name, **options):
        other = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
        original(features.pixels_to_features(other, Preprocessing(16, 18)), path, size, name, **options)

    monkeypatch.setattr(features, "write_onnx", exports_another)
    network = features.FeatureExtractor("differs", 4, Preprocessing(16, 18), lambda: module)
    engine = features.make_engine(network)
    assert isinstance(engine, features.TorchEngine)  # PyTorch answers instead
    assert "differs from PyTorch" in caplog.text
    assert not features.onnx_path("differs").exists()
    monkeypatch.setattr(features, "write_onnx", original)
    monkeypatch.setattr(features, "_ENGINES", {})
    assert isinstance(features.make_engine(network), features.OnnxEngine)
    assert features.onnx_path("differs").exists()


def test_the_imagenet_names_are_torchvisions():
    from torchvision.models import MobileNet_V2_Weights

    from zoolens.models.catalogue import torchvision_imagenet_1k

    assert torchvision_imagenet_1k() == list(MobileNet_V2_Weights.IMAGENET1K_V1.meta["categories"])


def test_the_apps_and_imagenet_answers_need_no_torch(trained_model, mixed_photos):
    code = """
import zoolens.apps.desktop, zoolens.apps.web
from zoolens.apps.common import Predictor
for predictor in (Predictor(sys.argv[1]), Predictor(None)):
    print(*[a.verdict for a in predictor.predict([open(p, "rb").read() for p in sys.argv[2:]])])
"""
    from zoolens.inference.imagenet import ImageNetClassifier

    ImageNetClassifier()  # exported to ONNX once (with PyTorch), as the first use on a machine does
    done = run_without_torch(code, trained_model.path, mixed_photos[0], mixed_photos[3])
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == ["class none of these", "class none of these"]


def test_photos_are_decoded_in_this_process_off_the_main_thread(trained_model, tmp_path, monkeypatch):
    """A page of the web app runs in a thread of its server: a process forked from there can hang on a lock another
    thread held. Off the main thread, features are computed without starting worker processes."""
    import multiprocessing
    import threading

    rng = np.random.default_rng()
    photos = []
    for i in range(70):  # enough for worker processes on the main thread; new to every feature cache
        photos.append(tmp_path / f"noise-{i}.png")
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(photos[-1])

    def no_pool(*args, **kwargs):
        raise AssertionError("a process pool was started")

    monkeypatch.setattr(multiprocessing, "Pool", no_pool)
    model, found = Model.load(trained_model.path), []
    thread = threading.Thread(target=lambda: found.append(model.features_of_paths(photos)))
    thread.start()
    thread.join()
    assert len(found) == 1 and found[0].usable.all() and len(found[0].features) == 70
