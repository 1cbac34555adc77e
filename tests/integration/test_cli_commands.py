"""The command line as a user types it, on real photos: whole commands that train, evaluate, predict and inspect,
with real output and one-line errors, no tracebacks. Argument handling alone is in tests/unit/test_cli.py."""

import csv

import pytest
from helpers import copy_subset, zoolens
from PIL import Image


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


def test_data_split_writes_a_manifest_outside_the_data(small_animals, tmp_path):
    result = zoolens("data", "split", small_animals, "--ratios", "70/10/20", "--seed", "0", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    manifest = tmp_path / "animals-split.csv"
    rows = list(csv.DictReader(manifest.open()))
    assert len(rows) == 180
    assert sum(r["split"] == "test" for r in rows) == 36
    assert not list(small_animals.glob("*.csv"))


def test_train_with_one_class_is_one_clear_sentence(tmp_path):
    (tmp_path / "d" / "cats").mkdir(parents=True)
    Image.new("RGB", (10, 10)).save(tmp_path / "d" / "cats" / "a.jpg")
    result = zoolens("train", tmp_path / "d", "--out", tmp_path / "m")
    assert result.returncode == 2
    started, error = result.stderr.splitlines()  # the line said at once, then the one-line error
    assert started.startswith("training a classifier on ") and "at least two class folders" in error
    assert not (tmp_path / "m").exists()


def test_missing_folder_and_bad_option(small_animals, tmp_path):
    result = zoolens("train", tmp_path / "nowhere", "--out", tmp_path / "m")
    assert result.returncode == 2 and "no such folder" in result.stderr
    result = zoolens("train", small_animals, "--out", tmp_path / "m", "--ratios", "lots")  # a folder it could train on
    assert result.returncode == 2 and result.stderr.startswith("zoolens: error: --ratios "), result.stderr
    assert len(result.stderr.splitlines()) == 1 and not (tmp_path / "m").exists()


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


def test_predict_imagenet_without_training(tmp_path):
    from skimage import data

    Image.fromarray(data.chelsea()).save(tmp_path / "chelsea.png")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    result = zoolens("predict", "--imagenet", tmp_path / "chelsea.png", tmp_path / "broken.jpg", "--top-k", "5")
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.splitlines()[:2]
    assert any(cat in first for cat in ("tabby", "tiger cat", "Egyptian cat"))
    assert "broken.jpg" in second and "error" in second


@pytest.mark.parametrize("args", [["predict", "nowhere-model", "x.jpg"], ["evaluate", "nowhere-model", "."]])
def test_missing_model_is_one_line(args, tmp_path):
    result = zoolens(*args, cwd=tmp_path)
    assert result.returncode == 2 and "no such model folder" in result.stderr


def test_a_setting_out_of_range_names_the_field_in_python_and_the_option_on_the_command_line(tmp_path):
    from zoolens.errors import ConfigError, ZoolensError
    from zoolens.training.config import TrainConfig

    with pytest.raises(ValueError, match=r"^batch_size: must be at least 1, not 0$") as caught:
        TrainConfig(batch_size=0).validate()
    assert isinstance(caught.value, ConfigError) and isinstance(caught.value, ZoolensError)
    result = zoolens("train", tmp_path / "photos", "--out", tmp_path / "m", "--batch-size", "0")
    assert result.returncode == 2 and result.stderr == "zoolens: error: --batch-size must be at least 1, not 0\n"


def test_a_setting_a_library_message_names_is_shown_as_the_commands_option(trained_model, tmp_path):
    from zoolens.cli.program import build_parser, command_parser, option_fields, options_named
    from zoolens.errors import ZoolensError
    from zoolens.inference.batch.job import predict_folder

    photos = tmp_path / "photos"
    photos.mkdir()
    inside = photos / "sorted"
    with pytest.raises(ZoolensError, match=r"`sort_into` is inside the photo folder"):  # Python's name
        predict_folder(trained_model, photos, tmp_path / "results", sort_into=inside, progress=False)
    result = zoolens("predict", trained_model.path, photos, "--out", tmp_path / "results", "--sort-into", inside)
    assert result.returncode == 2 and f"{inside}: --sort-into is inside the photo folder" in result.stderr
    parser = build_parser()
    predict = option_fields(command_parser(parser, parser.parse_args(["predict", "m", "x"]).run))
    assert options_named("`sort_into` and `out` and `engine`", predict) == "--sort-into and --out and --engine"
    train = option_fields(command_parser(parser, parser.parse_args(["train", "x", "--out", "m"]).run))
    assert options_named("choose another `sort_into`", train) == "choose another `sort_into`"  # not train's option


def test_a_backbone_whose_weights_are_missing_offline_is_one_clear_error(small_animals, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-cache"))  # no resnet18 weights cached
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = zoolens("train", small_animals, "--out", tmp_path / "m", "--backbone", "resnet18")
    assert result.returncode == 2
    # torch.hub's own "Downloading: ..." line may come first, for people who are online; then one line that says it.
    assert result.stderr.splitlines()[-1] == (
        f"zoolens: error: backbone 'resnet18': its pretrained weights are not in the local cache "
        f"({tmp_path / 'empty-torch-cache'}/hub/checkpoints) and could not be downloaded (URLError); offline, use "
        "one whose weights are installed: mobilenet_v2, efficientnet_lite0, efficientnet_lite1, efficientnet_lite2")
    assert not (tmp_path / "m").exists()


# loads the ImageNet classifier to reach the photo
def test_the_default_value_written_out_is_not_refused(capsys, tmp_path, monkeypatch):
    """Refusals go by what was written, so `--engine local` is as good as nothing."""
    from zoolens.cli.program import main

    monkeypatch.chdir(tmp_path)
    assert main(["predict", "--imagenet", "--engine", "local", "x.jpg"]) == 2
    assert "--engine: only with --out" in capsys.readouterr().err  # written: refused, even though it is the default
    main(["predict", "--imagenet", "x.jpg", "--top-k", "2"])
    said = capsys.readouterr()
    assert "x.jpg  error: file not found" in said.out and said.err == ""  # on to reading the photo: not refused
