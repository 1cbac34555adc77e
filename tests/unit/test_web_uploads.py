"""The web app's checks without a model or a server: which uploads it takes (every photo format) and refuses (too
large, not an image, too many pixels, formats Pillow reads that are no photo), each refusal an answer named after the
file; how each verdict looks; bars and heat maps. The app itself (AppTest, Streamlit, Chromium):
tests/integration/test_web.py."""

import io

import pytest
from PIL import Image

from zoolens.apps import web
from zoolens.inference.prediction import NONE_OF_THESE, Prediction


# ---- upload checks and CSV ------------------------------------------------------------------------
def test_uploads_too_large_not_images_or_too_many_pixels_are_refused(tmp_path):
    assert web.check_upload("big.jpg", b"\xff" * (web.MAX_UPLOAD_BYTES + 1)).problem == "larger than 20 MB"
    assert web.check_upload("empty.jpg", b"").problem == "empty file"
    assert web.check_upload("notes.jpg", b"just text").problem.startswith("not a photo this app can read (JPEG, PNG")
    huge = io.BytesIO()
    Image.new("1", (8000, 8000)).save(huge, format="PNG")  # 64 megapixels in a few kilobytes
    assert len(huge.getvalue()) < 100_000
    assert "too many pixels (8000×8000" in web.check_upload("bomb.png", huge.getvalue()).problem
    ok = io.BytesIO()
    Image.new("RGB", (64, 48), "orange").save(ok, format="JPEG")
    upload = web.check_upload("ok.jpg", ok.getvalue())
    assert upload.problem is None and upload.data == ok.getvalue()


def picture_bytes(image, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


@pytest.mark.parametrize("format", ["WEBP", "TIFF", "BMP", "GIF", "PNG", "JPEG"])
def test_uploads_of_every_photo_format_are_taken(format):
    data = picture_bytes(Image.new("RGB", (40, 30), "orange"), format)
    upload = web.check_upload(f"photo.{format.lower()}", data)
    assert upload.problem is None and upload.data == data
    assert format.lower().replace("jpeg", "jpg") in web.UPLOAD_TYPES  # the page's file picker offers it too


@pytest.mark.parametrize("format", ["EPS", "ICO", "PCX", "TGA", "SGI", "IM"])
def test_uploads_pillow_could_read_but_are_no_photo_format_are_refused_by_their_bytes(format):
    data = picture_bytes(Image.new("RGB", (40, 30), "orange"), format)
    assert Image.open(io.BytesIO(data)).format == format  # Pillow itself would open it
    problem = web.check_upload("photo.jpg", data).problem
    assert problem.startswith("not a photo this app can read (JPEG, PNG")  # whatever the name


def test_the_pixel_limit_holds_at_its_boundary():
    at_limit = picture_bytes(Image.new("1", (10_000, 5_000)), "PNG")  # 50 000 000 pixels exactly
    assert web.check_upload("limit.png", at_limit).problem is None
    over = picture_bytes(Image.new("1", (10_000, 5_001)), "PNG")
    assert web.check_upload("over.png", over).problem == "too many pixels (10000×5001; at most 50 megapixels)"


def test_a_refused_upload_is_an_error_answer_named_after_the_file():
    refused = web.classify_upload(None, web.check_upload("notes.jpg", b"just text"), top_k=3, min_confidence=0.5)
    assert isinstance(refused, Prediction) and refused.verdict == "error" and refused.source == "notes.jpg"
    assert 'data-verdict="error"' in web.answer_html(refused, imagenet=False)
    assert "Cannot read this photo: not a photo this app can read" in web.answer_html(refused, imagenet=False)


def test_each_verdict_has_its_own_look_and_only_a_class_is_green():
    top = [("cats", 0.97), ("dogs", 0.03)]
    looks = {
        "class": Prediction("a.jpg", "cats", 0.97, top),
        "not sure": Prediction("b.jpg", None, 0.41, top),
        NONE_OF_THESE: Prediction("c.jpg", None, 0.97, top, verdict=NONE_OF_THESE, reason="a person",
                                  detail="it looks like a suit"),
    }
    classes = {verdict: web.answer_class(prediction) for verdict, prediction in looks.items()}
    assert len(set(classes.values())) == 3 and classes["class"] == "zl-answer zl-class"
    none_of_these = web.answer_html(looks[NONE_OF_THESE], imagenet=False)
    assert "None of these: a person (it looks like a suit)" in none_of_these and "zl-class" not in none_of_these
    assert "not an answer" in web.scores_html(looks[NONE_OF_THESE], imagenet=False)
    assert "not an answer" not in web.scores_html(looks["class"], imagenet=False)


def test_bars_escape_labels():
    assert "<script>" not in web.bars_html([("<script>x</script>", 0.5)])


def test_the_heat_maps_come_beside_the_photo_and_download_as_pngs():
    import zipfile

    photo, overlay = Image.new("RGB", (224, 224), "white"), Image.new("RGB", (224, 224), "red")
    pair = web.side_by_side(photo, overlay)
    assert pair.size == (224 * 2 + 8, 224)
    assert pair.getpixel((10, 10)) == (255, 255, 255) and pair.getpixel((300, 10)) == (255, 0, 0)  # photo first
    uploads = [web.Upload("../../etc/cat photo.jpg", b""), web.Upload("dog.png", b"")]
    archive = zipfile.ZipFile(io.BytesIO(web.heat_maps_zip(uploads, {0: (photo, overlay), 1: (photo, overlay)})))
    assert archive.namelist() == ["001-cat_photo-gradcam.png", "002-dog-gradcam.png"]  # no folders from a client
    assert Image.open(archive.open("002-dog-gradcam.png")).getpixel((5, 5)) == (255, 0, 0)
