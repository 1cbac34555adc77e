""""None of these": what tells a photo of a known kind from a person, an object, an empty frame or another species.

Two checks on the pooled features a model already computes, both fitted on its own validation photos:

- feature distance: cosine distance to the k-th nearest training photo (Sun et al., ICML 2022, "Out-of-
  distribution detection with deep nearest neighbors"); a bank of training features rides in the bundle;
- animal check: the pretrained backbone's own ImageNet classifier on the same frozen features (one matrix
  product) says whether any animal is in the photo (ImageNet classes 0-397 are animals), and whether it is
  more likely a person (the clothes and things people wear). It switches itself off when the model's own
  classes are not animals, and for fine-tuned or scratch models, whose features no longer feed that classifier;
- known kinds: the same ImageNet probabilities summed over the categories the training photos are seen as
  (each the top-1 of at least two of them); a cat shown to a dog-breed model puts its mass on "tabby", which
  no training photo was.

Measured on frozen MobileNetV2 features (`python benchmarks/open_set.py`): a max-probability threshold keeping
98 % of an animals3 model's validation photos still accepts 15 % of LFW faces, 14 % of CIFAR-10 vehicles and
27 % of CIFAR-10 deer/frog/horse (an Imagewoof model: 59 %, 70 %, 79 %); the checks together accept none of
the faces and vehicles and 1.5 % of those animals (Imagewoof: 3.8 % of animals3 cats and pandas). NumPy only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zoolens.choices import DEFAULT_OPEN_SET_SHARE, OpenSetMode
from zoolens.errors import ZoolensError
from zoolens.models.probabilities import softmax

OPEN_SET_FILE = "open_set.safetensors"
DEFAULT_SHARE = DEFAULT_OPEN_SET_SHARE  # of the model's own validation photos turned away, "not sure" included
STRICT_SHARE = 0.05
FITTED_MODES = {OpenSetMode.ON.value, OpenSetMode.STRICT.value}  # the modes with thresholds ("off" has none)
NOT_SURE_BELOW = 0.5  # calibrated probability under which the best guess is more likely wrong than right
NEIGHBOURS = 10  # measured: k=10 beat 1 and 5 on animals3 and Imagewoof (benchmarks/open_set.py)
# An ensemble's features (`--backbone a+b`) need more: its 10th-neighbour threshold, set by the few farthest
# validation photos, let in 24 % of CIFAR deer/frogs/horses on animals3, 4 % at k=20 and 0 % at k=50, own test photos
# kept alike (98-99 %), Imagewoof's unknowns unchanged (2.5 / 0 % at 10, 3 / 0 % at 50); docs/measurements.md.
ENSEMBLE_NEIGHBOURS = 50
BANK_PER_CLASS = 1000  # training photos kept per class (float16): 2.5 MB per 1000 photos at 1280 dims
MAX_FILE_BYTES = 1 << 30  # a tampered bundle's open-set file is refused before it is read
MIN_CALIBRATION_PHOTOS = 100  # below this many validation photos, training photos (leave-one-out) join them
# Thresholds stand this far (relative) beyond the calibration score they are taken at. A photo's scores computed in
# another batch differ in the last bits (BLAS blocks a product by its number of rows: 6.2169097e-06 alone,
# 6.2169033e-06 among 27, measured), so a photo sitting exactly on a threshold was turned away or not by chance.
ROUNDING_MARGIN = 1e-4

IMAGENET_ANIMALS = range(398)
# ImageNet has no "person" class; these are what the pretrained network sees when there is one (measured
# on LFW faces: academic gown, neck brace, pickelhaube, Windsor tie, bow tie... make up 85 % of top-1s).
PERSON_CATEGORIES = (
    "academic gown", "neck brace", "pickelhaube", "Windsor tie", "bow tie", "Band Aid", "sunglass", "sunglasses",
    "mortarboard", "abaya", "suit", "lab coat", "military uniform", "sweatshirt", "jersey", "cardigan", "wig",
    "lipstick", "mask", "ski mask", "oxygen mask", "sombrero", "cowboy hat", "bonnet", "crash helmet",
    "football helmet", "vestment", "kimono", "bikini", "miniskirt", "swimming trunks", "maillot", "stole",
    "fur coat", "trench coat", "poncho", "groom", "scuba diver", "ballplayer", "bulletproof vest", "hair spray",
    "face powder", "bathing cap", "shower cap", "hoopskirt", "overskirt", "sarong", "brassiere", "pajama",
    "apron", "jean", "cloak", "chain mail",
)
PERSON_SHARE = 0.25  # of the photo's ImageNet probability on those categories: "a person"

# What a person reads when the answer is "none of these".
NO_ANIMAL = "no animal in the photo"
PERSON = "a person"
VEHICLE = "a vehicle"  # only camera-trap frames judged so (zoolens.inference.frame_judge: predict --camera-traps)
UNLIKE_TRAINING = "an animal unlike any training photo"
UNLIKE_TRAINING_ANY = "unlike any training photo"  # when the animal check is off


@dataclass
class Thresholds:
    distance: float  # above: none of these
    animal: float | None  # below: none of these (None: the animal check is off)
    confidence: float  # below: not sure
    known: float | None = None  # below: none of these (probability on the ImageNet categories training photos are)


@dataclass
class OpenSetScores:
    distance: np.ndarray  # (N,) cosine distance to the k-th nearest training photo
    animal: np.ndarray | None  # (N,) ImageNet probability of any animal
    person: np.ndarray | None  # (N,) ImageNet probability of the things people wear
    imagenet_top: np.ndarray | None  # (N,) index of the most likely ImageNet category
    known: np.ndarray | None = None  # (N,) ImageNet probability on the categories the training photos are


@dataclass
class ImageNetHead:
    """The backbone's own ImageNet classifier (the last Linear layer) and its category names."""

    weight: np.ndarray  # (1000, D)
    bias: np.ndarray  # (1000,)
    categories: list[str]

    def __post_init__(self):
        # Laid out once for the product (transposing and converting per call cost 4 ms a photo, measured).
        self._weight = np.ascontiguousarray(self.weight, np.float32)
        self._weight_t = np.ascontiguousarray(self._weight.T)
        self._bias = np.asarray(self.bias, np.float32)
        wanted = set(PERSON_CATEGORIES)
        self._person = [i for i, name in enumerate(self.categories) if name in wanted]

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        return softmax(rows_times(np.asarray(features, np.float32), self._weight, self._weight_t) + self._bias)

    def person_indices(self) -> list[int]:
        return self._person


@dataclass
class OpenSetCheck:
    bank: np.ndarray  # (N, D) L2-normalised training features
    bank_labels: np.ndarray  # (N,) their class indices
    neighbours: int
    thresholds: dict[str, Thresholds]  # OpenSetMode.ON and .STRICT (plain words when loaded)
    imagenet: ImageNetHead | None = None  # None: the animal check is off
    summary: dict = field(default_factory=dict)  # what zoolens.json records
    known_categories: np.ndarray | None = None  # ImageNet categories that are the top-1 of training photos

    def __post_init__(self):
        self._bank_t = np.ascontiguousarray(self.bank.T)  # (D, N), laid out once for the product

    @property
    def animal_check(self) -> bool:
        return self.imagenet is not None

    # ---- scores ----------------------------------------------------------------------------------
    def scores(self, features: np.ndarray) -> OpenSetScores:
        features = np.asarray(features, np.float32)
        distance = kth_neighbour_distance(features, self.bank, self.neighbours, bank_t=self._bank_t)
        if self.imagenet is None:
            return OpenSetScores(distance, None, None, None)
        probabilities = self.imagenet.probabilities(features)
        known = probabilities[:, self.known_categories].sum(axis=1) if self.known_categories is not None else None
        return OpenSetScores(distance, probabilities[:, IMAGENET_ANIMALS].sum(axis=1),
                             probabilities[:, self.imagenet.person_indices()].sum(axis=1), probabilities.argmax(axis=1),
                             known)

    def reasons(self, scores: OpenSetScores, mode: str = OpenSetMode.ON) -> list[str | None]:
        """For each photo, why it is none of these (NO_ANIMAL, PERSON, UNLIKE_TRAINING...), or None."""
        if mode == OpenSetMode.OFF:
            return [None] * len(scores.distance)
        limits = self.thresholds[mode]
        found: list[str | None] = []
        for i, distance in enumerate(scores.distance):
            if limits.animal is not None and scores.animal is not None and scores.animal[i] < limits.animal:
                found.append(PERSON if scores.person[i] >= PERSON_SHARE else NO_ANIMAL)
            elif distance > limits.distance or (limits.known is not None and scores.known is not None
                                                and scores.known[i] < limits.known):
                found.append(UNLIKE_TRAINING if self.animal_check else UNLIKE_TRAINING_ANY)
            else:
                found.append(None)
        return found

    def looks_like(self, scores: OpenSetScores, i: int) -> str | None:
        """The ImageNet category the photo most resembles ("espresso"), where the animal check is on."""
        if self.imagenet is None or scores.imagenet_top is None:
            return None
        return self.imagenet.categories[int(scores.imagenet_top[i])]

    # ---- persistence -----------------------------------------------------------------------------
    def save(self, path: Path) -> Path:
        from safetensors.numpy import save_file

        tensors = {"bank": self.bank.astype(np.float16), "bank_labels": self.bank_labels.astype(np.int32)}
        metadata = {"neighbours": str(self.neighbours),
                    "thresholds": json.dumps({str(mode): vars(t) for mode, t in self.thresholds.items()})}
        if self.imagenet is not None:
            tensors["imagenet_weight"] = self.imagenet.weight.astype(np.float16)
            tensors["imagenet_bias"] = self.imagenet.bias.astype(np.float32)
        if self.known_categories is not None:
            tensors["known_categories"] = self.known_categories.astype(np.int32)
            metadata["imagenet_categories"] = json.dumps(self.imagenet.categories)
        save_file(tensors, str(path), metadata=metadata)
        return path

    @classmethod
    def load(cls, path: Path, summary: dict | None = None) -> OpenSetCheck:
        from safetensors import SafetensorError, safe_open

        try:
            if path.is_file() and path.stat().st_size > MAX_FILE_BYTES:
                raise ValueError(f"larger than {MAX_FILE_BYTES // 2**20} MB")
            if path.exists() and not path.is_file():
                raise ValueError("not a regular file")
            with safe_open(str(path), framework="numpy") as handle:
                metadata = handle.metadata() or {}
                tensors = {key: handle.get_tensor(key) for key in handle.keys()}
            thresholds = {mode: Thresholds(**values) for mode, values in json.loads(metadata["thresholds"]).items()}
            if not all(_finite_or_none(vars(t).values()) for t in thresholds.values()):
                raise ValueError("thresholds must be finite numbers")
            imagenet = None
            if "imagenet_weight" in tensors:
                categories = json.loads(metadata["imagenet_categories"])
                imagenet = ImageNetHead(tensors["imagenet_weight"].astype(np.float32), tensors["imagenet_bias"],
                                        [str(c) for c in categories])
                if imagenet.weight.shape[0] != len(categories) or imagenet.bias.shape != (len(categories),):
                    raise ValueError("ImageNet classifier and category names disagree")
            known = tensors["known_categories"].astype(np.int64) if "known_categories" in tensors else None
            check = cls(normalised_rows(tensors["bank"].astype(np.float32)), tensors["bank_labels"].astype(np.int64),
                        int(metadata["neighbours"]), thresholds, imagenet, summary or {}, known)
            if known is not None and (imagenet is None or known.min(initial=0) < 0
                                      or known.max(initial=0) >= len(imagenet.categories)):
                raise ValueError("known ImageNet categories out of range")
            if not 1 <= check.neighbours <= 1000:
                raise ValueError(f"neighbours {check.neighbours} out of range")
            if set(thresholds) != FITTED_MODES or check.bank.ndim != 2 or len(check.bank) != len(check.bank_labels):
                raise ValueError("unexpected contents")
            if imagenet is not None and imagenet.weight.shape[1] != check.bank.shape[1]:
                raise ValueError("ImageNet classifier does not fit the features")
            return check
        except FileNotFoundError:
            raise ZoolensError(f"{path}: missing") from None
        except (SafetensorError, OSError, ValueError, KeyError, TypeError) as error:
            raise ZoolensError(f"{path}: damaged open-set data ({str(error).splitlines()[0][:120]})") from None


def _finite_or_none(values) -> bool:
    return all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v))
               for v in values)


def as_saved(x: np.ndarray) -> np.ndarray:
    """`x` as float32 holding the float16 values the model file keeps of it."""
    return np.asarray(x, np.float32).astype(np.float16).astype(np.float32)


def normalised_rows(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


FEW_ROWS = 4


def rows_times(rows: np.ndarray, matrix: np.ndarray, matrix_t: np.ndarray) -> np.ndarray:
    """rows @ matrix.T. A few rows go one at a time as matrix-vector products: one photo's check took 0.25 ms as
    a (1, D) x (D, N) product and 0.07 ms as (N, D) x (D,), and is what a single prediction waits for."""
    if len(rows) <= FEW_ROWS:
        return np.stack([matrix @ row for row in rows]) if len(rows) else np.zeros((0, len(matrix)), np.float32)
    return rows @ matrix_t


def kth_neighbour_distance(features: np.ndarray, bank: np.ndarray, k: int, skip_self: bool = False,
                           bank_t: np.ndarray | None = None) -> np.ndarray:
    """1 - cosine similarity to the k-th most similar bank row, for each feature row (in blocks of 512)."""
    k = max(1, min(k, len(bank) - (1 if skip_self else 0)))
    bank_t = np.ascontiguousarray(bank.T) if bank_t is None else bank_t
    out = np.empty(len(features), np.float32)
    queries = normalised_rows(np.asarray(features, np.float32))
    for start in range(0, len(queries), 512):
        similarities = rows_times(queries[start : start + 512], bank, bank_t)
        nth = k if skip_self else k - 1  # a training photo's nearest row is itself
        out[start : start + 512] = 1.0 - np.partition(-similarities, nth, axis=1)[:, nth] * -1.0
    return out


# ---- fitting at training time --------------------------------------------------------------------
@dataclass
class CalibrationScores:
    distance: np.ndarray
    animal: np.ndarray | None
    confidence: np.ndarray
    known: np.ndarray | None = None


def _thresholds_for(scores: CalibrationScores, share: float) -> tuple[Thresholds, dict]:
    """Thresholds that together turn away at most `share` of the calibration photos: "not sure" and the animal
    check an eighth of it each, then one common quantile for the feature distance and the known-kinds check,
    the two that catch other species, as large as the share allows."""
    confidence = scores.confidence
    validation = len(confidence)  # validation photos come first; training photos (if any) after them
    share = conformal_share(share, len(scores.distance))
    animal = float(np.quantile(scores.animal, share / 8)) if scores.animal is not None else None
    base = np.zeros(len(scores.distance), bool)
    if animal is not None:
        base |= scores.animal < animal
    not_sure_below = min(NOT_SURE_BELOW, float(np.quantile(confidence, share / 8)))
    not_sure = np.zeros(len(scores.distance), bool)
    not_sure[:validation] = confidence < not_sure_below
    distance, known = float(scores.distance.max()) + 1e-6, None
    for q in np.linspace(0.0, share, 201):
        candidate = float(np.quantile(scores.distance, 1 - q))
        rejected = base | not_sure | (scores.distance > candidate)
        known_candidate = float(np.quantile(scores.known, q)) if scores.known is not None else None
        if known_candidate is not None:
            rejected |= scores.known < known_candidate
        if rejected.mean() > share + 1e-9:
            break
        distance, known = candidate, known_candidate
    none = base | (scores.distance > distance)
    if known is not None:
        none |= scores.known < known
    figures = {"none_of_these": round(float(none.mean()), 4),
               "not_sure": round(float((not_sure & ~none)[:validation].mean()), 4)}
    return Thresholds(distance * (1 + ROUNDING_MARGIN), animal * (1 - ROUNDING_MARGIN) if animal is not None else None,
                      not_sure_below, known * (1 - ROUNDING_MARGIN) if known is not None else None), figures


def conformal_share(share: float, n: int) -> float:
    """The share to turn away of n calibration photos so that, for a new photo of the same kind, the chance of
    being turned away is at most `share` (split conformal prediction: the ceil((n+1)(1-share))-th smallest
    score). Measured on Imagewoof: 2.1 % of test photos turned away at a plain 2 % of validation, 1.x % with it."""
    return max(0.0, (share * (n + 1) - 1) / n)


def known_categories_of(top1: np.ndarray, minimum: int = 2) -> np.ndarray:
    """The ImageNet categories that are the most likely one for at least `minimum` training photos."""
    counts = np.bincount(top1, minlength=1000)
    return np.flatnonzero(counts >= minimum)


def non_animal_classes(animal: np.ndarray, labels: np.ndarray, classes: list[str]) -> list[tuple[str, float]]:
    """Classes whose training photos are mostly not animals to the ImageNet network (median below 0.5)."""
    found = []
    for index, name in enumerate(classes):
        mine = animal[labels == index]
        if len(mine) and float(np.median(mine)) < 0.5:
            found.append((name, float((mine < 0.5).mean())))
    return found


def fit_open_set(train_features: np.ndarray, train_labels: np.ndarray, val_features: np.ndarray,
                 val_confidence: np.ndarray, classes: list[str], imagenet: ImageNetHead | None,
                 imagenet_off_reason: str | None = None, share: float = DEFAULT_SHARE, seed: int = 0,
                 neighbours: int = NEIGHBOURS) -> OpenSetCheck:
    """Fit the checks on a model's own photos: a bank of training features and thresholds on its validation
    photos (`val_confidence`: calibrated max probabilities), so that `share` of them is turned away; the distance is
    to the `neighbours`-th nearest training photo (at most the smallest class's count in the bank)."""
    rng = np.random.default_rng(seed)
    if imagenet is not None:  # scores as the saved model will compute them: its ImageNet weights are kept in float16
        imagenet = ImageNetHead(as_saved(imagenet.weight), imagenet.bias, imagenet.categories)
    keep = np.concatenate([rng.permutation(np.flatnonzero(train_labels == c))[:BANK_PER_CLASS]
                           for c in range(len(classes))]).astype(np.int64)
    keep.sort()
    bank = normalised_rows(as_saved(train_features[keep]))
    bank_labels = np.asarray(train_labels)[keep]
    neighbours = min(neighbours, max(NEIGHBOURS, int(np.bincount(bank_labels).min())))
    notes = []
    known = None
    if imagenet is not None:
        train_imagenet = imagenet.probabilities(train_features)
        not_animals = non_animal_classes(train_imagenet[:, IMAGENET_ANIMALS].sum(axis=1), np.asarray(train_labels),
                                         classes)
        if not_animals:
            names = ", ".join(f"{name!r} ({share_:.0%} of its photos)" for name, share_ in not_animals[:4])
            imagenet_off_reason = f"the training photos of {names} show no animal to the ImageNet network"
            imagenet = None
        else:
            known = known_categories_of(train_imagenet.argmax(axis=1))
    val_imagenet = imagenet.probabilities(val_features) if imagenet is not None else None
    calibration = CalibrationScores(kth_neighbour_distance(val_features, bank, neighbours),
                                    val_imagenet[:, IMAGENET_ANIMALS].sum(axis=1) if imagenet is not None else None,
                                    np.asarray(val_confidence, np.float32),
                                    val_imagenet[:, known].sum(axis=1) if imagenet is not None else None)
    described = f"{len(val_features)} validation photos"
    if len(val_features) < MIN_CALIBRATION_PHOTOS:
        calibration = _with_training_photos(calibration, train_features[keep], bank, imagenet, known, neighbours)
        described += f" and {len(bank)} training photos (leave-one-out), as validation has fewer than " \
                     f"{MIN_CALIBRATION_PHOTOS}"
        notes.append("few validation photos: thresholds are rough")
    thresholds, figures = {}, {}
    for mode, mode_share in ((OpenSetMode.ON.value, share), (OpenSetMode.STRICT.value, max(share, STRICT_SHARE))):
        thresholds[mode], figures[mode] = _thresholds_for(calibration, mode_share)
    summary = {
        "method": f"{neighbours}th-nearest-neighbour cosine distance to training features"
                  + (" + ImageNet animal check + known ImageNet kinds" if imagenet is not None else "")
                  + " + calibrated max probability",
        "share": share,
        "strict_share": max(share, STRICT_SHARE),
        "fitted_on": described,
        "bank": f"{len(bank)} training photos",
        "neighbours": neighbours,
        "animal_check": "on" if imagenet is not None else f"off: {imagenet_off_reason or 'no ImageNet classifier'}",
        "known_imagenet_categories": [imagenet.categories[i] for i in known] if known is not None else [],
        "thresholds": {mode: {k: (round(v, 5) if v is not None else None) for k, v in vars(t).items()}
                       for mode, t in thresholds.items()},
        "turned_away_on_calibration": figures,
        "notes": notes,
    }
    return OpenSetCheck(bank, bank_labels, neighbours, thresholds, imagenet, summary, known)


def _with_training_photos(calibration: CalibrationScores, features: np.ndarray, bank: np.ndarray,
                          imagenet: ImageNetHead | None, known: np.ndarray | None,
                          neighbours: int) -> CalibrationScores:
    """Few validation photos: add the bank's own photos, each measured against the others."""
    distance = kth_neighbour_distance(features, bank, neighbours, skip_self=True)
    probabilities = imagenet.probabilities(features) if imagenet is not None else None

    def joined(mine: np.ndarray | None, theirs) -> np.ndarray | None:
        return np.concatenate([mine, theirs]) if mine is not None else None

    # Their confidences are over-confident (the head trained on them): "not sure" stays on validation alone.
    return CalibrationScores(
        np.concatenate([calibration.distance, distance]),
        joined(calibration.animal, probabilities[:, IMAGENET_ANIMALS].sum(axis=1) if probabilities is not None else 0),
        calibration.confidence,
        joined(calibration.known, probabilities[:, known].sum(axis=1) if probabilities is not None else 0),
    )
