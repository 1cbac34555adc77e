"""The command line as a user types it: real output, one-line errors, no tracebacks."""

import csv
import subprocess
import sys

import pytest
from conftest import copy_subset
from PIL import Image


def zoolens(*args, cwd=None):
    result = subprocess.run([sys.executable, "-m", "zoolens.cli", *map(str, args)], capture_output=True, text=True,
                            cwd=cwd, timeout=600)
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.mark.slow
def test_data_inspect_names_every_problem(small_animals, tmp_path):
    data = copy_subset(small_animals, tmp_path / "d", per_class=5)
    (data / "cats" / "empty.jpg").write_bytes(b"")
    (data / "dogs" / "text.jpg").write_text("not an image")
    Image.new("L", (30, 20)).save(data / "dogs" / "grey.png")
    Image.new("CMYK", (30, 20)).save(data / "panda" / "cmyk.jpg")
    first = sorted((data / "cats").glob("cats_*.jpg"))[0]
    (data / "panda" / "copy.jpg").write_bytes(first.read_bytes())
    result = zoolens("data", "inspect", data, "--out", tmp_path / "summary")
    assert result.returncode == 0
    out = result.stdout
    assert "3 classes" in out and "cats" in out
    assert "empty.jpg: empty file" in out
    assert "text.jpg: not an image" in out
    assert "greyscale 1" in out and "cmyk 1" in out
    assert "exact duplicates: 1 group" in out and "copy.jpg" in out
    assert (tmp_path / "summary" / "class_balance.png").stat().st_size > 0


@pytest.mark.slow
def test_data_split_writes_a_manifest_outside_the_data(small_animals, tmp_path):
    result = zoolens("data", "split", small_animals, "--ratios", "70/10/20", "--seed", "0", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    manifest = tmp_path / "animals-split.csv"
    rows = list(csv.DictReader(manifest.open()))
    assert len(rows) == 180
    assert sum(r["split"] == "test" for r in rows) == 36
    assert not list(small_animals.glob("*.csv"))


@pytest.mark.slow
def test_train_with_one_class_is_one_clear_sentence(tmp_path):
    (tmp_path / "d" / "cats").mkdir(parents=True)
    Image.new("RGB", (10, 10)).save(tmp_path / "d" / "cats" / "a.jpg")
    result = zoolens("train", tmp_path / "d", "--out", tmp_path / "m")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "at least two class folders" in result.stderr
    assert not (tmp_path / "m").exists()


@pytest.mark.slow
def test_missing_folder_and_bad_option(small_animals, tmp_path):
    result = zoolens("train", tmp_path / "nowhere", "--out", tmp_path / "m")
    assert result.returncode == 2 and "no such folder" in result.stderr
    result = zoolens("train", small_animals, "--out", tmp_path / "m", "--ratios", "lots")  # a folder it could train on
    assert result.returncode == 2 and result.stderr.startswith("zoolens: error: --ratios "), result.stderr
    assert len(result.stderr.splitlines()) == 1 and not (tmp_path / "m").exists()


@pytest.mark.slow
def test_evaluate_and_predict_commands(trained_model, other_animals, tmp_path):
    result = zoolens("evaluate", trained_model.path, other_animals, "--out", tmp_path / "eval")
    assert result.returncode == 0, result.stderr
    assert "all photos in" in result.stdout and "precision" in result.stdout and "macro avg" in result.stdout
    assert (tmp_path / "eval" / "confusion_matrix.png").exists()

    photos = sorted((other_animals / "panda").iterdir())[:2]
    result = zoolens("predict", trained_model.path, *photos, other_animals / "cats", "--csv", tmp_path / "p.csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert len(rows) == 22
    assert rows[0]["label"] == "panda" and float(rows[0]["top1_confidence"]) > 0.5

    result = zoolens("predict", trained_model.path, photos[0], "--min-confidence", "1.01")
    assert "not sure" in result.stdout


@pytest.mark.slow
def test_predict_imagenet_without_training(tmp_path):
    from skimage import data

    Image.fromarray(data.chelsea()).save(tmp_path / "chelsea.png")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    result = zoolens("predict", "--imagenet", tmp_path / "chelsea.png", tmp_path / "broken.jpg", "--top-k", "5")
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.splitlines()[:2]
    assert any(cat in first for cat in ("tabby", "tiger cat", "Egyptian cat"))
    assert "broken.jpg" in second and "error" in second


@pytest.mark.slow
@pytest.mark.parametrize("args", [["predict", "nowhere-model", "x.jpg"], ["evaluate", "nowhere-model", "."]])
def test_missing_model_is_one_line(args, tmp_path):
    result = zoolens(*args, cwd=tmp_path)
    assert result.returncode == 2 and "no such model folder" in result.stderr


@pytest.mark.slow
def test_a_setting_out_of_range_names_the_field_in_python_and_the_option_on_the_command_line(tmp_path):
    from zoolens.errors import ConfigError, ZoolensError
    from zoolens.training.trainer import TrainConfig

    with pytest.raises(ValueError, match=r"^batch_size: must be at least 1, not 0$") as caught:
        TrainConfig(batch_size=0).validate()
    assert isinstance(caught.value, ConfigError) and isinstance(caught.value, ZoolensError)
    result = zoolens("train", tmp_path / "photos", "--out", tmp_path / "m", "--batch-size", "0")
    assert result.returncode == 2 and result.stderr == "zoolens: error: --batch-size must be at least 1, not 0\n"


@pytest.mark.slow
def test_a_setting_a_library_message_names_is_shown_as_the_commands_option(trained_model, tmp_path):
    from zoolens.cli.program import build_parser, option_fields, options_named
    from zoolens.errors import ZoolensError
    from zoolens.inference.batch.job import predict_folder

    photos = tmp_path / "photos"
    photos.mkdir()
    inside = photos / "sorted"
    with pytest.raises(ZoolensError, match=r"`sort_into` must be outside the photo folder"):  # Python's name
        predict_folder(trained_model, photos, tmp_path / "results", sort_into=inside, progress=False)
    result = zoolens("predict", trained_model.path, photos, "--out", tmp_path / "results", "--sort-into", inside)
    assert result.returncode == 2 and f"{inside}: --sort-into must be outside the photo folder" in result.stderr
    parser = build_parser()
    predict = option_fields(parser, parser.parse_args(["predict", "m", "x"]).run)
    assert options_named("`sort_into` and `out` and `engine`", predict) == "--sort-into and --out and --engine"
    train = option_fields(parser, parser.parse_args(["train", "x", "--out", "m"]).run)
    assert options_named("choose another `sort_into`", train) == "choose another `sort_into`"  # not train's option


@pytest.mark.slow
def test_a_backbone_whose_weights_are_missing_offline_is_one_clear_error(small_animals, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-cache"))  # no resnet18 weights cached
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = zoolens("train", small_animals, "--out", tmp_path / "m", "--backbone", "resnet18")
    assert result.returncode == 2
    # torch.hub's own "Downloading: ..." line may come first, for people who are online; then one line that says it.
    assert result.stderr.splitlines()[-1] == (
        f"zoolens: error: backbone 'resnet18': its pretrained weights are not in the local cache "
        f"({tmp_path / 'empty-torch-cache'}/hub/checkpoints) and could not be downloaded (URLError); use "
        "mobilenet_v2 or efficientnet_lite0 offline")
    assert not (tmp_path / "m").exists()



@pytest.mark.parametrize("argv, wanted", [
    (["trian", "photos/"], "zoolens: error: 'trian' is not a command; did you mean 'train'? (`zoolens -h` lists them)"),
    (["predcit", "m", "x.jpg"], "zoolens: error: 'predcit' is not a command; did you mean 'predict'?"),
    (["expain", "m"], "zoolens: error: 'expain' is not a command; did you mean 'explain'?"),
    (["data", "inpsect", "photos/"], "zoolens data: error: 'inpsect' is not a command; did you mean 'inspect'?"),
])
def test_a_mistyped_command_gets_the_closest_one(argv, wanted, capsys):
    from zoolens.cli.program import main

    assert main(argv) == 2
    said = capsys.readouterr().err
    assert said.startswith(wanted) and len(said.splitlines()) == 1, said


def test_right_commands_are_left_to_the_parser():
    from zoolens.cli.program import build_parser, mistyped_command

    parser = build_parser()
    for argv in (["train", "photos/", "--out", "m"], ["data", "inspect", "x"], ["--version"], ["predict", "trian"]):
        assert mistyped_command(parser, argv) is None, argv
