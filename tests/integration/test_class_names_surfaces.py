"""Class folders named by an id are shown by a name people read on every surface (trained model, commands, report,
apps), the id kept beside it in tables. The name lookups alone are in tests/unit/test_class_names.py."""

from __future__ import annotations

import csv
import json
import shutil

import pytest


# Three of Imagewoof's classes, as the shared datasets' README names them.
BREEDS = {"n02088364": "beagle", "n02099601": "golden retriever", "n02111889": "Samoyed"}


@pytest.fixture(scope="module")
def breeds(imagewoof, tmp_path_factory):
    """20 photos of each of three Imagewoof breeds (class folders named by WordNet id); one renamed by names.csv."""
    root = tmp_path_factory.mktemp("woof")
    for wnid in BREEDS:
        (root / "data" / wnid).mkdir(parents=True)
        for photo in sorted((imagewoof / "train" / wnid).iterdir())[:20]:
            shutil.copyfile(photo, root / "data" / wnid / photo.name)
    (root / "data" / "names.csv").write_text("class,name\nn02111889,Samoyed dog\n", encoding="utf-8")
    return root


def test_every_surface_shows_the_names_and_tables_keep_the_ids(breeds, capsys):
    import zoolens
    from zoolens.apps.web import describe_choice
    from zoolens.cli import main

    shown = {**BREEDS, "n02111889": "Samoyed dog"}  # names.csv wins over WordNet
    data, model_dir = breeds / "data", breeds / "model"
    assert main(["data", "inspect", str(data), "--out", str(breeds / "inspected")]) == 0
    assert "golden retriever (n02099601)" in capsys.readouterr().out
    assert json.loads((breeds / "inspected" / "summary.json").read_text())["names"] == shown
    from PIL import Image

    from zoolens.data.inspect import SHEET_LABEL, SHEET_THUMB, inspect_folder

    sheet = Image.open(breeds / "inspected" / "samples.png")  # the contact sheet: a row of photos per class
    assert sheet.height == 3 * (SHEET_THUMB + 6) + 6
    samples = inspect_folder(data, progress=False).samples
    for row, wnid in enumerate(sorted(BREEDS)):
        assert len(samples[wnid]) == 8 and all(f"/{wnid}/" in path for path in samples[wnid])
        first = sheet.crop((SHEET_LABEL, 6 + row * (SHEET_THUMB + 6), SHEET_LABEL + SHEET_THUMB,
                            6 + row * (SHEET_THUMB + 6) + SHEET_THUMB))
        assert first.convert("L").getextrema()[0] < 200  # a photo there, not the white page

    assert main(["train", str(data), "--out", str(model_dir), "--quiet"]) == 0
    trained = capsys.readouterr().out
    assert "golden retriever" in trained and "n02099601" not in trained  # the classification report
    meta = json.loads((model_dir / "zoolens.json").read_text())
    assert meta["classes"] == sorted(BREEDS) and meta["class_names"] == [shown[c] for c in sorted(BREEDS)]
    metrics = json.loads((model_dir / "evaluation" / "metrics.json").read_text())
    assert set(metrics["per_class"]) == set(BREEDS) and metrics["names"] == shown  # ids for machines, and names

    photo = sorted((data / "n02099601").iterdir())[0]
    assert main(["predict", str(model_dir), str(photo), "--csv", str(breeds / "answers.csv"), "--open-set", "off"]) == 0
    printed = capsys.readouterr().out
    assert "n02" not in printed.replace(str(photo), "") and "golden retriever" in printed
    row = next(csv.DictReader((breeds / "answers.csv").open()))
    assert (row["label"], row["label_name"]) == ("n02099601", "golden retriever")
    assert row["top2_name"] == shown[row["top2_label"]]

    model = zoolens.Model.load(model_dir)
    answer = model.predict([photo], open_set="off")[0]
    assert answer.label == "n02099601" and answer.answer == "golden retriever"
    assert describe_choice(str(model_dir)).endswith("3 classes (beagle, golden retriever, Samoyed dog)")

    assert main(["report", str(model_dir), "--quiet"]) == 0
    html = (model_dir / "report.html").read_text()
    assert "3 classes: beagle, golden retriever, Samoyed dog" in html and "<td>n02" not in html
