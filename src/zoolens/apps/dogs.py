"""The dog-breed app of seed 004: a human face detector, a dog detector and a breed classifier together.

- A dog gets its breed; a human gets the breed they resemble; a photo with both gets both; neither gets
  a clear message (with the animal group ImageNet sees, when there is one).
- Face detector: OpenCV's Haar cascade `haarcascade_frontalface_alt.xml` on greyscale, with the seed's
  tuned scaleFactor=1.35, minNeighbors=4.
- Dog detector: the pretrained ImageNet network's argmax falls in the dog classes 151-268.
- Breed classifier: a zoolens model trained on Imagewoof's 10 breeds
  (`zoolens train <imagewoof> --out runs/dog-breeds`). Its answer for a dog is its `Prediction`: a breed,
  "not sure" or "none of these" (a dog of a breed it was not trained on).
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from zoolens.choices import DEFAULT_BACKBONE, DEFAULT_MIN_CONFIDENCE, DEFAULT_OPEN_SET, TOP_K
from zoolens.data.images import is_image_name, open_image
from zoolens.errors import ImageError, ZoolensError, setting
from zoolens.inference.prediction import (
    CLASS,
    ERROR,
    NONE_OF_THESE,
    Prediction,
    as_photo,
    failed,
    input_list,
    source_name,
    with_article,
)
from zoolens.models.faces import FACE_CASCADE_FILE, FACE_MIN_NEIGHBORS, FACE_SCALE_FACTOR, FaceDetector
from zoolens.models.imagenet_groups import NOT_AN_ANIMAL, rank_groups
from zoolens.models.open_set import PERSON

DEFAULT_BREEDS_MODEL = Path("runs") / "dog-breeds"
TRAIN_BREEDS_COMMAND = "zoolens train <imagewoof folder> --out runs/dog-breeds"

NO_DOG = "no dog in the photo"  # a `Prediction.reason`: neither a dog nor a human face
FACE_CROP_MARGIN = 0.3  # each side of a face box, as a share of its size, when a human's face is classified

# Seed 004's measured rates on 100 photos each (human faces / dog photos).
SEED_FACE_RATES = {"faces": 1.00, "imagewoof": 0.11}
SEED_DOG_RATES = {"faces": 0.00, "imagewoof": 1.00}


# ---- detectors ------------------------------------------------------------------------------------
class DogDetector:
    """A dog when the pretrained ImageNet network's most likely class is one of its dog breeds."""

    def __init__(self, backbone: str = DEFAULT_BACKBONE, classifier=None):
        from zoolens.inference.imagenet import DOG_CLASSES, ImageNetClassifier

        self.classifier = classifier or ImageNetClassifier(backbone)
        self.dog_classes = DOG_CLASSES

    def probabilities(self, photos: list) -> np.ndarray:
        """ImageNet's probabilities for photos (paths, bytes or PIL images), each decoded as every surface decodes it
        (`transforms.network_pixels`, through the classifier). Raises ImageError."""
        rows = []
        for start in range(0, len(photos), 32):
            rows.append(self.classifier.probabilities(photos[start : start + 32]))
        return np.concatenate(rows) if rows else np.zeros((0, 1000), dtype=np.float32)

    def is_dog(self, probabilities: np.ndarray) -> bool:
        return int(np.argmax(probabilities)) in self.dog_classes

    def dog_probability(self, probabilities: np.ndarray) -> float:
        return float(probabilities[self.dog_classes.start : self.dog_classes.stop].sum())


# ---- the pipeline ---------------------------------------------------------------------------------
@dataclass
class DogReport:
    source: str
    message: str
    dog: bool = False
    faces: int = 0
    breed_prediction: Prediction | None = None  # the breeds model's answer for the dog, when a dog was found
    resemblance: Prediction | None = None  # its scores for the largest face: the breed a human resembles
    imagenet_group: tuple[str, float] | None = None
    error: str | None = None

    @property
    def breed(self) -> str | None:
        """The dog's breed, when the breeds model names one (not "not sure", not "none of these")."""
        return self.breed_prediction.name(self.breed_prediction.label) if self.breed_prediction is not None else None

    @property
    def breed_top(self) -> list[tuple[str, float]]:
        return self.breed_prediction.named_top if self.breed_prediction is not None else []

    @property
    def resembles(self) -> str | None:
        return self.resemblance.named_top[0][0] if self.resemblance is not None else None

    @property
    def resembles_top(self) -> list[tuple[str, float]]:
        return self.resemblance.named_top if self.resemblance is not None else []

    @property
    def kind(self) -> str:
        if self.error:
            return "error"
        return {(True, True): "dog and human", (True, False): "dog", (False, True): "human"}.get(
            (self.dog, self.faces > 0), "neither"
        )


def face_image(photo) -> Image.Image:
    """The photo the face detector looks at: decoded whole (it scales a large one down itself: faces.padded_grey).
    Raises ImageError."""
    return open_image(photo)


def crop_face(image: Image.Image, box: tuple[int, int, int, int], margin: float = FACE_CROP_MARGIN) -> Image.Image:
    x, y, w, h = box
    dx, dy = int(w * margin), int(h * margin)
    return image.crop((max(0, x - dx), max(0, y - dy), min(image.width, x + w + dx), min(image.height, y + h + dy)))


class DogBreedApp:
    """Seed 004's algorithm on the zoolens API; `identify` answers for photo paths, PIL images or bytes with a
    `DogReport` each, `predict` (the app as a `zoolens.Predictor`) with a `Prediction` each."""

    def __init__(self, breeds_model=None, backbone: str = DEFAULT_BACKBONE,
                 min_confidence: float = DEFAULT_MIN_CONFIDENCE, imagenet=None, open_set: str = DEFAULT_OPEN_SET):
        from zoolens.inference.model import Model

        if breeds_model is None:
            breeds_model = find_breeds_model(None)
        self.breeds = breeds_model if isinstance(breeds_model, Model) else Model.load(breeds_model)
        self.faces = FaceDetector()
        self.dogs = DogDetector(backbone, classifier=imagenet)
        self.min_confidence = min_confidence
        self.open_set = open_set

    @property
    def classes(self) -> list[str]:
        """The breeds its model knows."""
        return self.breeds.classes

    def __repr__(self) -> str:
        where = f" from {self.breeds.path}" if getattr(self.breeds, "path", None) else ""
        detector = getattr(self.dogs.classifier, "backbone", type(self.dogs.classifier).__name__)
        return (f"DogBreedApp({len(self.classes)} breeds{where}, dog detector: ImageNet {detector}, "
                f"min_confidence={self.min_confidence}, open_set={str(self.open_set)!r})")

    def _breed_of(self, photo, min_confidence: float, open_set: str, top_k: int = TOP_K) -> Prediction:
        answer = self.breeds.predict(photo, top_k=top_k, min_confidence=min_confidence, open_set=open_set)[0]
        if answer.error is not None:
            raise ImageError(answer.source, answer.error)
        return answer

    def _resemblance_of(self, face: Image.Image, top_k: int = TOP_K) -> Prediction:
        # A face is never one of the breeds: its nearest breed is the answer, so no threshold and no open set.
        return self._breed_of(face, 0.0, "off", top_k)

    def predict(self, inputs, top_k: int = TOP_K, min_confidence: float | None = None) -> list[Prediction]:
        """The app as a `zoolens.Predictor`: each photo's dog breed (the breeds model's answer for the dog), else
        "none of these": a person (the breed they resemble as nearest), or no dog (what ImageNet sees there), with
        the breeds' scores as top-k; an unreadable photo is an error. `min_confidence`: None keeps the app's own."""
        answers = []
        for position, item in enumerate(input_list(inputs)):
            source, photo = source_name(item, position), as_photo(item)
            try:
                report = self.report_of(source, photo, min_confidence, top_k=top_k)
            except ImageError as error:
                answers.append(failed(source, error.reason))
                continue
            answers.append(self.as_prediction(report, photo, top_k))
        return answers

    def as_prediction(self, report: DogReport, photo, top_k: int = TOP_K) -> Prediction:
        """A photo's report as one `Prediction`: the dog's breed first, then whom a person resembles, then no dog."""
        if report.breed_prediction is not None:
            return dataclasses.replace(report.breed_prediction, source=report.source)
        if report.resemblance is not None:
            looks = report.resemblance
            return Prediction(report.source, None, looks.confidence, looks.top, verdict=NONE_OF_THESE, reason=PERSON,
                              detail=f"they look like {with_article(report.resembles)}", names=looks.names)
        # The breeds' scores on the whole photo: its nearest breed, never the answer.
        scores = self._breed_of(photo, 0.0, "off", top_k)
        group = report.imagenet_group[0] if report.imagenet_group else NOT_AN_ANIMAL
        seen = f"it looks like {with_article(group)}" if group != NOT_AN_ANIMAL else None
        return Prediction(report.source, None, scores.confidence, scores.top, verdict=NONE_OF_THESE, reason=NO_DOG,
                          detail=seen, names=scores.names)

    def identify(self, inputs) -> list[DogReport]:
        inputs = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        return [self.identify_one(item, n) for n, item in enumerate(inputs)]

    def identify_one(self, item, position: int = 0, min_confidence: float | None = None,
                     open_set: str | None = None) -> DogReport:
        """The report for one photo; `min_confidence` and `open_set` override the app's for naming a breed."""
        source = source_name(item, position)
        try:
            return self.report_of(source, as_photo(item), min_confidence, open_set)
        except ImageError as error:
            return DogReport(source, f"cannot read this photo: {error.reason}", error=error.reason)

    def report_of(self, source: str, photo, min_confidence: float | None = None,
                  open_set: str | None = None, top_k: int = TOP_K) -> DogReport:
        """The report for one photo (a path, bytes or a PIL image, as `as_photo` makes an input): the dog detector and
        the breeds model see the pixels every surface makes of it (`transforms.network_pixels`), so a dog's breed here
        is `zoolens predict`'s answer for the file; the face detector looks at the whole photo. Raises ImageError."""
        threshold = self.min_confidence if min_confidence is None else min_confidence
        open_set = self.open_set if open_set is None else open_set
        image = face_image(photo)
        probabilities = self.dogs.probabilities([photo])[0]
        report = DogReport(source, "", dog=self.dogs.is_dog(probabilities))
        boxes = self.faces.find_faces(image)
        report.faces = len(boxes)
        if report.dog:
            report.breed_prediction = self._breed_of(photo, threshold, open_set, top_k)
        if boxes:
            # The largest face alone, so a dog beside the person does not decide whom they resemble.
            report.resemblance = self._resemblance_of(crop_face(image, boxes[0]), top_k)
        if not report.dog and not boxes:
            report.imagenet_group = rank_groups(probabilities, top_k=1)[0]
        report.message = compose_message(report, len(self.breeds.classes))
        return report


def compose_message(report: DogReport, known_breeds: int) -> str:
    parts = []
    if report.dog:
        parts.append(dog_sentence(report.breed_prediction, known_breeds))
    if report.faces:
        people = "Human detected" if report.faces == 1 else f"{report.faces} human faces detected (the largest used)"
        parts.append(f"{people}: you look like {with_article(report.resembles)}!")
    if not parts:
        group, probability = report.imagenet_group or (NOT_AN_ANIMAL, 0.0)
        seen = (f" It looks like {with_article(group)} ({probability:.0%}) to ImageNet." if group != NOT_AN_ANIMAL
                else "")
        parts.append(f"Neither a dog nor a human face found in this photo.{seen} "
                     "Try a clearer photo of a dog or a face.")
    return " ".join(parts)


def dog_sentence(breed: Prediction, known_breeds: int) -> str:
    """What the breeds model said about a dog: its breed, or that the dog is not (clearly) one it knows."""
    if breed.verdict == ERROR:
        return f"Dog detected, but the breed model could not read the photo: {breed.error}."
    if breed.verdict == CLASS:
        return f"Dog detected: it looks like {with_article(breed.name(breed.label))} ({breed.confidence:.0%})."
    # "Not sure" still thinks it is one of the breeds; "none of these" says it is none of them.
    which = "not one" if breed.verdict == NONE_OF_THESE else "not clearly one"
    return (f"Dog detected, but {which} of the {known_breeds} breeds this model knows "
            f"(closest: {breed.name(breed.nearest)}, {breed.confidence:.0%}).")


def find_breeds_model(path: str | Path | None) -> Path:
    from zoolens.inference.bundle import META_FILE

    path = Path(path) if path else DEFAULT_BREEDS_MODEL
    if not (path / META_FILE).is_file():
        raise ZoolensError(f"no dog-breed model at {path}: train one with `{TRAIN_BREEDS_COMMAND}` "
                           f"(Imagewoof: `python -m zoolens.data.shared imagewoof`) or pass {setting('breeds')} MODEL")
    return path


REPORT_COLUMNS = ["path", "kind", "message", "breed", "breed_confidence", "resembles", "resembles_confidence",
                  "faces", "error"]


def reports_csv(reports: list[DogReport]) -> str:
    """The dog page's answers as CSV (the web app's download): one row per photo."""
    import csv
    import io

    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=REPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for report in reports:
        breed = report.breed_top[0] if report.breed and report.breed_top else (None, None)
        resembles = report.resembles_top[0] if report.resembles_top else (None, None)
        writer.writerow({"path": report.source, "kind": report.kind, "message": report.message,
                         "breed": report.breed or "", "breed_confidence": _number(breed[1] if report.breed else None),
                         "resembles": resembles[0] or "", "resembles_confidence": _number(resembles[1]),
                         "faces": report.faces, "error": report.error or ""})
    return text.getvalue()


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.6f}"


def format_reports(reports: list[DogReport]) -> str:
    width = min(60, max(len(r.source) for r in reports))
    return "\n".join(f"{r.source:<{width}}  {r.kind:<13}  {r.message}" for r in reports)


# ---- seed 004's detector audit --------------------------------------------------------------------
@dataclass
class AuditRow:
    name: str  # e.g. "imagewoof (dogs)"
    key: str  # key into the seed's numbers
    photos: int
    face_rate: float
    dog_rate: float


def _sample(paths: list[Path], n: int, seed: int) -> list[Path]:
    paths = sorted(paths)
    return random.Random(seed).sample(paths, min(n, len(paths)))


def audit_photo_sets(n: int = 100, seed: int = 0) -> list[tuple[str, str, list[Path]]]:
    """(name, key, photos): n random photos each of the shared sets faces, imagewoof and animals3's classes."""
    from zoolens.data.shared import ensure_shared_dataset

    def images_below(folder: Path) -> list[Path]:
        return [p for p in folder.rglob("*") if p.is_file() and is_image_name(p)]

    faces = ensure_shared_dataset("faces")
    woof = ensure_shared_dataset("imagewoof")
    animals = ensure_shared_dataset("animals3")
    sets = [("faces (humans)", "faces", images_below(faces)), ("imagewoof (dogs)", "imagewoof", images_below(woof))]
    sets += [(f"animals3 {name}", name, images_below(animals / name)) for name in ("dogs", "cats", "panda")]
    return [(name, key, _sample(paths, n, seed)) for name, key, paths in sets]


def audit_detectors(n: int = 100, seed: int = 0, backbone: str = DEFAULT_BACKBONE, imagenet=None) -> list[AuditRow]:
    """Seed 004's table: how often each detector fires on photos of humans, of dogs and of other animals."""
    faces, dogs = FaceDetector(), DogDetector(backbone, classifier=imagenet)
    rows = []
    for name, key, paths in audit_photo_sets(n, seed):
        face_hits = sum(faces.has_face(face_image(path)) for path in paths)
        dog_hits = sum(dogs.is_dog(row) for row in dogs.probabilities(paths))
        rows.append(AuditRow(name, key, len(paths), face_hits / len(paths), dog_hits / len(paths)))
    return rows


def format_audit(rows: list[AuditRow], backbone: str = DEFAULT_BACKBONE) -> str:
    def seed(rates: dict, key: str) -> str:
        return f"{rates[key]:.0%}" if key in rates else "-"

    header = (f"{'photos':<18} {'n':>4}   {'face detector':>13} {'seed 004':>8}   {'dog detector':>12} {'seed 004':>8}")
    lines = [
        f"Share of photos on which each detector fires (face: OpenCV Haar {FACE_CASCADE_FILE}, scaleFactor "
        f"{FACE_SCALE_FACTOR}, minNeighbors {FACE_MIN_NEIGHBORS}; dog: ImageNet {backbone} argmax in classes 151-268).",
        "Seed 004 used 100 LFW faces and 100 dog photos, and ResNet-50 for the dog detector.",
        "",
        header,
        "-" * len(header),
    ]
    for r in rows:
        lines.append(f"{r.name:<18} {r.photos:>4}   {r.face_rate:>13.0%} {seed(SEED_FACE_RATES, r.key):>8}   "
                     f"{r.dog_rate:>12.0%} {seed(SEED_DOG_RATES, r.key):>8}")
    lines += ["",
              "Imagewoof's dingo is ImageNet class 273 (with the wolves and wild dogs), outside 151-268: the seed's",
              "dog detector cannot call a dingo a dog, which is most of what it misses on imagewoof."]
    return "\n".join(lines)
