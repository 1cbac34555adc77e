"""`zoolens study`, `zoolens kfold`, `zoolens tune`: the seeds' comparisons, on any dataset."""

from __future__ import annotations

from pathlib import Path

from zoolens.choices import TuneMethod
from zoolens.cli.common import refuse_unless


def cmd_study(args) -> int:
    from zoolens.studies.spec import load_study

    spec = load_study(args.spec, args.budget)
    if args.data is None:
        refuse_unless(args, False, ("out", "quiet", "corrections"), "only when running the study, with --data DATA")
        print(spec.describe())
        print(f"\nrun it: zoolens study {args.spec} --data DATA" + (f" --budget {args.budget}" if args.budget else
                                                                    " --budget small"))
        return 0
    from zoolens.files import check_apart

    out = Path(args.out or f"studies/{spec.name}")
    check_apart(args.data, out)  # run_study checks too; this is before the training modules' imports (seconds)
    from zoolens.studies.runner import comparison_markdown, run_study

    rows = run_study(spec, args.data, out, progress=not args.quiet, corrections=args.corrections)
    print(comparison_markdown(rows, spec))
    print(f"wrote {out / 'comparison.csv'}, {out / 'comparison.md'}, {out / 'metrics.png'}, "
          f"{out / 'accuracy_curves.png'}; each run's model in {out}/<experiment>/")
    return 0


def cmd_kfold(args) -> int:
    from zoolens.cli.common import training_config
    from zoolens.files import check_apart

    check_apart(args.data, args.out)  # run_kfold checks too; this is before scikit-learn's import (seconds)
    from zoolens.studies.kfold import format_kfold, run_kfold

    summary = run_kfold(args.data, args.out, k=args.k, config=training_config(args), progress=not args.quiet,
                        corrections=args.corrections)
    print(format_kfold(summary))
    print(f"wrote {Path(args.out) / 'kfold.json'} and {Path(args.out) / 'kfold.png'}")
    return 0


def cmd_tune(args) -> int:
    from zoolens.cli.common import training_config
    from zoolens.errors import require_extra
    from zoolens.files import check_apart

    require_extra("optuna", "studies", "zoolens tune")  # before the training modules' imports (seconds)

    check_apart(args.data, args.out)  # run_tune checks too; this is before Optuna's import (a second or more)
    from zoolens.studies.tune import format_tune, run_tune, searched_settings

    refuse_unless(args, False, searched_settings(args.method), f"chosen by the {args.method} search for every "
                                                               "trial: leave them out (the other options hold)")
    summary = run_tune(args.data, args.out, trials=args.trials, method=args.method, config=training_config(args),
                       progress=not args.quiet, corrections=args.corrections)
    print(format_tune(summary))
    print(f"wrote {Path(args.out) / 'trials.csv'} and {Path(args.out) / 'best_config.json'}")
    return 0


def register(commands) -> None:
    from zoolens.cli.common import DATA_HELP, add_corrections_option, add_grouping_options, add_training_options
    from zoolens.studies.spec import preset_names

    study = commands.add_parser("study", help="run several experiments on one split; table and charts")
    study.add_argument("spec", metavar="STUDY", help=f"a study YAML file, or a preset: {', '.join(preset_names())} "
                                                     "(`zoolens study NAME` says what it compares and which report "
                                                     "it reproduces)")
    study.add_argument("--data", metavar="DATA", help=DATA_HELP + "; without it, the study is described, not run")
    study.add_argument("--budget", help="scale of the preset, e.g. small (this CPU, minutes) or full (a GPU)")
    study.add_argument("--out", metavar="FOLDER",
                       help="study folder (default studies/<name>); finished runs are kept and skipped")
    study.add_argument("--quiet", action="store_true", help="no progress output")
    add_corrections_option(study)
    study.set_defaults(run=cmd_study)

    kfold = commands.add_parser("kfold", help="stratified k-fold cross validation (grouped like the split); mean +- "
                                              "std; best fold kept")
    kfold.add_argument("data", metavar="DATA", help=DATA_HELP)
    kfold.add_argument("--k", type=int, default=5, help="how many folds")
    kfold.add_argument("--out", metavar="FOLDER", required=True,
                       help="folder for kfold.json, kfold.png and the best fold")
    kfold.add_argument("--quiet", action="store_true", help="no progress output")
    add_corrections_option(kfold)
    add_training_options(kfold)
    add_grouping_options(kfold)
    kfold.set_defaults(run=cmd_kfold)

    tune = commands.add_parser("tune", help="search optimizer, learning rate, dropout, epochs (Optuna, in "
                                                 "zoolens[studies])")
    tune.add_argument("data", metavar="DATA", help=DATA_HELP)
    tune.add_argument("--out", metavar="FOLDER", required=True, help="folder for trials.csv and best_config.json")
    tune.add_argument("--trials", type=int, default=20, help="how many settings to try")
    tune.add_argument("--method", default=TuneMethod.TPE.value, choices=TuneMethod.values(),
                      help="tpe (Optuna's guided search), random or grid")
    tune.add_argument("--quiet", action="store_true", help="no progress output")
    add_corrections_option(tune)
    add_training_options(tune)
    tune.set_defaults(run=cmd_tune)
