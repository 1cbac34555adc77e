"""`zoolens data issues`: the photos of a dataset worth a person's look, from its frozen features (cached, so a
warm run takes seconds) and out-of-fold class probabilities (k dense heads on those features, fitted as `zoolens
train` fits its head (`models.dense_head.fit_dense_head`), each judging only the photos it was not fitted on):

- likely mislabelled photos, ranked by confident learning (cleanlab's `find_label_issues`), each with its given
  label, the label the features suggest and a score;
- near-duplicates (resized, re-encoded, slightly cropped copies, not only identical bytes): candidates by feature
  similarity, each confirmed on its pixels,
  loudly those whose two photos fall in different parts of the split (a test photo whose copy was trained on
  inflates the accuracy reported);
- outliers: photos far from every other photo of their class (another animal, a blank frame, a screenshot);
- class balance: each class's photos and out-of-fold recall, with a remedy when a small class pays for it;
- suggested corrections: a corrections file that fixes the training part's labels without a person, for
  `zoolens train --corrections` (`suggested_corrections`).

Each finding is a frozen dataclass (`LabelIssue`, `NearCopy`, `Outlier`, `ClassCount`, `Fix`, `Flag`); `to_dict`
makes it a row where it is written to a file, with the columns and cells the CSVs have always had.

The photos are only read."""

from __future__ import annotations

import csv
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from zoolens.data.camera_trap import DEFAULT_SEQUENCE_GAP_S
from zoolens.data.corrections import Corrections, refresh_review, write_corrections
from zoolens.files import output_folder
from zoolens.models.dense_head import HeadSettings, fit_dense_head, fit_temperature, head_probabilities
from zoolens.spreadsheet import to_row

log = logging.getLogger("zoolens")

FOLDS = 5
# Of each fold's photos, the share its head holds out to stop on (the validation loss, as `zoolens train` stops its
# head on its validation part); the head fits on the rest.
HEAD_VALIDATION = 0.125
# Near-copies are found in two steps, measured by benchmarks/near_duplicates.py (50 copies of Imagewoof training
# photos, made half size, re-encoded at JPEG quality 50, 5 % cropped, or cropped off centre to 3/4 size, among its
# 6500 photos). First, candidates: pairs whose L2-normalised MobileNetV2 features have a cosine similarity of at least
# CANDIDATE_SIMILARITY; copies reach 0.89 at the least, but distinct photos get as close (7 pairs above 0.95), so
# features alone cannot tell. Then each candidate's pixels: the grey thumbnail of one photo matched over the other's
# at a few scales (OpenCV's normalised cross-correlation): copies 0.954 at the least, distinct candidates 0.92 at the
# most, but for Imagewoof's own 4 duplicate pairs (0.976 to 1.0; one photo is filed under two breeds).
CANDIDATE_SIMILARITY = 0.87
PIXEL_MATCH = 0.93
THUMBNAIL_SIDE = 96
MATCH_SCALES = (1.0, 0.95, 0.9, 0.85, 0.8)  # of the larger photo that the other may show: crops up to 10 % a side
NEIGHBOURS = 5  # of the same class, for the outlier score
OUTLIER_MADS = 4.0  # a photo further from its class than its class's median by this many median deviations
IMBALANCE_RATIO = 3.0  # largest class over smallest: a warning from here on
# The suggested corrections relabel a training photo in doubt where its out-of-fold heads give the class they suggest
# at least this probability, and leave it out where they do not. Measured by `benchmarks/label_noise.py
# [--sure-relabel P]` (5 % of the training labels flipped, 5 draws; the share of the accuracy lost to the noise won
# back): from 0.8 up, 107 % on animals3 and 102 % on Imagewoof; from 0.5 up 92 % and from 0.9 up 97 % on animals3;
# every flag relabelled 55 % / 81 %, every flag left out 59 % / 120 % (3 training seeds, PyTorch's head). With the
# head trained in NumPy and `--training-seeds 6`: from 0.8 up 112 % / 92 %, every flag relabelled 62 % / 124 %, left
# out 74 % / 115 %. With the out-of-fold heads fitted by `fit_dense_head` rather than scikit-learn's logistic regression
# (3 training seeds, animals3): from 0.8 up 103 % (111 % before), every flag relabelled 68 % (57 %), left out 67 %
# (71 %); flipped photos among the first N flags 94.3 % (93.5 %).
SURE_RELABEL = 0.8
IN_DOUBT = "its out-of-fold heads disagree with its label"


@dataclass(frozen=True)
class Finding:
    def to_dict(self) -> dict:
        """The finding as a row of its CSV file: one column per field, in the order declared."""
        return asdict(self)


@dataclass(frozen=True)
class LabelIssue(Finding):
    """A photo whose given label its out-of-fold heads find less likely than another (confident learning)."""

    path: str  # as given under the data folder
    given: str
    suggested: str
    score: float  # 1 minus the out-of-fold probability of the given label
    part: str  # train / val / test


@dataclass(frozen=True)
class NearCopy(Finding):
    """Two photos that are copies of one another (resized, re-encoded, slightly cropped)."""

    path_a: str
    path_b: str
    similarity: float  # of their features (cosine)
    pixel_match: float  # of their grey thumbnails (`pixel_match`)
    part_a: str
    part_b: str
    crosses_split: bool
    same_label: bool


@dataclass(frozen=True)
class Outlier(Finding):
    """A photo far from every other photo of its class."""

    path: str
    given: str
    score: float  # median absolute deviations above its class's median distance
    distance: float
    part: str


@dataclass(frozen=True)
class ClassCount(Finding):
    """A class's photos and the out-of-fold recall its heads reach on them."""

    label: str  # the class (its folder's name): the CSV's "class" column
    name: str
    photos: int
    recall: float

    def to_dict(self) -> dict:
        return {"class": self.label, "name": self.name, "photos": self.photos, "recall": self.recall}


@dataclass(frozen=True)
class Fix(Finding):
    """A training photo's label fixed without a person: relabelled to the class its heads suggest (`label`), or
    left out; a corrections file's row (`to_dict`)."""

    path: str
    action: str  # relabel / exclude
    label: str  # the new class; "" when left out
    given: str
    suggested: str
    probability: float  # the out-of-fold probability of the suggested class
    score: float
    reason: str

    def decision(self) -> dict:
        """The fix as a decision for a corrections file a person writes in (`record_decisions`)."""
        return {key: value for key, value in self.to_dict().items() if key != "probability"}


@dataclass(frozen=True)
class Flag(Finding):
    """A flagged photo for a person to decide on: a row of to_review.csv, undecided (`to_dict`)."""

    path: str
    reason: str  # MISLABELLED, IN_DOUBT, NEAR_COPY ... or OUTLIER: what the review page groups by
    score: float
    label: str = ""  # the class the decision would relabel it to, when there is a suggestion
    given: str = ""
    suggested: str = ""

    def to_dict(self) -> dict:
        return {"path": self.path, "action": "", "label": self.label, "given": self.given,
                "suggested": self.suggested, "score": self.score, "reason": self.reason}


@dataclass
class DataIssues:
    root: Path
    classes: list[str]
    names: dict[str, str]
    paths: list[str]  # as given under the data folder
    labels: np.ndarray  # (N,) class indices
    roles: list[str]  # train / val / test, per photo
    probabilities: np.ndarray  # (N, C) out-of-fold
    label_issues: list[LabelIssue] = field(default_factory=list)  # most likely mislabelled first
    near_duplicates: list[NearCopy] = field(default_factory=list)  # pairs crossing the split first, then most similar
    outliers: list[Outlier] = field(default_factory=list)  # furthest from their class first
    balance: list[ClassCount] = field(default_factory=list)  # per class
    skipped: list[tuple[str, str]] = field(default_factory=list)
    corrections: Corrections | None = None  # a person's decisions the photos were judged with

    def name(self, index: int) -> str:
        label = self.classes[index]
        return self.names.get(label, label)

    @property
    def leaks(self) -> list[NearCopy]:
        return [pair for pair in self.near_duplicates if pair.crosses_split]

    def balance_warning(self) -> str | None:
        """What an unbalanced dataset costs, and the remedy; None when the classes are about even."""
        counts = [row.photos for row in self.balance]
        if not counts or max(counts) < IMBALANCE_RATIO * max(min(counts), 1):
            return None
        small = min(self.balance, key=lambda row: row.photos)
        large = max(self.balance, key=lambda row: row.photos)
        return (f"unbalanced classes: {small.name} has {small.photos} photos against {large.photos} of "
                f"{large.name}; out-of-fold recall {small.recall:.0%} against {large.recall:.0%}. "
                f"Train with --balance weighted (every class counts the same in the loss), or collect more "
                f"{small.name} photos.")


def find_data_issues(data: str | Path, backbone: str = "mobilenet_v2", split_file: str | Path | None = None,
                     ratios: str = "70/10/20", seed: int = 0, corrections: str | Path | None = None,
                     progress: bool | None = None, group_by: str | None = None,
                     sequence_gap: float = DEFAULT_SEQUENCE_GAP_S) -> DataIssues:
    """Every kind of issue for the photos under `data`, judged on the split `zoolens train` would use (the same
    ratios and seed, or `split_file`) with `corrections` applied: relabelled photos judged under their new class,
    excluded ones left out, and photos a person kept as they are no longer flagged as mislabelled or outliers.
    `progress`: the features' bar shown or not; None: as the caller's `progress.showing` says (a report's)."""
    from zoolens.data.corrections import corrected, relative_key
    from zoolens.data.folders import scan_folder
    from zoolens.data.split import split_or_manifest
    from zoolens.models.available import describe_backbone
    from zoolens.runtime.extractor import pretrained_extractor
    from zoolens.runtime.features import extract_features
    from zoolens.runtime.pretrained_kit import find_kit

    folder = scan_folder(data)
    manifest, applied = corrected(split_or_manifest(folder, ratios, seed, split_file, group_by, sequence_gap),
                                  corrections)
    # The frozen features `zoolens train` reads: from its cache, through the cached kit when there is one (nothing
    # built, no PyTorch on a warm cache).
    info = describe_backbone(backbone)
    network = pretrained_extractor(backbone, info.preprocessing, find_kit(info))
    samples = [sample for sample, _ in manifest.rows]
    found = extract_features([s.path for s in samples], network, info.preprocessing, progress=progress)
    usable = np.flatnonzero(found.usable)
    features = found.features[usable]
    index = {name: i for i, name in enumerate(manifest.classes)}
    labels = np.array([index[samples[i].label] for i in usable])
    issues = DataIssues(
        root=folder.root, classes=manifest.classes, names=folder.names,
        paths=[relative_key(samples[i].path, folder.root) for i in usable], labels=labels,
        roles=[manifest.rows[i][1] for i in usable],
        probabilities=out_of_fold_probabilities(features, labels, seed),  # on the features as train's head sees them
        skipped=list(folder.skipped) + list(found.problems), corrections=applied)
    kept = applied.keep if applied else set()
    issues.label_issues = [row for row in ranked_label_issues(issues) if row.path not in kept]
    unit = _unit_rows(features)  # photos alike by direction: copies, outliers
    issues.near_duplicates = near_duplicates(issues, unit, [samples[i].path for i in usable])
    issues.outliers = [row for row in class_outliers(issues, unit) if row.path not in kept]
    issues.balance = class_balance(issues)
    return issues


def _unit_rows(features: np.ndarray) -> np.ndarray:
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)


def out_of_fold_probabilities(features: np.ndarray, labels: np.ndarray, seed: int = 0,
                              settings: HeadSettings | None = None) -> np.ndarray:
    """(N, C) class probabilities for each photo from a head that never saw it (the recipe cleanlab's documentation
    gives): FOLDS stratified folds, each judged by a dense head fitted on the others as `zoolens train` fits and
    calibrates its head (`fit_dense_head`, its settings by default; then `fit_temperature`), stopping on and
    calibrated on HEAD_VALIDATION of them."""
    from sklearn.model_selection import StratifiedKFold

    settings = settings or HeadSettings(seed=seed)
    classes = int(labels.max()) + 1
    folds = max(2, min(FOLDS, int(np.bincount(labels).min())))
    probabilities = np.zeros((len(labels), classes))
    for fitted, judged in StratifiedKFold(folds, shuffle=True, random_state=seed).split(features, labels):
        train, val = _validation_part(fitted, labels, seed)
        head, _ = fit_dense_head(features[train], labels[train], features[val], labels[val], classes=classes,
                                 settings=settings)
        temperature = fit_temperature(head(features[val]), labels[val]) if len(val) else 1.0
        probabilities[judged] = head_probabilities(head, features[judged], temperature)
    return probabilities


def _validation_part(rows: np.ndarray, labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`rows` as (fitted on, stopped on): HEAD_VALIDATION of them held out, by class where each class can spare
    one; all fitted on and none held out where they are too few to spare any."""
    from sklearn.model_selection import train_test_split

    held_out = round(HEAD_VALIDATION * len(rows))
    if held_out < 1:
        return rows, rows[:0]
    counts = np.bincount(labels[rows])
    by_class = counts[counts > 0].min() >= 2 and held_out >= np.count_nonzero(counts)
    train, val = train_test_split(rows, test_size=held_out, stratify=labels[rows] if by_class else None,
                                  random_state=seed)
    return np.sort(train), np.sort(val)


# cleanlab otherwise forks a process pool per call (one per core). Forked from a threaded process, the web app's
# server, a child can inherit a lock held by another thread and wait on it forever: the review page never appeared
# (seen twice, the child left orphaned on a futex). Pruning a few classes in this process takes milliseconds.
CLEANLAB_PROCESSES = 1


def ranked_label_issues(issues: DataIssues) -> list[LabelIssue]:
    """Confident learning (cleanlab): the photos whose given label is less likely than another, most likely
    mislabelled first; `score` is 1 minus the out-of-fold probability of the given label."""
    from cleanlab.filter import find_label_issues

    if len(np.unique(issues.labels)) < 2:
        return []
    ranked = find_label_issues(issues.labels, issues.probabilities, return_indices_ranked_by="self_confidence",
                               n_jobs=CLEANLAB_PROCESSES)
    return [LabelIssue(path=issues.paths[i], given=issues.classes[issues.labels[i]],
                       suggested=issues.classes[int(issues.probabilities[i].argmax())],
                       score=round(float(1 - issues.probabilities[i, issues.labels[i]]), 4), part=issues.roles[i])
            for i in ranked]


def suggested_corrections(issues: DataIssues) -> list[dict]:
    """A corrections file's rows that fix the training part's labels without a person: the decisions the photos
    were judged with, as they were, then `suggested_fixes`."""
    return ([dict(row) for row in (issues.corrections.rows if issues.corrections else [])]
            + [fix.to_dict() for fix in suggested_fixes(issues)])


def suggested_fixes(issues: DataIssues) -> list[Fix]:
    """Every training photo in doubt that no person decided on (flagged as likely mislabelled, or its out-of-fold
    heads answer another class than its label), the most doubtful first: relabelled to the class the heads suggest
    where they give it at least SURE_RELABEL, left out where they do not.

    Confident learning alone passes over the photos whose probability is spread over the other classes (a flipped
    label at 0.03 with 0.6 / 0.37 for the others): those lie near the classes' borders, where a wrong label costs
    the most accuracy (benchmarks/label_noise.py). Validation and test photos are left to a person: fixing them by
    the heads' own opinion would make the model grade itself."""
    decided = issues.corrections.decided() if issues.corrections else set()
    flagged = {row.path for row in issues.label_issues}
    given_probability = issues.probabilities[np.arange(len(issues.labels)), issues.labels]
    fixes = []
    for i in np.argsort(given_probability, kind="stable"):
        path, given, suggested = issues.paths[i], int(issues.labels[i]), int(issues.probabilities[i].argmax())
        if issues.roles[i] != "train" or path in decided or suggested == given:
            continue
        sure = issues.probabilities[i, suggested] >= SURE_RELABEL
        fixes.append(Fix(path=path, action="relabel" if sure else "exclude",
                         label=issues.classes[suggested] if sure else "", given=issues.classes[given],
                         suggested=issues.classes[suggested],
                         probability=round(float(issues.probabilities[i, suggested]), 4),
                         score=round(float(1 - given_probability[i]), 4),
                         reason=MISLABELLED if path in flagged else IN_DOUBT))
    return fixes


def near_duplicates(issues: DataIssues, features: np.ndarray, photos: list[Path],
                    candidate: float = CANDIDATE_SIMILARITY, match: float = PIXEL_MATCH) -> list[NearCopy]:
    """Pairs of photos that are copies of one another (resized, re-encoded, slightly cropped), each pair once: the
    candidates by feature similarity, then confirmed on their pixels (`pixel_match`); the ones whose photos are in
    different parts of the split first, then the most alike."""
    from sklearn.neighbors import NearestNeighbors

    if len(features) < 2:
        return []
    neighbours = NearestNeighbors(n_neighbors=min(6, len(features)), metric="cosine").fit(features)
    distances, indices = neighbours.kneighbors(features)
    candidates = {}
    for i in range(len(features)):
        for distance, j in zip(distances[i], indices[i]):
            if j != i and 1.0 - float(distance) >= candidate:
                candidates[(min(i, j), max(i, j))] = 1.0 - float(distance)
    thumbnails = Thumbnails(photos)
    rows = []
    for (a, b), similarity in candidates.items():
        pixels = pixel_match(thumbnails[a], thumbnails[b])
        if pixels >= match:
            rows.append(NearCopy(path_a=issues.paths[a], path_b=issues.paths[b], similarity=round(similarity, 4),
                                 pixel_match=round(pixels, 4), part_a=issues.roles[a], part_b=issues.roles[b],
                                 crosses_split=issues.roles[a] != issues.roles[b],
                                 same_label=bool(issues.labels[a] == issues.labels[b])))
    return sorted(rows, key=lambda row: (not row.crosses_split, -row.pixel_match, -row.similarity))


class Thumbnails:
    """Grey thumbnails (THUMBNAIL_SIDE px on the longer side) of the photos, made once each when first asked for; a
    photo that cannot be read has none."""

    def __init__(self, photos: list[Path]):
        self.photos, self.made = photos, {}

    def __getitem__(self, index: int) -> np.ndarray | None:
        if index not in self.made:
            self.made[index] = grey_thumbnail(self.photos[index])
        return self.made[index]


def grey_thumbnail(photo: Path) -> np.ndarray | None:
    from zoolens.data.images import ImageError, open_image

    try:
        image = open_image(photo, min_side=2 * THUMBNAIL_SIDE).convert("L")
    except ImageError:
        return None
    image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    return np.asarray(image, dtype=np.float32)


def pixel_match(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """How well one grey thumbnail matches a part of the other, scaled to MATCH_SCALES of it: the best normalised
    cross-correlation (1: the same pixels); -1 when a photo could not be read."""
    if a is None or b is None:
        return -1.0
    return max(_best_placement(a, b), _best_placement(b, a))


def _best_placement(larger: np.ndarray, smaller: np.ndarray) -> float:
    import cv2

    best = -1.0
    height, width = larger.shape
    for scale in MATCH_SCALES:
        w = round(width * scale)
        h = round(smaller.shape[0] * w / smaller.shape[1])
        if h > height:  # the other way round: as tall as `scale` of the larger, its width from its shape
            h = round(height * scale)
            w = round(smaller.shape[1] * h / smaller.shape[0])
        if min(w, h) < 16 or w > width or h > height:
            continue
        template = cv2.resize(smaller, (w, h), interpolation=cv2.INTER_AREA)
        if template.std() < 1e-3:  # a flat picture correlates with nothing (and divides by zero)
            continue
        best = max(best, float(cv2.matchTemplate(larger, template, cv2.TM_CCOEFF_NORMED).max()))
    return best


def class_outliers(issues: DataIssues, features: np.ndarray) -> list[Outlier]:
    """Photos far from the rest of their class: the mean cosine distance to their NEIGHBOURS nearest photos of
    the class, flagged when above the class's median by OUTLIER_MADS median absolute deviations."""
    from sklearn.neighbors import NearestNeighbors

    rows = []
    for c in range(len(issues.classes)):
        members = np.flatnonzero(issues.labels == c)
        if len(members) <= NEIGHBOURS + 1:
            continue
        fitted = NearestNeighbors(n_neighbors=NEIGHBOURS + 1, metric="cosine").fit(features[members])
        distances, _ = fitted.kneighbors(features[members])
        spread = distances[:, 1:].mean(axis=1)  # the first neighbour is the photo itself
        median = float(np.median(spread))
        deviation = float(np.median(np.abs(spread - median))) or 1e-6
        for member, value in zip(members, spread):
            score = (value - median) / deviation
            if score >= OUTLIER_MADS:
                rows.append(Outlier(path=issues.paths[member], given=issues.classes[c], score=round(float(score), 2),
                                    distance=round(float(value), 4), part=issues.roles[member]))
    return sorted(rows, key=lambda row: -row.score)


def class_balance(issues: DataIssues) -> list[ClassCount]:
    predicted = issues.probabilities.argmax(1)
    rows = []
    for c, label in enumerate(issues.classes):
        members = issues.labels == c
        rows.append(ClassCount(label=label, name=issues.name(c), photos=int(members.sum()),
                               recall=float((predicted[members] == c).mean()) if members.any() else float("nan")))
    return rows


# ---- what is written ---------------------------------------------------------------------------------------
LABEL_COLUMNS = ["path", "given", "suggested", "score", "part"]
DUPLICATE_COLUMNS = ["path_a", "path_b", "similarity", "pixel_match", "part_a", "part_b", "crosses_split",
                     "same_label"]
OUTLIER_COLUMNS = ["path", "given", "score", "distance", "part"]
REVIEW_COLUMNS = ["path", "action", "label", "given", "suggested", "score", "reason"]
SHEET_PHOTOS = 20


def write_data_issues(issues: DataIssues, out: str | Path) -> dict[str, Path]:
    """label_issues.csv, near_duplicates.csv, outliers.csv, class_balance.csv and a contact sheet of each kind;
    to_review.csv made anew with every decision a person wrote in it kept (`refresh_review`); text cells by the
    spreadsheet rule (zoolens/spreadsheet.py)."""
    out = output_folder(out)
    written = {  # to_review first: one a person broke (no path,action columns) is refused before anything changes
        "to_review": refresh_review(out / "to_review.csv", [flag.to_dict() for flag in review_rows(issues)],
                                    REVIEW_COLUMNS),
        "label_issues": _write_csv(out / "label_issues.csv", LABEL_COLUMNS, issues.label_issues),
        "near_duplicates": _write_csv(out / "near_duplicates.csv", DUPLICATE_COLUMNS, issues.near_duplicates),
        "outliers": _write_csv(out / "outliers.csv", OUTLIER_COLUMNS, issues.outliers),
        "class_balance": _write_csv(out / "class_balance.csv", ["class", "name", "photos", "recall"], issues.balance),
        "suggested_corrections": write_corrections(out / "suggested_corrections.csv", suggested_corrections(issues)),
    }
    sheets = {
        "label_issues.png": ("Likely mislabelled (given → suggested)", [
            (row.path, f"{_short(issues, row.given)} → {_short(issues, row.suggested)} ({row.score:.2f})")
            for row in issues.label_issues[:SHEET_PHOTOS]]),
        "near_duplicates.png": ("Near-duplicates (pairs side by side)", [
            item for row in issues.near_duplicates[: SHEET_PHOTOS // 2]
            for item in ((row.path_a, f"{row.part_a} · {row.pixel_match:.3f}"),
                         (row.path_b, row.part_b + (" · CROSSES THE SPLIT" if row.crosses_split else "")))]),
        "outliers.png": ("Unlike the rest of their class", [
            (row.path, f"{_short(issues, row.given)} ({row.score:.1f} MAD)")
            for row in issues.outliers[:SHEET_PHOTOS]]),
    }
    from zoolens.evaluation.plots import plot_image_grid

    for file_name, (title, items) in sheets.items():
        items = [(str(issues.root / path), caption) for path, caption in items]
        if plot_image_grid(items, out / file_name, title, columns=4 if "duplicates" in file_name else 5):
            written[file_name.removesuffix(".png") + "_sheet"] = out / file_name
    return written


# Why a photo is flagged, as review_rows says it (a near-copy's reason goes on to name the other photo).
MISLABELLED, NEAR_COPY, OUTLIER = "likely mislabelled", "near-copy", "unlike the rest of its class"


def review_rows(issues: DataIssues) -> list[Flag]:
    """Every flagged photo once, undecided, for a person to decide on: a corrections file (data/corrections.py)
    once its action column is filled in (relabel to the label given, exclude, keep). Likely mislabelled photos first
    (label: the suggested class), then the other training photos in doubt (`suggested_fixes`), then the test-side
    photo of each near-copy across the split, then outliers."""
    rows: dict[str, Flag] = {}
    in_doubt = [fix for fix in suggested_fixes(issues) if fix.reason == IN_DOUBT]
    for row, reason in [(row, MISLABELLED) for row in issues.label_issues] + [(fix, IN_DOUBT) for fix in in_doubt]:
        rows.setdefault(row.path, Flag(path=row.path, reason=reason, score=row.score, label=row.suggested,
                                       given=row.given, suggested=row.suggested))
    for pair in issues.leaks:
        later, other = ((pair.path_a, pair.path_b) if ROLE_ORDER[pair.part_a] > ROLE_ORDER[pair.part_b]
                        else (pair.path_b, pair.path_a))
        rows.setdefault(later, Flag(path=later, reason=f"{NEAR_COPY} of {other} in another part of the split",
                                    score=pair.pixel_match))
    for row in issues.outliers:
        rows.setdefault(row.path, Flag(path=row.path, reason=OUTLIER, score=row.score, given=row.given))
    return list(rows.values())


ROLE_ORDER = {"train": 0, "val": 1, "test": 2}


def _short(issues: DataIssues, label: str) -> str:
    return issues.names.get(label, label)


def _write_csv(path: Path, columns: list[str], rows: list[Finding]) -> Path:
    with open(path, "w", newline="", encoding="utf-8", errors="surrogateescape") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(to_row(row.to_dict()) for row in rows)
    return path


def format_data_issues(issues: DataIssues, shown: int = 10) -> str:
    photos = len(issues.paths)
    lines = [f"{issues.root}: {photos} photos in {len(issues.classes)} classes; out-of-fold accuracy "
             f"{(issues.probabilities.argmax(1) == issues.labels).mean():.1%} ({FOLDS} heads on the frozen features)",
             "", f"likely mislabelled: {len(issues.label_issues)} of {photos}"]
    lines += [f"  {row.path}  given {_short(issues, row.given)}, looks like {_short(issues, row.suggested)}"
              f" ({row.score:.2f})" for row in issues.label_issues[:shown]]
    fixes = suggested_fixes(issues)
    relabelled = sum(row.action == "relabel" for row in fixes)
    lines += ["", f"suggested corrections for the training part: {relabelled} photo(s) relabelled (the heads give the "
              f"class at least {SURE_RELABEL:.0%}), {len(fixes) - relabelled} left out (in doubt)"]
    leaks = issues.leaks
    lines += ["", f"near-duplicates: {len(issues.near_duplicates)} pair(s)"
              + (f"; {len(leaks)} CROSS THE SPLIT (a copy in another part inflates the test accuracy)"
                 if leaks else "")]
    lines += [f"  {row.path_a} ({row.part_a})  ~  {row.path_b} ({row.part_b})  pixels {row.pixel_match:.3f}"
              for row in issues.near_duplicates[:shown]]
    lines += ["", f"outliers: {len(issues.outliers)}"]
    lines += [f"  {row.path}  unlike the other {_short(issues, row.given)} ({row.score:.1f} MAD)"
              for row in issues.outliers[:shown]]
    if warning := issues.balance_warning():
        lines += ["", warning]
    for path, reason in issues.skipped[:10]:
        lines.append(f"  skipped {path}: {reason}")
    return "\n".join(lines)
