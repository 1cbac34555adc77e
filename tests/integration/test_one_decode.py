"""One photo, one answer: a photo decodes and is resized the same way on every surface (issue 33, item 7).

A large JPEG decodes at reduced scale (Pillow's draft) when given by its path; before, the same bytes uploaded to the
web app decoded whole, and the answer differed ("dogs (57.9 %)" in `zoolens predict`, "none of these" in the app).
Each surface here gets the same photo and must give the same pixels, or the same probabilities."""

import csv
import io
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from zoolens.data.transforms import network_pixels

TOLERANCE = 1e-5
JPEGS = ["large.jpg", "sideways.jpg", "photo.png"]


@pytest.fixture(scope="module")
def photos(small_animals, tmp_path_factory) -> dict[str, Path]:
    """A real cat photo as a 2400x1800 camera-sized JPEG (decoded at a quarter of its size by its path), the same
    JPEG stored turned on its side with an EXIF orientation, and a PNG; in a folder of their own."""
    folder = tmp_path_factory.mktemp("one-decode") / "photos"
    folder.mkdir()
    cat = Image.open(sorted((small_animals / "cats").iterdir())[0]).convert("RGB")
    large = cat.resize((2400, 1800), Image.BICUBIC)
    large.save(folder / "large.jpg", quality=92)
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90° clockwise: stored turned the other way
    large.transpose(Image.Transpose.ROTATE_90).save(folder / "sideways.jpg", quality=92, exif=exif.tobytes())
    cat.resize((900, 700), Image.BICUBIC).save(folder / "photo.png")
    return {path.name: path for path in sorted(folder.iterdir())}


def all_probabilities(prediction, classes: list[str]) -> np.ndarray:
    assert prediction.error is None, prediction.error
    found = dict(prediction.top)
    assert sorted(found) == sorted(classes), prediction.top  # top_k = every class
    return np.array([found[name] for name in classes])


def reference(model, photo: Path) -> np.ndarray:
    """The probabilities of the pixels the one preprocessing makes of the file."""
    return model.predict_proba_pixels(network_pixels(photo, model.preprocessing)[None])[0]


def test_the_large_jpeg_really_decodes_at_reduced_scale(trained_model, photos):
    """The photo this file is about: decoded whole it gives other pixels, so a surface that did would be caught."""
    from zoolens.data.images import open_image
    from zoolens.data.transforms import cropped_pixels

    prep = trained_model.preprocessing
    whole = cropped_pixels(open_image(photos["large.jpg"]), prep)
    assert not np.array_equal(whole, network_pixels(photos["large.jpg"], prep))


@pytest.mark.parametrize("name", JPEGS)
def test_the_api_gives_one_answer_for_a_path_its_bytes_and_an_open_file(trained_model, photos, name):
    photo = photos[name]
    classes, expected = trained_model.classes, reference(trained_model, photo)
    with open(photo, "rb") as handle:
        answers = trained_model.predict([photo, str(photo), photo.read_bytes(), bytearray(photo.read_bytes()), handle],
                                        top_k=len(classes))
    for answer in answers:
        np.testing.assert_allclose(all_probabilities(answer, classes), expected, atol=TOLERANCE, err_msg=answer.source)
    assert answers[4].source == str(photo)  # an open file is named after its file


def test_a_pil_image_is_taken_as_decoded(trained_model, photos):
    """A PIL image handed in is already decoded: its own pixels, upright by its EXIF, resized and cropped."""
    from zoolens.data.transforms import cropped_pixels

    image = Image.open(photos["sideways.jpg"])
    image.load()
    classes = trained_model.classes
    expected = trained_model.predict_proba_pixels(
        cropped_pixels(image.transpose(Image.Transpose.ROTATE_270).convert("RGB"), trained_model.preprocessing)[None])
    answer = trained_model.predict(image, top_k=len(classes))[0]
    np.testing.assert_allclose(all_probabilities(answer, classes), expected[0], atol=TOLERANCE)


@pytest.mark.parametrize("name", JPEGS)
def test_the_web_and_desktop_apps_answer_as_the_cli_does(trained_model, photos, name, tmp_path):
    from zoolens.apps import web
    from zoolens.apps.common import Predictor  # what the web app loads for a model folder, and the desktop app
    from zoolens.cli.program import main

    photo, classes = photos[name], trained_model.classes
    expected = reference(trained_model, photo)
    table = tmp_path / "cli.csv"
    assert main(["predict", str(trained_model.path), str(photo), "--top-k", str(len(classes)),
                 "--csv", str(table)]) == 0
    with open(table, newline="") as handle:
        row = next(csv.DictReader(handle))
    cli = {row[f"top{i}_label"]: float(row[f"top{i}_confidence"]) for i in range(1, len(classes) + 1)}
    np.testing.assert_allclose([cli[name] for name in classes], expected, atol=TOLERANCE)

    predictor = Predictor(trained_model.path)
    upload = web.check_upload(photo.name, photo.read_bytes())
    assert upload.problem is None
    uploaded = web.classify_upload(predictor, upload, len(classes), 0.0)
    np.testing.assert_allclose(all_probabilities(uploaded, classes), expected, atol=TOLERANCE)

    opened = predictor.predict([photo], top_k=len(classes), min_confidence=0.0)[0]
    np.testing.assert_allclose(all_probabilities(opened, classes), expected, atol=TOLERANCE)
    assert uploaded.describe() == opened.describe() == trained_model.predict(photo).pop().describe()


def test_a_batch_job_answers_as_the_api_does(trained_model, photos, tmp_path):
    from zoolens.inference.batch import predict_folder

    classes = trained_model.classes
    root = Path(next(iter(photos.values()))).parent
    out = tmp_path / "results.parquet"
    predict_folder(trained_model, root, out, top_k=len(classes), workers=0, progress=False)
    rows = {Path(row["path"]).name: row for row in pq.read_table(out).to_pylist()}
    assert sorted(rows) == sorted(photos)
    for name, photo in photos.items():
        found = {rows[name][f"top{i}_label"]: rows[name][f"top{i}_confidence"] for i in range(1, len(classes) + 1)}
        np.testing.assert_allclose([found[c] for c in classes], reference(trained_model, photo), atol=TOLERANCE,
                                   err_msg=name)


def test_a_batch_jobs_decoding_workers_make_the_same_pixels(trained_model, photos):
    from zoolens.inference.batch.local import decode_frame

    for photo in photos.values():
        pixels, problem, _ = decode_frame(photo, trained_model.preprocessing)
        assert problem == "" and np.array_equal(pixels, network_pixels(photo, trained_model.preprocessing))


def test_grad_cam_looks_at_the_pixels_every_answer_sees(trained_model, photos):
    from zoolens.evaluation.explain import explain

    prep = trained_model.preprocessing
    for photo in photos.values():
        by_path, by_bytes = explain(trained_model, [photo, photo.read_bytes()], method="gradcam")
        expected = network_pixels(photo, prep)
        for explanation in (by_path, by_bytes):
            assert explanation.error is None
            assert np.array_equal(np.asarray(explanation.image), expected), photo.name
        assert by_bytes.confidence == pytest.approx(by_path.confidence, abs=TOLERANCE)
        assert by_path.confidence == pytest.approx(reference(trained_model, photo).max(), abs=1e-4)  # PyTorch, ONNX


def test_fine_tuning_trains_on_the_pixels_every_answer_sees(trained_model, photos):
    import torch

    from zoolens.data.folders import Sample
    from zoolens.data.transforms import normalised
    from zoolens.runtime.distributed import Processes
    from zoolens.training.config import TrainConfig
    from zoolens.training.photos import photo_batches

    prep = trained_model.preprocessing
    samples = [Sample(photo, "cats") for photo in photos.values()]
    config = TrainConfig(augmentation=None, workers=0, batch_size=len(samples))
    batches = photo_batches({"train": samples, "val": samples}, ["cats"], prep, config, Processes())
    validation = next(iter(batches.validation()))[0]
    expected = np.stack([normalised(network_pixels(photo, prep), prep) for photo in photos.values()])
    np.testing.assert_allclose(validation.numpy(), expected, atol=1e-6)
    trained = torch.cat([batch[0] for batch in batches.training(0)])  # no augmentation: the same, shuffled
    assert sorted(float(t.sum()) for t in trained) == pytest.approx(sorted(float(e.sum()) for e in expected), abs=1e-2)


def test_a_folder_is_walked_as_the_cli_walks_it(trained_model, photos, tmp_path):
    """`Model.predict("folder/")` answers for the photos below it, in the order `zoolens predict folder/` takes."""
    from zoolens.cli.common import expand_inputs

    root = tmp_path / "season"
    (root / "b-camera").mkdir(parents=True)
    (root / "a-camera" / ".thumbnails").mkdir(parents=True)
    (root / "b-camera" / "2.jpg").write_bytes(photos["large.jpg"].read_bytes())
    (root / "a-camera" / "1.png").write_bytes(photos["photo.png"].read_bytes())
    (root / "a-camera" / "notes.txt").write_text("not a photo")
    (root / "a-camera" / ".hidden.jpg").write_bytes(photos["large.jpg"].read_bytes())
    (root / "a-camera" / ".thumbnails" / "t.jpg").write_bytes(photos["large.jpg"].read_bytes())
    (root / "top.jpg").write_bytes(photos["sideways.jpg"].read_bytes())
    walked = [str(root / "top.jpg"), str(root / "a-camera" / "1.png"), str(root / "b-camera" / "2.jpg")]
    assert [str(p) for p in expand_inputs([str(root)])] == walked
    for given in (root, str(root), [root], [str(root), io.BytesIO(photos["photo.png"].read_bytes())]):
        answers = trained_model.predict(given)
        assert [a.source for a in answers[:3]] == walked
        assert all(a.error is None for a in answers)
    assert len(trained_model.predict([root, photos["photo.png"]])) == 4


def test_an_empty_folder_has_no_answers_and_says_so(trained_model, tmp_path, caplog):
    (tmp_path / "empty").mkdir()
    assert trained_model.predict(tmp_path / "empty") == []
    assert f"{tmp_path / 'empty'}: no photo files in this folder" in caplog.text
