"""The Tkinter desktop app, driven as a person uses it, in a virtual X display (Xvfb)."""

import os
import time
from pathlib import Path

import pytest
from helpers import open_app, pump_until

IMAGENET_CATS = {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}


@pytest.fixture
def coffee(tmp_path) -> Path:
    """skimage's espresso: a real photo with no animal in it."""
    from PIL import Image
    from skimage import data

    path = tmp_path / "coffee.jpg"
    Image.fromarray(data.coffee()).save(path)
    return path


def screenshot(display: str, path: Path) -> Path:
    """The whole virtual screen as PNG, grabbed straight from the X server."""
    from PIL import ImageGrab

    image = ImageGrab.grab(xdisplay=display)
    assert image.getextrema() != ((0, 0), (0, 0), (0, 0)), "the screen is black: no window was drawn"
    image.save(path)
    return path


@pytest.fixture
def screenshots(tmp_path) -> Path:
    folder = Path(os.environ.get("ZOOLENS_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_select_animal_shows_the_photo_and_the_right_class(root, display, trained_model, other_animals, screenshots):
    app = open_app(root, trained_model.path)
    assert app.model_label.cget("text") == f"Model: {trained_model.path.name}"
    photo = sorted((other_animals / "cats").iterdir())[0]

    busy_when_ticked = []
    predict = app.predictor.predict

    def slow_predict(*args, **kwargs):  # as a photo the feature cache has not seen takes, on a slow CPU
        time.sleep(0.3)
        return predict(*args, **kwargs)

    app.predictor.predict = slow_predict

    def tick():  # an event every 5 ms, noting whether the photo was still being classified when it ran
        busy_when_ticked.append(app.busy)
        if app.busy:
            root.after(5, tick)

    started = time.monotonic()
    app.classify_path(photo)  # what "Select Animal" does with the file the dialog returns
    assert time.monotonic() - started < 0.5, "classifying must not block the window"
    assert app.busy and str(app.select_button.cget("state")) == "disabled"
    root.after(5, tick)
    pump_until(root, lambda: not app.busy)
    assert busy_when_ticked.count(True) >= 10, "the window kept handling events while the photo was classified"
    app.predictor.predict = predict

    assert app.answer_text().startswith("cats (")
    assert app.last_prediction.label == "cats"
    assert app.bar_names[0].cget("text") == "cats"
    assert float(app.bars[0].cget("value")) > 60
    assert app.shown is not None and app.shown.width() > 100  # the photo is on screen, fitted
    shot = screenshot(display, screenshots / "desktop-cats.png")
    print(f"screenshot: {shot}")


def test_not_sure_below_the_threshold(root, trained_model, other_animals):
    app = open_app(root, trained_model.path, min_confidence=0.9999)
    app.classify_path(sorted((other_animals / "dogs").iterdir())[0])
    pump_until(root, lambda: not app.busy)
    assert app.last_prediction.label is None
    assert app.answer_text().startswith("Not sure (best guess: ")
    assert app.answer_label.cget("style") == "Unsure.TLabel"


def test_no_animal_is_none_of_these_until_the_open_set_check_is_off(root, display, trained_model, coffee,
                                                                   screenshots):
    app = open_app(root, trained_model.path)
    app.classify_path(coffee)
    pump_until(root, lambda: not app.busy)
    assert app.last_prediction.verdict == "none of these"
    assert app.answer_text().startswith("None of these: no animal in the photo (it looks like")
    assert app.answer_label.cget("style") == "None.TLabel"  # slate, never the class's green
    assert str(app.bars[0].cget("style")) == "None.Horizontal.TProgressbar"
    assert "not an answer" in app.scores_label.cget("text")
    screenshot(display, screenshots / "desktop-none-of-these.png")

    app.open_set.set("off")  # the "Open-set check" box, as a person picks "off" in it
    app.open_set_box.event_generate("<<ComboboxSelected>>")
    pump_until(root, lambda: not app.busy)
    assert app.last_prediction.verdict != "none of these"  # the same photo, asked again without the check
    assert not app.answer_text().startswith("None of these")


def test_zoolens_desktop_passes_the_open_set_option(trained_model, monkeypatch):
    from zoolens.apps import desktop
    from zoolens.cli import main

    started = {}
    monkeypatch.setattr(desktop, "run_desktop", lambda model, **options: started.update(options, model=model) or 0)
    assert main(["desktop", str(trained_model.path), "--open-set", "strict"]) == 0
    assert started["open_set"] == "strict" and started["model"] == trained_model.path


def test_an_unreadable_file_is_reported_in_the_window(root, trained_model, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a photo")
    app = open_app(root, trained_model.path)
    app.classify_path(broken)
    pump_until(root, lambda: not app.busy)
    assert app.answer_text().startswith("Cannot read this photo")


def test_a_folder_that_is_not_a_model_keeps_the_current_one(root, trained_model, tmp_path):
    app = open_app(root, trained_model.path)
    app.load_model(tmp_path)  # File > Open model… on the wrong folder
    pump_until(root, lambda: not app.busy)
    assert app.answer_text().startswith("Could not open the model: ")
    assert app.predictor.model_path == trained_model.path and not app.busy


def test_switch_to_imagenet_and_back_then_exit(root, display, trained_model, tmp_path, coffee, screenshots):
    from PIL import Image
    from skimage import data

    cat = tmp_path / "chelsea.jpg"
    Image.fromarray(data.chelsea()).save(cat)
    app = open_app(root, trained_model.path)
    app.load_model(None)  # File > Use ImageNet classes
    app.classify_path(cat)  # queued behind the model load: runs once ImageNet is ready
    pump_until(root, lambda: not app.busy and app.last_prediction is not None)
    assert app.predictor.is_imagenet and "ImageNet" in root.title()
    assert app.last_prediction.top[0][0] in IMAGENET_CATS
    assert app.answer_text().startswith("cat (") and "— most likely " in app.answer_text()
    screenshot(display, screenshots / "desktop-imagenet.png")
    app.classify_path(coffee)
    pump_until(root, lambda: not app.busy)
    assert app.answer_text() == "No animal found (it looks like an espresso)"
    assert app.answer_label.cget("style") == "None.TLabel"

    app.load_model(trained_model.path)  # File > Open model… with the folder the dialog returns
    pump_until(root, lambda: not app.busy)
    assert not app.predictor.is_imagenet and trained_model.path.name in root.title()
    app.exit()
    import tkinter as tk

    with pytest.raises(tk.TclError):
        root.winfo_exists()


def test_the_empty_window_says_what_to_do_and_opens_before_the_model_loads(root, trained_model, monkeypatch):
    import threading

    from zoolens.apps import desktop

    looked, load = threading.Event(), desktop.Predictor

    def slow_load(*args, **kwargs):  # a model that loads only once the window has been looked at (a fast load
        looked.wait(30)  # could otherwise finish before the first redraw, and the test would race it)
        return load(*args, **kwargs)

    monkeypatch.setattr(desktop, "Predictor", slow_load)
    app = desktop.DesktopApp(root, trained_model.path)
    root.update()
    assert app.busy  # the window is up while the model still loads on the worker
    shown = app.image_area.cget("text")
    assert "No photo yet" in shown and "Select Animal" in shown and "Select Folder" in shown
    looked.set()
    pump_until(root, lambda: not app.busy)
    assert app.predictor is not None


def test_select_folder_lists_every_photo_in_order_and_a_row_shows_its_photo(root, display, trained_model,
                                                                             other_animals, coffee, tmp_path,
                                                                             screenshots):
    import shutil

    folder = tmp_path / "trip"
    folder.mkdir()
    photos = [shutil.copyfile(coffee, folder / "a-coffee.jpg")]
    photos += [shutil.copyfile(p, folder / f"b-{p.name}") for p in sorted((other_animals / "panda").iterdir())[:3]]
    app = open_app(root, trained_model.path)
    app.classify_folder(folder)  # what "Select Folder" does with the folder the dialog returns
    pump_until(root, lambda: not app.busy and app.last_prediction is not None)
    rows = [app.results_list.item(row, "values") for row in app.results_list.get_children()]
    assert [name for name, _ in rows] == [p.name for p in photos]
    assert rows[0][1].startswith("None of these: no animal") and all(a.startswith("panda (") for _, a in rows[1:])
    assert app.answer_text().startswith("None of these")  # the first row is shown
    app.results_list.selection_set("2")  # a person clicks the third row
    pump_until(root, lambda: not app.busy and app.last_path == photos[2])
    assert app.answer_text().startswith("panda (") and app.last_prediction.source == str(photos[2])
    assert app.status_label.cget("text") == f"{photos[2].name} · 4 photos: panda 3, none of these 1"
    screenshot(display, screenshots / "desktop-folder.png")


def test_the_threshold_and_grad_cam_change_the_answer_shown(root, display, trained_model, other_animals, screenshots):
    photo = sorted((other_animals / "cats").iterdir())[0]
    app = open_app(root, trained_model.path)
    app.classify_path(photo)
    pump_until(root, lambda: not app.busy)
    assert app.answer_text().startswith("cats (") and app.shown.width() < 1.8 * app.shown.height()
    app.threshold.set(0.9999)  # typed into "Not sure below", then Enter
    app.threshold_box.focus_force()
    root.update()
    app.threshold_box.event_generate("<Return>")
    pump_until(root, lambda: not app.busy)
    assert app.answer_text().startswith("Not sure (best guess: cats")
    app.threshold.set(0.5)
    app.gradcam_box.invoke()  # ticks Grad-CAM: the photo and its heat map side by side
    pump_until(root, lambda: not app.busy and app.shown.width() > 1.8 * app.shown.height())
    assert app.answer_text().startswith("cats (") and "Grad-CAM" in app.key_label.cget("text")
    screenshot(display, screenshots / "desktop-gradcam.png")
