"""Test-time views (issue 34, item 3): the features of a photo's views, averaged, each view's cached by file content
under its own key beside the plain features; one decode per photo."""

import numpy as np
import pytest
import skimage.data
from PIL import Image

from zoolens.data.transforms import Preprocessing, cropped_pixels, decode_for_network, network_pixels
from zoolens.errors import ZoolensError
from zoolens.runtime import features
from zoolens.runtime.extractor import Extractor
from zoolens.runtime.features import FeatureExtractor
from zoolens.runtime.views import ViewsExtractor, views_of

PREP = Preprocessing(32, 36)


class CountingEngine:
    """A network in NumPy, not symmetric left to right (a fixed random projection of the pixels): counts the photos
    it is given."""

    def __init__(self, width: int, size: int):
        self.weights = np.random.default_rng(0).standard_normal((size * size * 3, width)).astype(np.float32)
        self.photos = 0

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        self.photos += len(pixels)
        return (pixels.reshape(len(pixels), -1).astype(np.float32) / 255) @ self.weights


@pytest.fixture
def member(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOOLENS_CACHE", str(tmp_path / "cache"))
    extractor = FeatureExtractor("tiny-views", 5, PREP, build=lambda: None)
    engine = CountingEngine(5, PREP.input_size)
    monkeypatch.setitem(features._ENGINES, (extractor.key, "auto"), engine)
    return extractor, engine


@pytest.fixture
def photos(tmp_path) -> list:
    """Real photos, none square, each in another orientation."""
    paths = []
    for name, pixels in [("chelsea", skimage.data.chelsea()), ("coffee", skimage.data.coffee()),
                         ("tall", skimage.data.astronaut()[:, 100:400])]:
        paths.append(tmp_path / f"{name}.jpg")
        Image.fromarray(pixels).save(paths[-1], quality=92)
    return paths


def mean_of_views(member: FeatureExtractor, views: list[np.ndarray]) -> np.ndarray:
    return np.mean([member.features_of_pixels(np.stack(pixels)) for pixels in views], axis=0)


def test_the_views_features_are_the_mean_of_the_photo_and_its_mirror(member, photos):
    member, _ = member
    pixels = np.stack([network_pixels(path, PREP) for path in photos])
    plain = member.features_of_pixels(pixels)
    expected = (plain + member.features_of_pixels(pixels[:, :, ::-1])) / 2
    assert not np.allclose(plain, expected, atol=1e-3)  # the mirror changes the features: averaging shows

    views = ViewsExtractor(member, views_of("mirror"))
    assert isinstance(views, Extractor) and views.feature_dim == member.feature_dim
    found = views.features_of_paths(photos)
    assert found.usable.all() and found.problems == []
    np.testing.assert_allclose(found.features, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(views.features_of_images(photos), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(views.features_of_pixels(pixels), expected, rtol=1e-5, atol=1e-5)


def test_every_view_is_in_the_mean(member, photos):
    member, _ = member
    decoded = [decode_for_network(path, PREP) for path in photos]
    square = Preprocessing(PREP.input_size, PREP.input_size)
    plain = [cropped_pixels(image, PREP) for image in decoded]
    wide = [cropped_pixels(image, square) for image in decoded]
    expected = mean_of_views(member, [plain, [p[:, ::-1] for p in plain], wide, [p[:, ::-1] for p in wide]])

    views = ViewsExtractor(member, views_of("mirror,wide,wide_mirror"))
    assert views.views == ("plain", "mirror", "wide", "wide_mirror")
    np.testing.assert_allclose(views.features_of_paths(photos).features, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(views.features_of_images(photos), expected, rtol=1e-5, atol=1e-5)


def test_views_are_cached_apart_from_plain_features_and_a_second_run_runs_no_network(member, photos, tmp_path):
    member, engine = member
    views = ViewsExtractor(member, views_of("mirror"))
    assert views.key != member.key and views.key != ViewsExtractor(member, views_of("wide")).key

    first = views.features_of_paths(photos)
    assert first.computed == len(photos) and engine.photos == 2 * len(photos)  # each view once
    cached = {path.name for path in (tmp_path / "cache" / "features").glob("*.sqlite")}
    assert cached == {"digests.sqlite", f"{member.key}.sqlite", f"{member.key}~mirror.sqlite"}

    again = ViewsExtractor(member, views_of("mirror")).features_of_paths(photos)
    assert again.computed == 0 and engine.photos == 2 * len(photos)
    np.testing.assert_array_equal(again.features, first.features)

    plain = member.features_of_paths(photos, progress=False)  # the plain view's rows are the member's own
    assert plain.computed == 0 and engine.photos == 2 * len(photos)
    np.testing.assert_allclose(plain.features, member.features_of_pixels(
        np.stack([network_pixels(path, PREP) for path in photos])), rtol=1e-6)


def test_a_photo_that_cannot_be_decoded_is_named_and_the_others_are_kept(member, photos, tmp_path):
    member, _ = member
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not a photo")
    found = ViewsExtractor(member, views_of("mirror")).features_of_paths([photos[0], broken, photos[1]])
    assert found.usable.tolist() == [True, False, True]
    assert [path for path, _ in found.problems] == [str(broken)]


def test_unknown_views_and_views_that_need_the_whole_photo_are_one_line_errors(member):
    member, _ = member
    with pytest.raises(ZoolensError, match="views: upside_down unknown"):
        views_of("mirror,upside_down")
    with pytest.raises(ZoolensError, match="wide need the whole photo"):
        ViewsExtractor(member, views_of("wide")).features_of_pixels(np.zeros((1, 32, 32, 3), np.uint8))
