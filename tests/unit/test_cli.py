"""The command line as a user types it: real output, one-line errors, no tracebacks."""

import csv

import pytest
from helpers import copy_subset, zoolens
from PIL import Image


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
    started, error = result.stderr.splitlines()  # the line said at once, then the one-line error
    assert started.startswith("training a classifier on ") and "at least two class folders" in error
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
    from zoolens.training.config import TrainConfig

    with pytest.raises(ValueError, match=r"^batch_size: must be at least 1, not 0$") as caught:
        TrainConfig(batch_size=0).validate()
    assert isinstance(caught.value, ConfigError) and isinstance(caught.value, ZoolensError)
    result = zoolens("train", tmp_path / "photos", "--out", tmp_path / "m", "--batch-size", "0")
    assert result.returncode == 2 and result.stderr == "zoolens: error: --batch-size must be at least 1, not 0\n"


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.parametrize("argv, usage, hint", [
    (["train", "photos/", "--out", "m", "--epoch", "3"], "usage: zoolens train DATA --out MODEL",
     "unrecognized arguments: --epoch 3 (--epoch: did you mean --epochs?)"),
    (["predict", "m", "x.jpg", "--min-conf", "0.5"], "usage: zoolens predict MODEL PHOTO [PHOTO ...]",
     "(--min-conf: did you mean --min-confidence?)"),
    (["data", "split", "photos/", "--bogus"], "usage: zoolens data split DATA", "unrecognized arguments: --bogus"),
])
def test_a_bad_option_prints_the_usage_of_its_command_and_the_closest_option(argv, usage, hint, capsys):
    from zoolens.cli.program import main

    with pytest.raises(SystemExit) as exit:
        main(argv)
    said = capsys.readouterr().err
    assert exit.value.code == 2 and said.startswith(usage), said
    assert f"zoolens {' '.join(argv[:2 if argv[0] == 'data' else 1])}: error: " in said and hint in said, said


def test_every_command_has_examples_a_plain_usage_and_shows_its_defaults():
    from zoolens.cli.examples import COMMANDS
    from zoolens.cli.program import build_parser, every_parser

    parsers = dict(every_parser(build_parser()))
    commands = {words for words, parser in parsers.items() if parser.get_default("run") is not None}
    assert commands <= set(COMMANDS), commands - set(COMMANDS)
    for words in commands | {""}:
        text = parsers[words].format_help()
        assert "examples:\n  zoolens " in text, words
        examples = COMMANDS[words][1]
        assert examples[0].split()[:len(words.split()) + 1] == ["zoolens", *words.split()], examples[0]
        for example in examples:
            if "COMMAND" not in example:
                parsers[""].parse_known_args(example.split("#")[0].split()[1:])  # each example parses
        usage = COMMANDS[words][0]
        assert usage is None or text.startswith(f"usage: {usage}")
    predict = parsers["predict"].format_help()
    assert "MODEL PATH [MODEL PATH" not in predict and "usage: zoolens predict MODEL PHOTO [PHOTO ...]" in predict
    for words, option, default in [("predict", "--top-k", "3"), ("train", "--seed", "0"), ("kfold", "--k", "5"),
                                   ("tune", "--trials", "20"), ("train", "--batch-size", "32"),
                                   ("web", "--min-confidence", "0.6"), ("dogs", "--n", "100")]:
        action = next(a for a in parsers[words]._actions if option in a.option_strings)
        assert parsers[words]._get_formatter()._expand_help(action).endswith(f"(default: {default})"), option


@pytest.mark.parametrize("argv, wanted", [
    (["predict", "--imagenet", "x.jpg", "--open-set", "strict"], "--open-set: only for trained models"),
    (["predict", "m", "x.jpg", "--backbone", "resnet18"], "--backbone: only with --imagenet"),
    (["predict", "m", "x.jpg", "--groups"], "--groups: only with --imagenet"),
    (["predict", "m", "photos/", "--copy", "--sort-into", "s"], "--sort-into: only with --out RESULTS.parquet"),
    (["predict", "m", "photos/", "--out", "r.parquet", "--copy"], "--copy: only with --sort-into FOLDER"),
    (["predict", "m", "photos/", "--out", "r.parquet", "--concurrency", "2"], "--concurrency: only with --engine ray"),
    (["predict", "m", "photos/", "--out", "r.parquet", "--csv", "a.csv"], "--csv: only for the photos listed here"),
    (["predict", "m", "photos/", "--workers", "2", "--limit", "5"], "--workers, --limit: only with --out"),
    (["train", "photos/", "--out", "m", "--no-augment"], "--no-augment: has nothing to change with --strategy frozen"),
    (["train", "photos/", "--out", "m", "--unfreeze", "2"], "--unfreeze chooses which blocks fine-tuning trains: "
                                                            "it needs --strategy finetune, not frozen"),
    (["train", "photos/", "--out", "m", "--split", "s.csv", "--ratios", "80/20"], "--ratios: not with --split"),
    (["explain", "m", "x.jpg", "--backbone", "resnet18"], "--backbone: only with --imagenet"),
    (["dogs", "x.jpg", "--n", "5"], "--n: only with --audit"),
    (["dogs", "--audit", "--breeds", "b"], "--breeds: not with --audit"),
    (["study", "pretrained-vs-scratch", "--out", "s"], "--out: only when running the study, with --data DATA"),
    (["tune", "photos/", "--out", "t", "--lr", "0.01", "--epochs", "5"], "--lr, --epochs: chosen by the tpe search"),
])
def test_an_option_that_would_do_nothing_is_refused_in_one_line(argv, wanted, capsys, tmp_path, monkeypatch):
    """Before anything is read: none of these paths exists."""
    from zoolens.cli.program import main

    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    said = capsys.readouterr().err
    assert said.startswith(f"zoolens: error: {wanted}") and said.count("\n") == 1, said
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow  # loads the ImageNet classifier to reach the photo
def test_the_default_value_written_out_is_not_refused(capsys, tmp_path, monkeypatch):
    """Refusals go by what was written, so `--engine local` is as good as nothing."""
    from zoolens.cli.program import main

    monkeypatch.chdir(tmp_path)
    assert main(["predict", "--imagenet", "--engine", "local", "x.jpg"]) == 2
    assert "--engine: only with --out" in capsys.readouterr().err  # written: refused, even though it is the default
    main(["predict", "--imagenet", "x.jpg", "--top-k", "2"])
    said = capsys.readouterr()
    assert "x.jpg  error: file not found" in said.out and said.err == ""  # on to reading the photo: not refused


def test_a_study_without_data_says_what_it_compares(capsys):
    from zoolens.cli.program import main

    assert main(["study", "seed-002"]) == 0  # the former name
    said = capsys.readouterr().out
    assert said.startswith("pretrained-vs-scratch\n") and "Reproduces seed 002 (Subramanyam)" in said
    assert "baseline-cnn-scratch  backbone baseline_cnn" in said and "budgets: small, full" in said
    assert "run it: zoolens study seed-002 --data DATA --budget small" in said
