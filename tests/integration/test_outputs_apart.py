"""Issue 32, finding 3: every output of every command stays apart from the photos the command reads. An output on a
photo file given, inside a photo folder, or a folder holding the photos (where replacing it would reach them) is
refused in one line naming its option, exit 2, before the photos are read or a model trained: links followed,
defaults included. Each case runs `zoolens.cli.program.main` in this process and watches, through an audit hook,
that nothing among the photos is opened or listed before the refusal."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from helpers import tree_snapshot
from PIL import Image

from zoolens.cli.program import main
from zoolens.files import check_apart
from zoolens.errors import ZoolensError

CLASSES = ("cats", "dogs", "panda")

# (command words, the option refused). {data}: the photo folder; {photo}: one photo in it; {model}: a trained model
# outside it; {outside}: a folder apart from it; {other}: another photo folder. The second variant of each case
# writes {data} in the output as {link}, a symbolic link to the photo folder.
CASES = {
    "data split --out PHOTO": (["data", "split", "{data}", "--out", "{photo}"], "out"),
    "data split --out inside": (["data", "split", "{data}", "--out", "{data}/cats/split.csv"], "out"),
    "data inspect --out": (["data", "inspect", "{data}", "--out", "{data}/summary"], "out"),
    "data issues --out": (["data", "issues", "{data}", "--out", "{data}/issues"], "out"),
    "data issues --out holding": (["data", "issues", "{data}", "--out", "{data}/.."], "out"),
    "train --out": (["train", "{data}", "--quiet", "--out", "{data}/model"], "out"),
    "evaluate --out": (["evaluate", "{model}", "{data}", "--out", "{data}/evaluation"], "out"),
    "evaluate --unknown, --out": (["evaluate", "{model}", "{other}", "--unknown", "{data}", "--out", "{data}/ev"],
                                  "out"),
    "predict --csv PHOTO": (["predict", "{model}", "{photo}", "--csv", "{photo}"], "csv"),
    "predict --csv inside": (["predict", "{model}", "{data}/cats", "--csv", "{data}/cats/answers.csv"], "csv"),
    "predict --csv holding": (["predict", "{model}", "{photo}", "--csv", "{data}/cats"], "csv"),
    "predict --imagenet --csv PHOTO": (["predict", "--imagenet", "{photo}", "--csv", "{photo}"], "csv"),
    "predict --summary PHOTO": (["predict", "{model}", "{data}/dogs", "--out", "{outside}/r.parquet", "--summary",
                                 "{data}/dogs/dogs_0.jpg"], "summary"),
    "predict --out inside": (["predict", "{model}", "{data}", "--out", "{data}/r.parquet"], "out"),
    "predict --out holding": (["predict", "{model}", "{data}/cats", "--out", "{data}"], "out"),
    "predict --sort-into inside": (["predict", "{model}", "{data}", "--out", "{outside}/r.parquet", "--sort-into",
                                    "{data}/sorted"], "sort_into"),
    "predict --sort-into holding": (["predict", "{model}", "{data}/cats", "--out", "{outside}/r.parquet",
                                     "--sort-into", "{data}"], "sort_into"),
    "explain --out PHOTO": (["explain", "{model}", "{photo}", "--out", "{photo}"], "out"),
    "explain --out inside": (["explain", "{model}", "{data}/cats", "--out", "{data}/cats/why"], "out"),
    "report --out": (["report", "{model}", "--data", "{data}", "--out", "{data}/report.html"], "out"),
    "export --out": (["export", "{model}", "--check", "{data}", "--out", "{data}/model.onnx"], "out"),
    "kfold --out": (["kfold", "{data}", "--out", "{data}/kfold"], "out"),
    "tune --out": (["tune", "{data}", "--out", "{data}/tune"], "out"),
    "study --out": (["study", "backbones", "--data", "{data}", "--out", "{data}/study"], "out"),
}

# Outputs nobody named: (command words, the folder it runs in, below {data}). {inner}: a model folder inside the
# photo folder, whose default outputs (MODEL/evaluation, MODEL/report.html, MODEL/model.onnx) land among the photos.
DEFAULTS = {
    "data split (./<name>-split.csv)": (["data", "split", "{data}"], "cats"),
    "explain (./explanations)": (["explain", "{model}", "{data}/cats"], "cats"),
    "study (./studies/<name>)": (["study", "backbones", "--data", "{data}"], "."),
    "evaluate (MODEL/evaluation)": (["evaluate", "{inner}", "{data}"], "."),
    "report (MODEL/report.html)": (["report", "{inner}", "--data", "{data}"], "."),
    "export (MODEL/model.onnx)": (["export", "{inner}", "--check", "{data}"], "."),
}


def make_photos(root: Path) -> Path:
    for n, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (48, 40), (60 * n, 40 * i, 90)).save(root / name / f"{name}_{i}.jpg")
    return root


@pytest.fixture
def places(tmp_path, trained_model) -> dict[str, Path]:
    data = make_photos(tmp_path / "ds")
    (tmp_path / "outside").mkdir()
    os.symlink(data, tmp_path / "link")
    return {"data": data, "photo": data / "cats" / "cats_0.jpg", "model": trained_model.path,
            "outside": tmp_path / "outside", "other": make_photos(tmp_path / "other"), "link": tmp_path / "link"}


class PhotoReads:
    """Which paths among the photos were opened or listed while `watching` (an audit hook: hooks stay for the
    process, so one is added once and does nothing when not watching)."""

    root: str | None = None
    besides: str | None = None  # a model folder placed among the photos: its own files may be read
    seen: list[str] = []

    @classmethod
    def hook(cls, event: str, args: tuple) -> None:
        if cls.root is None or event not in ("open", "os.listdir", "os.scandir") or not args:
            return
        path = args[0]
        if isinstance(path, (str, bytes, os.PathLike)) and not isinstance(path, int):
            real = os.path.realpath(os.fsdecode(path))
            inside = real == cls.root or real.startswith(cls.root + os.sep)
            if inside and not (cls.besides and real.startswith(cls.besides + os.sep)):
                cls.seen.append(real)


sys.addaudithook(PhotoReads.hook)


def refused(argv: list[str], data: Path, capsys, cwd: Path | None = None, model_inside: Path | None = None) -> str:
    """Run the command; its exit code must be 2 and nothing among the photos read, changed or added. Its one line."""
    before, entries = tree_snapshot(data), sorted(data.rglob("*"))
    capsys.readouterr()
    previous = Path.cwd()
    PhotoReads.root, PhotoReads.seen = os.path.realpath(data), []
    PhotoReads.besides = os.path.realpath(model_inside) if model_inside else None
    try:
        if cwd is not None:
            os.chdir(cwd)
        code = main(argv)
    finally:
        os.chdir(previous)
        PhotoReads.root = None
    error = capsys.readouterr().err
    assert code == 2, error
    assert error.startswith("zoolens: error: ") and error.count("\n") == 1, error
    assert PhotoReads.seen == [], f"read among the photos before refusing: {PhotoReads.seen[:3]}"
    assert tree_snapshot(data) == before and sorted(data.rglob("*")) == entries
    return error


@pytest.mark.parametrize("via", ["direct", "through a link"])
@pytest.mark.parametrize("case", list(CASES))
def test_every_output_on_or_among_the_photos_is_refused_before_any_work(case, via, places, capsys):
    words, option = CASES[case]
    output = words.index("--" + option.replace("_", "-")) + 1
    argv = [word.format(**{**places, "data": places["link" if via != "direct" and n == output else "data"]})
            for n, word in enumerate(words)]
    line = refused(argv, places["data"], capsys)
    assert f"--{option.replace('_', '-')} " in line and "photo" in line, line


@pytest.mark.parametrize("case", list(DEFAULTS))
def test_a_default_output_among_the_photos_is_refused(case, places, capsys):
    words, cwd = DEFAULTS[case]
    inner = places["data"] / "model"
    if "{inner}" in words:
        shutil.copytree(places["model"], inner)
    argv = [word.format(**places, inner=inner) for word in words]
    line = refused(argv, places["data"], capsys, cwd=places["data"] / cwd, model_inside=inner)
    assert "--out " in line and "photo" in line, line


def test_a_model_recorded_as_made_from_the_photos_exports_beside_them_no_more(places, capsys, tmp_path):
    """`export` without --check compares on the folder the model records: its output is kept apart from it too."""
    sent = Path(shutil.copytree(places["model"], tmp_path / "sent"))
    meta = json.loads((sent / "zoolens.json").read_text())
    meta["data"]["root"] = str(places["data"].resolve())
    (sent / "zoolens.json").write_text(json.dumps(meta))
    before = tree_snapshot(places["data"])
    assert main(["export", str(sent), "--out", str(places["data"] / "cats" / "model.onnx")]) == 2
    line = capsys.readouterr().err
    assert line.count("\n") == 1 and "--out is inside the photo folder" in line, line
    assert tree_snapshot(places["data"]) == before


def test_check_apart_takes_photo_files_several_inputs_and_no_output(tmp_path):
    """What a new command (a planned `zoolens results`) calls: the photo arguments as given, any number."""
    data = make_photos(tmp_path / "ds")
    photo = data / "cats" / "cats_0.jpg"
    check_apart([photo, data / "dogs"], None, "csv")  # an output not asked for is no output
    check_apart([photo, data / "dogs"], data / "cats" / "next-to-a-photo.csv", "csv")  # beside a photo given: allowed
    with pytest.raises(ZoolensError, match=r"`csv` is the photo"):
        check_apart([data / "dogs", photo], photo, "csv")
    with pytest.raises(ZoolensError, match=r"the photo is inside `csv`"):
        check_apart([photo], data, "csv")
    with pytest.raises(ZoolensError, match=r"`csv` is inside the photo folder"):
        check_apart([photo, data / "dogs"], data / "dogs" / "x.csv", "csv", data_name="the photo folder")
    os.symlink(photo, tmp_path / "alias.csv")
    with pytest.raises(ZoolensError, match=r"`csv` is the photo"):
        check_apart(photo, tmp_path / "alias.csv", "csv")


@pytest.mark.parametrize("outputs", [
    {"out": "{data}/results.parquet"},
    {"out": "{outside}/r.parquet", "sort_into": "{data}/sorted"},
    {"out": "{outside}/r.parquet", "summary_csv": "{photo}"},
    {"out": "{data}/../holding.parquet", "sort_into": "{data}/.."},
])
def test_the_batch_api_refuses_the_same_outputs_before_loading_the_model(outputs, places):
    from zoolens.inference.batch import predict_folder

    data = places["data"]
    before = tree_snapshot(data)
    given = {name: Path(value.format(**{k: str(v) for k, v in places.items()})) for name, value in outputs.items()}
    out = given.pop("out")
    with pytest.raises(ZoolensError, match="photo") as refusal:
        predict_folder(places["outside"] / "no-model-here", data, out, **given)
    assert "no-model-here" not in str(refusal.value)  # refused before the model was looked for
    assert tree_snapshot(data) == before and not any(data.rglob("*.csv")) and not any(data.rglob("*.parquet"))
