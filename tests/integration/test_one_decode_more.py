"""One photo, one answer, on the surfaces tests/test_one_decode.py does not cover (issue 33, item 7): the ImageNet mode
and the dog-breed app see the pixels `transforms.network_pixels` makes at their backbone's own size (they decoded at a
fixed 256 px), and the batch job's and Ray's person check opens a photo turned away as `Model.predict` does
(PERSON_MIN_SIDE), not the network's 224 px centre crop, so "a person" or "no animal" is the same answer everywhere."""

import io
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from zoolens.data.transforms import network_pixels
from zoolens.inference.prediction import open_input
from zoolens.models.faces import PERSON_MIN_SIDE, has_person
from zoolens.models.open_set import NO_ANIMAL, PERSON

TOLERANCE = 1e-5


def jpeg(image: Image.Image, path: Path) -> Path:
    image.save(path, quality=92)
    return path


@pytest.fixture(scope="module")
def photos(small_animals, tmp_path_factory) -> dict[str, Path]:
    """A real dog photo as a 2400x1800 camera-sized JPEG; the same photo at 780x520, whose reduced-scale decode
    differs between a 256 px and a 274 px (EfficientNet-Lite1) shorter side; and a PNG."""
    folder = tmp_path_factory.mktemp("one-decode-more") / "photos"
    folder.mkdir()
    dog = Image.open(sorted((small_animals / "dogs").iterdir())[0]).convert("RGB")
    jpeg(dog.resize((2400, 1800), Image.BICUBIC), folder / "large.jpg")
    jpeg(dog.resize((780, 520), Image.BICUBIC), folder / "medium.jpg")
    dog.resize((900, 700), Image.BICUBIC).save(folder / "photo.png")
    return {path.name: path for path in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def people(tmp_path_factory) -> Path:
    """Camera-sized frames (3000x2000) of a coffee table with a real person at one side: scikit-image's astronaut
    filling the frame's height, and its cameraman at 0.7 of it. The network's 224 px centre crop and the photo
    opened at PERSON_MIN_SIDE disagree on each about whether a face is there (checked below)."""
    from skimage import data

    folder = tmp_path_factory.mktemp("people") / "frames"
    folder.mkdir()
    for name, person, share in (("astronaut", data.astronaut(), 1.0), ("cameraman", data.camera(), 0.7)):
        frame = Image.fromarray(data.coffee()).resize((3000, 2000))
        side = round(2000 * share)
        frame.paste(Image.fromarray(person).convert("RGB").resize((side, side)), (3000 - side, 2000 - side))
        jpeg(frame, folder / f"{name}.jpg")
    return folder


def as_inputs(photo: Path) -> list:
    return [photo, str(photo), photo.read_bytes(), io.BytesIO(photo.read_bytes())]


@pytest.fixture(scope="module")
def imagenet_lite1():
    from zoolens.inference.imagenet import ImageNetClassifier

    return ImageNetClassifier("efficientnet_lite1")


# slow: EfficientNet-Lite1's ImageNet network exported once (10-20 s)
@pytest.mark.parametrize("name", ["large.jpg", "medium.jpg", "photo.png"])
def test_the_imagenet_mode_decodes_at_its_backbones_size(imagenet_lite1, photos, name):
    classifier, photo = imagenet_lite1, photos[name]
    prep = classifier.preprocessing
    assert prep.resize_size != 256  # the fixed size it decoded at before
    expected = classifier.probabilities_of_pixels(network_pixels(photo, prep)[None])[0]
    k = len(classifier.categories)
    for answer in classifier.predict(as_inputs(photo), top_k=k):
        assert answer.error is None
        found = dict(answer.top)
        np.testing.assert_allclose([found[c] for c in classifier.categories], expected, atol=TOLERANCE)
    np.testing.assert_allclose(classifier.probabilities([photo])[0], expected, atol=TOLERANCE)


def test_the_medium_photo_really_decodes_otherwise_at_256_px(imagenet_lite1, photos):
    """The photo that catches a fixed 256 px decode: at 256 px it decodes at half its size, at 274 px whole."""
    from zoolens.data.images import open_image
    from zoolens.data.transforms import cropped_pixels

    prep = imagenet_lite1.preprocessing
    at_256 = cropped_pixels(open_image(photos["medium.jpg"], min_side=256), prep)
    assert not np.array_equal(at_256, network_pixels(photos["medium.jpg"], prep))


def test_the_person_frames_are_ones_where_the_crop_and_the_photo_disagree(trained_model, people):
    prep = trained_model.preprocessing
    for frame in sorted(people.iterdir()):
        in_crop = has_person(Image.fromarray(network_pixels(frame, prep)))
        in_photo = has_person(open_input(frame, PERSON_MIN_SIDE))
        assert in_crop != in_photo, frame.name


def test_the_api_turns_the_person_frames_away(trained_model, people):
    """Both frames are turned away for having no animal, so the person check decides between PERSON and NO_ANIMAL."""
    for frame in sorted(people.iterdir()):
        answer = trained_model.predict(frame)[0]
        assert answer.reason in (PERSON, NO_ANIMAL), answer.describe()


def reasons_of(results: Path) -> dict[str, str | None]:
    return {Path(row["path"]).name: row["reason"] for row in pq.read_table(results).to_pylist()}


def api_reasons(model, folder: Path) -> dict[str, str | None]:
    return {frame.name: model.predict(frame)[0].reason for frame in sorted(folder.iterdir())}


def test_a_batch_jobs_person_check_answers_as_the_api_does(trained_model, people, tmp_path):
    from zoolens.inference.batch import predict_folder

    out = tmp_path / "results.parquet"
    predict_folder(trained_model, people, out, workers=0, progress=False)
    expected = api_reasons(trained_model, people)
    assert reasons_of(out) == expected
    assert set(expected.values()) == {PERSON, NO_ANIMAL}  # one frame each way: a check on the crop gets both wrong


# slow: a local Ray cluster started
def test_rays_person_check_answers_as_the_api_does(trained_model, people, tmp_path):
    pytest.importorskip("ray")
    from zoolens.inference.batch import predict_folder

    out = tmp_path / "ray.parquet"
    predict_folder(trained_model, people, out, engine="ray", concurrency=1, chunk_size=8, progress=False)
    assert reasons_of(out) == api_reasons(trained_model, people)


@pytest.fixture(scope="module")
def cameraman_4000(tmp_path_factory) -> Path:
    """A 4000x3000 frame with the cameraman at 0.7 of its height, in the middle: a face there at a 256 px decode (what
    the ImageNet mode looked at), none at PERSON_MIN_SIDE."""
    from skimage import data

    frame = Image.fromarray(data.coffee()).resize((4000, 3000))
    frame.paste(Image.fromarray(data.camera()).convert("RGB").resize((2100, 2100)), (950, 900))
    return jpeg(frame, tmp_path_factory.mktemp("cameraman") / "cameraman-4000.jpg")


# slow: MobileNetV2's ImageNet network
def test_the_imagenet_modes_person_check_answers_as_the_api_does(trained_model, people, cameraman_4000):
    from zoolens.inference.imagenet import ImageNetClassifier

    assert has_person(open_input(cameraman_4000, 256)) != has_person(open_input(cameraman_4000, PERSON_MIN_SIDE))
    classifier = ImageNetClassifier()
    for frame in [*sorted(people.iterdir()), cameraman_4000]:
        expected = trained_model.predict(frame)[0].reason
        assert expected in (PERSON, NO_ANIMAL)
        for answer in classifier.predict(as_inputs(frame)):
            assert answer.reason == expected, (frame.name, answer.describe())


@pytest.fixture(scope="module")
def dog_app(trained_model):
    from zoolens.apps.dogs import DogBreedApp

    return DogBreedApp(trained_model)  # cats, dogs and pandas as its "breeds": what matters is what it is shown


# slow: MobileNetV2's ImageNet network
@pytest.mark.parametrize("name", ["large.jpg", "photo.png"])
def test_the_dog_app_answers_as_the_breeds_model_does(dog_app, trained_model, photos, name):
    photo = photos[name]
    classes = trained_model.classes
    direct = trained_model.predict(photo, top_k=len(classes))[0]
    imagenet = dog_app.dogs.classifier
    seen = imagenet.probabilities_of_pixels(network_pixels(photo, imagenet.preprocessing)[None])[0]
    for item in as_inputs(photo):
        report = dog_app.identify_one(item)
        assert report.dog and report.error is None
        np.testing.assert_allclose(dict(report.breed_prediction.top)["dogs"], dict(direct.top)["dogs"],
                                   atol=TOLERANCE)
        assert report.breed_prediction.describe() == direct.describe()
    answer = dog_app.predict(photo.read_bytes(), top_k=len(classes))[0]
    np.testing.assert_allclose([dict(answer.top)[c] for c in classes], [dict(direct.top)[c] for c in classes],
                               atol=TOLERANCE)
    np.testing.assert_allclose(dog_app.dogs.probabilities([photo])[0], seen, atol=TOLERANCE)


def test_the_dog_app_says_which_photo_it_cannot_read(dog_app, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not a photo")
    assert dog_app.identify_one(broken).error
    answer = dog_app.predict(broken)[0]
    assert answer.error and answer.source == str(broken)
