"""Bad inputs and hostile files against every command: a clear line naming the file, never a traceback or a hang."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from helpers import copy_subset, expected_refusals, hostile_models
from hardening_corpus import NON_UTF8_NAME, READABLE, make_corpus, running_as_root

from zoolens.data.images import open_image
from zoolens.errors import ImageError

COMMAND_TIMEOUT = 300


def zoolens(*args, cwd=None, timeout=COMMAND_TIMEOUT):
    result = subprocess.run([sys.executable, "-m", "zoolens.cli", *map(os.fsdecode, args)], capture_output=True,
                            cwd=cwd, timeout=timeout)  # bytes: a non-UTF-8 file name must not break the test itself
    result.out = result.stdout.decode("utf-8", "replace")
    result.err = result.stderr.decode("utf-8", "replace")
    assert "Traceback" not in result.err, result.err
    return result


@pytest.fixture(scope="module")
def corpus(small_animals, tmp_path_factory) -> dict[str, Path]:
    real = sorted((small_animals / "cats").glob("*.jpg"))[0].read_bytes()
    return make_corpus(tmp_path_factory.mktemp("corpus") / "bad", real)


@pytest.fixture(scope="module")
def bad_dataset(small_animals, tmp_path_factory) -> Path:
    """Ten real photos per class, with the whole corpus mixed into the cats."""
    data = copy_subset(small_animals, tmp_path_factory.mktemp("baddata") / "animals", per_class=10)
    make_corpus(data / "cats", sorted((small_animals / "cats").glob("*.jpg"))[0].read_bytes())
    return data


def assert_names_every_refusal(text: str, corpus_names: dict[str, str]) -> None:
    for kind, reason in expected_refusals().items():
        line = next((l for l in text.splitlines() if corpus_names[kind] in l), None)
        assert line is not None, f"{kind} ({corpus_names[kind]}) not named in:\n{text}"
        assert reason in line, f"{kind}: expected {reason!r} in {line!r}"


def names(corpus: dict[str, Path]) -> dict[str, str]:
    return {kind: path.name for kind, path in corpus.items()}


UNPRIVILEGED_OPEN = """
import sys
from zoolens.data.images import open_image
from zoolens.errors import ImageError
print(open_image(sys.argv[1]).size)
try:
    open_image(sys.argv[2])
except ImageError as error:
    print(error)
"""


def test_unreadable_file(corpus):
    if not running_as_root():
        with pytest.raises(ImageError, match="permission denied"):
            open_image(corpus["unreadable"])
        return
    # Root reads every file: the same check, as the unprivileged user `nobody` (setpriv), so CI runs it too.
    if not shutil.which("setpriv"):
        from helpers import missing_tool

        missing_tool("setpriv is not installed", "apt-get install -y util-linux")
    folder = Path(tempfile.mkdtemp(prefix="zoolens-unreadable-"))
    try:
        folder.chmod(0o755)
        readable, unreadable = folder / "readable.png", folder / "unreadable.png"
        shutil.copyfile(corpus["one_pixel"], readable)
        shutil.copyfile(corpus["one_pixel"], unreadable)
        readable.chmod(0o644)
        unreadable.chmod(0o000)
        result = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable,
                                 "-c", UNPRIVILEGED_OPEN, str(readable), str(unreadable)],
                                capture_output=True, text=True, timeout=120, cwd="/")
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stdout.splitlines() == ["(1, 1)", f"{unreadable}: permission denied"], result.stdout
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ---- every command, as a user types it -------------------------------------------------------------
def test_data_inspect_and_split_name_every_bad_file(bad_dataset, corpus, tmp_path):
    inspect = zoolens("data", "inspect", bad_dataset, "--json")
    assert inspect.returncode == 0, inspect.err
    summary = json.loads(inspect.out)
    problems = "\n".join(f"{p['path']}: {p['reason']}" for p in summary["unreadable"] + summary["skipped"])
    assert_names_every_refusal(problems, names(corpus))
    assert summary["special"]["cmyk"] == 1 and summary["special"]["16-bit"] == 1

    split = zoolens("data", "split", bad_dataset, "--out", tmp_path / "split.csv")
    assert split.returncode == 0, split.err
    assert (tmp_path / "split.csv").read_bytes().count(os.fsencode(NON_UTF8_NAME)) == 1  # the name survives, bytes intact


def test_predict_imagenet_and_groups_answer_each_file(corpus, tmp_path):
    folder = corpus["text"].parent
    for extra in ([], ["--groups"]):
        result = zoolens("predict", "--imagenet", *extra, folder, "/dev/zero", timeout=120)
        assert result.returncode == 0, result.err
        assert_names_every_refusal(result.out, names(corpus))
        assert "/dev/zero" in result.out and "not a regular file" in result.out
        for kind in READABLE:
            # The non-UTF-8 name is shown escaped (caf\udce9 ...): its line is the one with the rest of its name.
            shown = "with spaces.jpg" if kind == "odd_name" else names(corpus)[kind]
            lines = [line for line in result.out.splitlines() if shown in line]
            assert len(lines) == 1 and "error" not in lines[0], (kind, lines)


def test_train_evaluate_predict_explain_export_report_on_bad_data(bad_dataset, corpus, tmp_path):
    model = tmp_path / "model"
    train = zoolens("train", bad_dataset, "--out", model, "--image-size", "64", "--quiet")
    assert train.returncode == 0, train.err
    skipped = json.loads((model / "zoolens.json").read_text())["data"]["skipped"]
    assert_names_every_refusal("\n".join(f"{s['path']}: {s['reason']}" for s in skipped), names(corpus))

    evaluate = zoolens("evaluate", model, bad_dataset, "--out", tmp_path / "eval")
    assert evaluate.returncode == 0, evaluate.err

    predict = zoolens("predict", model, corpus["text"].parent, "--csv", tmp_path / "p.csv")
    assert predict.returncode == 0, predict.err
    assert_names_every_refusal(predict.out, names(corpus))

    explain = zoolens("explain", model, corpus["text"].parent, "--out", tmp_path / "explained")
    assert explain.returncode == 1, explain.err  # its documented status when some photos could not be explained
    assert_names_every_refusal(explain.err, names(corpus))
    assert len(list((tmp_path / "explained").glob("*.png"))) == len(READABLE) + running_as_root()

    export = zoolens("export", model, "--out", tmp_path / "m.onnx", "--check", bad_dataset)
    assert export.returncode == 0, export.err

    report = zoolens("report", model, "--data", bad_dataset, "--out", tmp_path / "report", "--quiet")
    assert report.returncode == 0, report.err


def test_kfold_on_bad_data(bad_dataset, corpus, tmp_path):
    result = zoolens("kfold", bad_dataset, "--k", "2", "--out", tmp_path / "kfold", "--image-size", "64", "--quiet")
    assert result.returncode == 0, result.err


def test_dogs_answers_each_file(corpus, trained_model):
    result = zoolens("dogs", "--breeds", trained_model.path, *sorted(corpus.values()), timeout=180)
    assert result.returncode == 0, result.err
    assert_names_every_refusal(result.out, names(corpus))


def test_data_folder_that_is_a_fifo_or_missing(corpus, tmp_path):
    for target in (corpus["fifo"], tmp_path / "missing", corpus["text"]):
        result = zoolens("data", "inspect", target, timeout=60)
        assert result.returncode == 2 and result.err.startswith("zoolens: error:"), result.err


MODEL_COMMANDS = {
    "predict": lambda m, photo, out: ["predict", m, photo],
    "evaluate": lambda m, photo, out: ["evaluate", m, photo.parent.parent, "--out", out],
    "export": lambda m, photo, out: ["export", m, "--out", out / "m.onnx"],
    "explain": lambda m, photo, out: ["explain", m, photo, "--out", out],
    "report": lambda m, photo, out: ["report", m, "--out", out, "--quiet"],
    "dogs --breeds": lambda m, photo, out: ["dogs", "--breeds", m, photo],
}


@pytest.mark.parametrize("command", list(MODEL_COMMANDS))
def test_every_model_command_refuses_hostile_models_and_runs_no_code(command, trained_model, small_animals, tmp_path):
    photo = sorted((small_animals / "cats").glob("*.jpg"))[0]
    models = hostile_models(trained_model, tmp_path)
    if command != "predict":  # every kind through one command, the pickle through all (each run costs seconds)
        models = {"pickle": models["pickle"]}
    for name, model in models.items():
        result = zoolens(*MODEL_COMMANDS[command](model, photo, tmp_path / f"out-{name}"), timeout=120)
        assert result.returncode == 2, (name, result.out, result.err)
        assert result.err.startswith("zoolens: error:") and str(model) in result.err, (name, result.err)
    assert not (tmp_path / "code-ran").exists()


def test_web_app_refuses_hostile_models_and_runs_no_code(trained_model, tmp_path):
    from zoolens.apps.common import Predictor
    from zoolens.errors import ZoolensError

    for name, model in hostile_models(trained_model, tmp_path).items():
        with pytest.raises(ZoolensError):
            Predictor(model)  # what the page's load_predictor calls; the page shows the error
    assert not (tmp_path / "code-ran").exists()


def test_the_hostile_pickle_really_runs_code_when_unpickled(trained_model, tmp_path):
    """The control for the tests above: unpickling the planted file does write the marker."""
    models = hostile_models(trained_model, tmp_path)
    pickle.loads((models["pickle"] / "model.safetensors").read_bytes())
    assert (tmp_path / "code-ran").exists()
