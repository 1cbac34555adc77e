"""The Streamlit web app: its checks and logic with AppTest, then a real browser (Debian chromium + Playwright)
uploading real photos to `streamlit run` and reading the answers (class, not sure, none of these) off the page."""

import csv
import io
import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from helpers import chromium_browser, streamlit_screenshot, streamlit_server
from PIL import Image

from zoolens.apps import web
from zoolens.apps.common import IMAGENET_NAME
from zoolens.inference.prediction import NONE_OF_THESE

WEB_SCRIPT = str(Path(web.__file__))


@pytest.fixture(scope="module")
def models_dir(trained_model, tmp_path_factory) -> Path:
    """A runs/-like folder holding one trained model, as the model picker finds them."""
    folder = tmp_path_factory.mktemp("runs")
    shutil.copytree(trained_model.path, folder / "animals")
    return folder


@pytest.fixture(scope="module")
def cat_photo(other_animals) -> Path:
    return sorted((other_animals / "cats").iterdir())[0]


@pytest.fixture(scope="module")
def skimage_photos(tmp_path_factory) -> dict[str, Path]:
    """Real photos with and without an animal: skimage's cat (chelsea), an espresso (coffee) and a rocket."""
    from skimage import data

    folder = tmp_path_factory.mktemp("skimage")
    photos = {"chelsea": data.chelsea(), "coffee": data.coffee(), "rocket": data.rocket(),
              "astronaut": data.astronaut()}
    for name, pixels in photos.items():
        Image.fromarray(pixels).save(folder / f"{name}.jpg")
    return {name: folder / f"{name}.jpg" for name in photos}


def uploads_of(photos: dict[str, Path], *names: str) -> list[tuple[str, bytes, str]]:
    return [(f"{name}.jpg", photos[name].read_bytes(), "image/jpeg") for name in names]


def shown_answers(at) -> dict[str, str]:
    """Each upload's answer box as the page's markdown holds it (its file name, then its verdict and line)."""
    cards = [m.value for m in at.markdown if 'data-testid="zl-answer"' in m.value]
    return {card.split('<div class="zl-file">')[1].split("</div>")[0]: card for card in cards}


def picture_bytes(image, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def test_a_truncated_upload_is_an_error_answer_not_a_crash(trained_model):
    whole = picture_bytes(Image.new("RGB", (300, 200), "orange"), "JPEG")
    upload = web.check_upload("cut.jpg", whole[: len(whole) // 2])
    assert upload.problem is None  # its header is whole: only decoding finds the damage
    answer = web.classify_upload(trained_model, upload, 3, 0.0)
    assert answer.source == "cut.jpg" and answer.error and "damaged" in answer.error, answer


# ---- the app's logic through AppTest --------------------------------------------------------------
@pytest.fixture
def app_test(models_dir, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setattr(sys, "argv", ["web.py", "--models-dir", str(models_dir), "--breeds", str(models_dir / "none")])
    return AppTest.from_file(WEB_SCRIPT, default_timeout=120)


def test_app_lists_models_classifies_uploads_and_refuses_bad_ones(app_test, models_dir, cat_photo):
    at = app_test.run()
    picker = at.selectbox(key="model")
    assert picker.options == ["animals (3 classes)", IMAGENET_NAME]  # short: the sidebar shows it whole
    assert "Classes: cats, dogs, panda" in [c.value for c in at.caption]
    uploads = [("cat.jpg", cat_photo.read_bytes(), "image/jpeg"), ("notes.jpg", b"not a photo", "image/jpeg"),
               ("a.jpg", cat_photo.read_bytes(), "image/jpeg"), ("b.jpg", cat_photo.read_bytes(), "image/jpeg")]
    at.file_uploader(key="photos").set_value(uploads).run()
    assert not at.exception
    page = " ".join(m.value for m in at.markdown)
    assert "cats (" in page and "Cannot read this photo: not a photo this app can read" in page
    assert "Pillow" not in page
    assert list(shown_answers(at)) == ["cat.jpg", "notes.jpg", "a.jpg", "b.jpg"]  # in upload order, row by row
    assert len(at.get("download_button")) == 1


def test_a_broken_model_folder_costs_its_entry_not_the_page(models_dir, cat_photo, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    runs = tmp_path / "runs"
    shutil.copytree(models_dir / "animals", runs / "animals")
    broken = runs / "tampered"
    shutil.copytree(models_dir / "animals", broken)
    meta = json.loads((broken / "zoolens.json").read_text())
    meta.pop("classes")  # what a shared, edited model folder can look like
    (broken / "zoolens.json").write_text(json.dumps(meta))
    (runs / "garbage").mkdir()
    (runs / "garbage" / "zoolens.json").write_text("{not json")
    monkeypatch.setattr(sys, "argv", ["web.py", "--models-dir", str(runs), "--breeds", str(runs / "none")])
    at = AppTest.from_file(WEB_SCRIPT, default_timeout=120).run()
    assert not at.exception
    picker = at.selectbox(key="model")
    assert picker.options == ["animals (3 classes)", IMAGENET_NAME]
    notes = " ".join(c.value for c in at.caption)
    assert "Skipped tampered: missing 'classes'" in notes and "Skipped garbage: unreadable" in notes
    assert str(tmp_path) not in notes  # no server paths shown to visitors
    at.file_uploader(key="photos").set_value([("cat.jpg", cat_photo.read_bytes(), "image/jpeg")]).run()
    assert not at.exception and "cats (" in " ".join(m.value for m in at.markdown)


def test_imagenet_mode_without_a_trained_model(app_test, cat_photo):
    at = app_test.run()
    at.selectbox(key="model").set_value(IMAGENET_NAME).run()
    at.file_uploader(key="photos").set_value(("cat.jpg", cat_photo.read_bytes(), "image/jpeg")).run()
    assert not at.exception
    page = " ".join(m.value for m in at.markdown)
    assert any(name in page for name in ("tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat"))


def test_a_trained_model_says_none_of_these_for_an_espresso_and_a_rocket(app_test, skimage_photos):
    at = app_test.run()
    at.file_uploader(key="photos").set_value(uploads_of(skimage_photos, "coffee", "rocket", "chelsea")).run()
    assert not at.exception
    answers = shown_answers(at)
    for name in ("coffee.jpg", "rocket.jpg"):
        assert 'class="zl-answer zl-none"' in answers[name] and 'data-verdict="none of these"' in answers[name]
        assert "None of these: no animal in the photo (it looks like" in answers[name]
    assert 'data-verdict="class"' in answers["chelsea.jpg"] and ">cats (" in answers["chelsea.jpg"]


def test_the_open_set_control_turns_none_of_these_off(app_test, skimage_photos):
    at = app_test.run()
    assert at.radio(key="open_set").options == ["on", "strict", "off"] and at.radio(key="open_set").value == "on"
    at.radio(key="open_set").set_value("off")
    at.file_uploader(key="photos").set_value(uploads_of(skimage_photos, "rocket")).run()
    assert not at.exception
    assert "none of these" not in shown_answers(at)["rocket.jpg"].lower()


def test_imagenet_mode_says_no_animal_found_and_names_the_cat_by_its_group(app_test, skimage_photos):
    at = app_test.run()
    at.selectbox(key="model").set_value(IMAGENET_NAME).run()
    assert at.radio(key="open_set").disabled  # ImageNet mode always says when there is no animal
    at.file_uploader(key="photos").set_value(uploads_of(skimage_photos, "coffee", "chelsea")).run()
    assert not at.exception
    answers = shown_answers(at)
    assert ">No animal found (it looks like an espresso)<" in answers["coffee.jpg"]
    assert "zl-class" not in answers["coffee.jpg"]
    assert 'data-verdict="class"' in answers["chelsea.jpg"] and ">cat (" in answers["chelsea.jpg"]
    assert "— most likely " in answers["chelsea.jpg"]


def test_gradcam_toggle_when_the_explainer_exists(app_test, cat_photo):
    if not web.explain_available():
        pytest.skip("zoolens.evaluation.explain is not in this checkout")
    at = app_test.run()
    at.toggle(key="gradcam").set_value(True).run()
    at.file_uploader(key="photos").set_value(("cat.jpg", cat_photo.read_bytes(), "image/jpeg")).run()
    assert not at.exception
    assert not at.warning, [w.value for w in at.warning]
    captions = [caption for image in at.get("image") for caption in image.captions]
    assert any("Grad-CAM" in caption for caption in captions), captions
    assert len(at.get("download_button")) == 2  # the results, and the heat maps
    assert any("where the network looked most" in m.value for m in at.markdown)  # the colour key


def test_dog_page_without_a_breed_model_says_how_to_train_one(app_test):
    at = app_test.run()
    at.radio(key="page").set_value(web.DOGS_PAGE).run()
    assert not at.exception
    assert "zoolens train" in at.info[0].value


# ---- a real browser -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(models_dir, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("web-cwd")
    with streamlit_server(["--models-dir", str(models_dir)], workdir) as url:
        yield url, workdir


@pytest.fixture(scope="module")
def browser():
    with chromium_browser() as chromium:
        yield chromium


def test_browser_upload_shows_the_prediction(server, browser, cat_photo, tmp_path):
    url, workdir = server
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(url, timeout=60_000)
    page.wait_for_selector("input[type=file]", state="attached", timeout=60_000)
    photo = {"name": cat_photo.name, "mimeType": "image/jpeg", "buffer": cat_photo.read_bytes()}
    hostile_name = {**photo, "name": "../../escape.jpg"}
    page.set_input_files("input[type=file]", [photo, hostile_name])
    page.wait_for_function("document.querySelectorAll('[data-testid=zl-answer]').length >= 2", timeout=90_000)
    page.wait_for_selector("[data-testid=stImage] img", timeout=30_000)
    answers = [element.inner_text() for element in page.query_selector_all("[data-testid=zl-answer]")]
    assert all(answer.startswith("cats (") for answer in answers), answers
    assert page.get_by_text("Download results (CSV)").is_visible()

    folder = Path(os.environ.get("ZOOLENS_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    streamlit_screenshot(page, folder / "web-cats.png")
    print(f"screenshot: {folder / 'web-cats.png'}")
    page.close()
    # Nothing a client sent became a file: not in the server's folder, not where "../../" would point.
    assert list(workdir.iterdir()) == []
    assert not (workdir.parent.parent / "escape.jpg").exists()


def answer_boxes(page) -> dict[str, dict]:
    """Each card's file name, answer line, verdict and background colour, as the browser shows them."""
    return page.evaluate("""() => Array.from(document.querySelectorAll('.zl-card')).map(card => {
        const answer = card.querySelector('[data-testid=zl-answer]');
        return {file: card.querySelector('.zl-file').innerText, text: answer.innerText,
                verdict: answer.dataset.verdict, background: getComputedStyle(answer).backgroundColor};
    })""")


def test_browser_shows_none_of_these_for_no_animal_and_downloads_the_verdicts(server, browser, skimage_photos,
                                                                              tmp_path):
    url, _ = server
    page = browser.new_page(viewport={"width": 1280, "height": 1400}, accept_downloads=True)
    page.goto(url, timeout=60_000)
    page.wait_for_selector("input[type=file]", state="attached", timeout=60_000)
    names = ["coffee", "rocket", "chelsea"]
    page.set_input_files("input[type=file]", [{"name": f"{name}.jpg", "mimeType": "image/jpeg",
                                               "buffer": skimage_photos[name].read_bytes()} for name in names])
    page.wait_for_function("document.querySelectorAll('[data-testid=zl-answer]').length >= 3", timeout=90_000)
    boxes = {box["file"]: box for box in answer_boxes(page)}
    for name in ("coffee.jpg", "rocket.jpg"):
        assert boxes[name]["verdict"] == NONE_OF_THESE, boxes[name]
        assert boxes[name]["text"].startswith("None of these: no animal in the photo"), boxes[name]
    assert boxes["chelsea.jpg"]["verdict"] == "class" and boxes["chelsea.jpg"]["text"].startswith("cats (")
    assert boxes["coffee.jpg"]["background"] != boxes["chelsea.jpg"]["background"]  # never the class's green

    folder = Path(os.environ.get("ZOOLENS_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    streamlit_screenshot(page, folder / "web-none-of-these.png")
    with page.expect_download(timeout=30_000) as download:
        page.get_by_text("Download results (CSV)").click()
    rows = {row["path"]: row for row in csv.DictReader(io.StringIO(Path(download.value.path()).read_text()))}
    page.close()
    assert rows["coffee.jpg"]["verdict"] == NONE_OF_THESE and rows["coffee.jpg"]["label"] == ""
    assert rows["coffee.jpg"]["reason"] == "no animal in the photo"
    assert rows["chelsea.jpg"]["verdict"] == "class" and rows["chelsea.jpg"]["label"] == "cats"


def test_browser_grad_cam_beside_each_photo_in_upload_order_with_a_key_and_a_zip(server, browser, skimage_photos,
                                                                                   tmp_path):
    """What a person sees with Grad-CAM on: the cards in the order the photos were given, each photo with its heat
    map beside it (one picture twice as wide as high), the colour key, and the heat maps as a ZIP of PNGs."""
    import zipfile

    url, _ = server
    page = browser.new_page(viewport={"width": 1280, "height": 1400}, accept_downloads=True)
    page.goto(url, timeout=60_000)
    page.wait_for_selector("input[type=file]", state="attached", timeout=60_000)
    page.get_by_text("Grad-CAM heat map").click()
    names = ["rocket", "chelsea", "coffee", "astronaut"]
    page.set_input_files("input[type=file]", [{"name": f"{name}.jpg", "mimeType": "image/jpeg",
                                               "buffer": skimage_photos[name].read_bytes()} for name in names])
    page.wait_for_selector("text=Download the heat maps (ZIP of PNGs)", timeout=180_000)
    page.wait_for_function("""() => { const images = Array.from(document.querySelectorAll('[data-testid=stImage] img'));
        return images.length >= 4 && images.every(img => img.complete && img.naturalHeight > 0); }""", timeout=60_000)
    assert [box["file"] for box in answer_boxes(page)] == [f"{name}.jpg" for name in names]
    sizes = page.evaluate("""() => Array.from(document.querySelectorAll('[data-testid=stImage] img'))
        .map(img => [img.naturalWidth, img.naturalHeight])""")
    assert len(sizes) == 4 and all(1.9 < width / height < 2.1 for width, height in sizes), sizes
    assert page.locator(".zl-key").first.is_visible()
    assert "where the network looked most" in page.locator(".zl-key").first.inner_text()
    folder = Path(os.environ.get("ZOOLENS_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    streamlit_screenshot(page, folder / "web-gradcam.png")
    with page.expect_download(timeout=30_000) as download:
        page.get_by_text("Download the heat maps (ZIP of PNGs)").click()
    archive = zipfile.ZipFile(download.value.path())
    page.close()
    assert archive.namelist() == [f"{n:03d}-{name}-gradcam.png" for n, name in enumerate(names, 1)]


def test_zoolens_web_runs_streamlit_with_the_upload_limit_and_the_app_options(trained_model):
    from zoolens.cli import build_parser
    from zoolens.cli.apps import web_command

    args = build_parser().parse_args(["web", str(trained_model.path), "--port", "8600", "--models-dir", "elsewhere",
                                      "--headless", "--open-set", "strict"])
    command = web_command(args)
    assert command[1:4] == ["-m", "streamlit", "run"] and command[4] == WEB_SCRIPT
    app_options = command[command.index("--") + 1 :]
    assert app_options[:2] == ["--models-dir", "elsewhere"] and str(trained_model.path) in app_options
    assert web.parse_app_args(app_options).open_set == "strict"
    server_options = " ".join(command[: command.index("--")])
    assert "--server.port 8600" in server_options and "--server.maxUploadSize 20" in server_options
    assert "--server.address 127.0.0.1" in server_options and "--server.headless true" in server_options
