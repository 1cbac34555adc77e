"""The command line as a user types it: argument handling with real output, one-line errors, no tracebacks (in this
process). Whole commands on real photos are in tests/integration/test_cli_commands.py."""

import pytest


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


def test_a_study_without_data_says_what_it_compares(capsys):
    from zoolens.cli.program import main

    assert main(["study", "seed-002"]) == 0  # the former name
    said = capsys.readouterr().out
    assert said.startswith("pretrained-vs-scratch\n") and "Reproduces seed 002 (Subramanyam)" in said
    assert "baseline-cnn-scratch  backbone baseline_cnn" in said and "budgets: small, full" in said
    assert "run it: zoolens study seed-002 --data DATA --budget small" in said
