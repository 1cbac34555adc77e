"""The review loop behind the web app's "Review labels" page, without the page: the flagged photos of a dataset
(`zoolens data issues`), each person's decision written to a corrections file as it is made, and a retraining on
the corrected labels compared with one on the labels as they were, on the same test photos.

The photo folder is only read: decisions live in the corrections file, which may not lie inside it."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from zoolens.data.corrections import Corrections, read_corrections, record_decision, record_decisions
from zoolens.errors import ZoolensError
from zoolens.evaluation.data_issues import IN_DOUBT, MISLABELLED, NEAR_COPY, OUTLIER, Fix, Flag
from zoolens.files import lies_inside

log = logging.getLogger("zoolens")


def default_corrections_file(data: str | Path) -> Path:
    """Where the decisions go unless told: `./<data folder's name>-corrections.csv`, beside `zoolens data split`'s
    `./<name>-split.csv`."""
    return Path(f"{Path(data).resolve().name}-corrections.csv")


def check_corrections_file(data: str | Path, corrections: str | Path) -> Path:
    """`corrections`, refused when it lies inside the data folder, symbolic links followed (a link to the data
    folder, or the file itself a link into it), or when it exists and is not a corrections file."""
    corrections = Path(corrections)
    if lies_inside(os.path.realpath(corrections), os.path.realpath(data)):
        raise ZoolensError(f"{corrections}: is inside the data folder {data}; the review writes its decisions "
                           "outside the photos (choose another --corrections file)")
    if corrections.exists():
        read_corrections(corrections)  # a file that is not a corrections file is refused before any work
    return corrections


# Each kind of flag, as the review page names it, in the order the flags come.
FLAG_KINDS = {MISLABELLED: "Likely mislabelled", IN_DOUBT: "Labels in doubt", NEAR_COPY: "Near-copies across the split",
              OUTLIER: "Unlike the rest of their class"}


def flag_kind(flag: Flag) -> str:
    """What a flag is: MISLABELLED, IN_DOUBT (a training photo its heads answer another class, not confidently),
    NEAR_COPY (of a photo in another part of the split) or OUTLIER."""
    return next(kind for kind in FLAG_KINDS if flag.reason.startswith(kind))


def shown_flags(flags: list[Flag], kinds, hide: set[str] = frozenset()) -> list[Flag]:
    """The flags of `kinds`, in their order, without the photos in `hide` (paths: those already decided, say)."""
    kinds = set(kinds)
    return [flag for flag in flags if flag_kind(flag) in kinds and flag.path not in hide]


def believed_class(flag: Flag, decided: str, classes: list[str]) -> str:
    """The class a flagged photo's card offers: the one decided, else the suggestion, else the class it is filed
    under (an outlier has no suggestion: offering the first class would make relabelling it there one careless
    click)."""
    return next((name for name in (decided, flag.suggested, flag.given) if name in classes), classes[0])


@dataclass(frozen=True)
class Comparison:
    """Test accuracy before and after the corrections, both judged on the corrected labels of the same photos."""

    photos: int
    before: float
    after: float
    wrong_before: int
    wrong_after: int
    relabelled: int
    excluded: int


class Review:
    """One dataset's review: `flags()` (computed once, then kept), `decide()`, `decisions()`, `retrain()`."""

    def __init__(self, data: str | Path, corrections: str | Path | None = None, ratios: str = "70/10/20",
                 seed: int = 0):
        self.data = Path(data)  # class folders, a labels CSV or a Camtrap DP package: what scan_folder reads
        self.root = self.data.parent if self.data.is_file() else self.data  # where its photos' paths start
        self.corrections = check_corrections_file(self.root, corrections or default_corrections_file(self.root))
        self.ratios, self.seed = ratios, seed
        self._flags: list[Flag] | None = None
        self._fixes: list[Fix] = []  # data_issues.suggested_fixes, with the flags
        self._as_it_was = None  # the model on the labels as they were, once `retrain()` has made it
        self.classes: list[str] = []
        self.names: dict[str, str] = {}

    def flags(self, progress: bool = False) -> list[Flag]:
        """Every flagged photo (data_issues.review_rows): likely mislabelled first, most likely first; judged on the
        labels as the folder gives them, so that the list stays put while decisions (`decision()`) are made."""
        if self._flags is None:
            from zoolens.evaluation.data_issues import find_data_issues, review_rows, suggested_fixes

            issues = find_data_issues(self.data, ratios=self.ratios, seed=self.seed, progress=progress)
            self.classes, self.names = issues.classes, issues.names
            self._flags, self._fixes = review_rows(issues), suggested_fixes(issues)
        return self._flags

    def photo(self, flag: Flag) -> Path:
        return self.root / flag.path

    def decisions(self) -> Corrections:
        return read_corrections(self.corrections, self.classes or None) if self.corrections.exists() \
            else Corrections(file=self.corrections)

    def decide(self, flag: Flag, action: str, label: str = "") -> Corrections:
        if action == "relabel" and label not in self.classes:
            raise ZoolensError(f"{label!r} is not a class of {self.data}")
        return record_decision(self.corrections, flag.path, action, label, given=flag.given,
                               suggested=flag.suggested, score=flag.score, reason=flag.reason)

    def undecided_fixes(self, made: Corrections | None = None) -> list[Fix]:
        """The suggested fixes (data_issues.suggested_fixes) for training photos no one has decided on yet: not
        among the decisions `made` (read from the corrections file when not given)."""
        decided = (made or self.decisions()).decided()
        return [fix for fix in self._fixes if fix.path not in decided]

    def accept_suggested_fixes(self) -> Corrections:
        """Every undecided suggested fix written as a decision, in one step: the training photos in doubt relabelled
        where the out-of-fold heads are sure of the class, left out where not."""
        return record_decisions(self.corrections, [fix.decision() for fix in self.undecided_fixes()])

    def retrain(self, progress: bool = False) -> Comparison:
        """Two frozen-feature models (seconds each on a warm feature cache): on the labels as they were (made on the
        first call, then kept) and with the corrections; both judged on the test part with the corrections applied
        (the labels as now believed)."""
        from zoolens.data.corrections import corrected
        from zoolens.data.folders import scan_folder
        from zoolens.data.split import split_folder
        from zoolens.evaluation.evaluate import evaluate_samples
        from zoolens.training.trainer import train

        file = self.corrections if self.corrections.exists() else None
        manifest, applied = corrected(split_folder(scan_folder(self.data), self.ratios, self.seed), file)
        test = manifest.part("test")
        if not test:
            raise ZoolensError(f"{self.data}: no test part to compare the two models on")
        if self._as_it_was is None:  # the labels as the folder gives them never change: trained once per review
            self._as_it_was = train(self.data, None, ratios=self.ratios, seed=self.seed, progress=progress)
        corrected_model = train(self.data, None, corrections=file, ratios=self.ratios, seed=self.seed,
                                progress=progress)
        before, after = (evaluate_samples(model, test, "the corrected test part", progress=False)
                         for model in (self._as_it_was, corrected_model))
        return Comparison(photos=len(after.y_true), before=before.accuracy, after=after.accuracy,
                          wrong_before=_wrong(before), wrong_after=_wrong(after),
                          relabelled=len(applied.relabel) if applied else 0,
                          excluded=len(applied.exclude) if applied else 0)


def _wrong(evaluation) -> int:
    return int((evaluation.probabilities.argmax(1) != evaluation.y_true).sum())
