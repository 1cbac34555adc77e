"""The camera-trap frame judge, version 1: what is in a frame (blank, animal, person, vehicle) whatever the model's
classes, and the answer people read made to follow it.

It combines four things: zamba's YOLOX-tiny camera-trap animal detector (runtime.animal_detector, on the whole frame,
letterboxed to 640 px), the backbone's own ImageNet head (the model's `open_set.imagenet`, on the crop of a box or on
the frame), MediaPipe's BlazePose person detector and pose landmarks (runtime.person_detector, on a box's crop) and
the model's own answer (its person check). The rules, in order:

1. a frame that cannot be read has no kind (None: its answer is an error);
2. the detector's boxes are those of confidence >= BOX_THRESHOLD, except boxes wholly inside the top or bottom
   STRIP share of the frame (cameras print their logo, date and temperature there);
3. if the model's answer is "none of these: a person" (its clothes share or a face: models/open_set.py, models/faces.py)
   the frame is a person; kind_confidence is the frame's ImageNet share of the things people wear (what the model's
   person rule tests against PERSON_SHARE) when that rule found the person, FACE_CONFIDENCE when a face did (the Haar
   check says yes or no, with no probability of its own); and the frame is a person when one of the PERSON_BOXES best
   counted boxes has a crop (square, CROP_MARGIN around it) with under ANIMAL_SHARE of its ImageNet probability on
   animals (imagenet_groups) and a person score of PERSON_SCORE or more (BlazePose finds a person, its landmark model a
   pose, legs, and BlazeFace a human face: runtime.person_detector); kind_confidence is that score. A model without
   an ImageNet head skips the body check (the person detector alone comes within 0.01 of calling a dog a person,
   below);
3b. a model with a blank class (a class folder named BLANK_CLASS_NAMES: blank, empty, ..., the usual way camera-trap
   classifiers are trained) is asked first: its blank class answered and no counted box of SURE_BOX or more makes
   the frame blank (confidence: the model's); one of its other classes answered (not "not sure") with no counted box
   makes an animal (confidence: the model's: it was trained on this kind of empty frame, and a missed animal costs
   more than an empty frame looked at); its blank class answered over a box of SURE_BOX or more is an animal
   unlike any training photo;
4. else, with a box: the crop of the best box (square, CROP_MARGIN around it) through the ImageNet head; a
   VEHICLE_SHARE or more of its probability on VEHICLE_CATEGORIES makes a vehicle (confidence: that share), otherwise
   an animal (confidence: the box's). A model without an ImageNet head (fine-tuned, scratch, non-animal classes) skips
   the vehicle check: every box is an animal;
5. else (no box), the whole frame (the model's centre crop) with a VEHICLE_SHARE or more on vehicles is a vehicle;
6. else blank, confidence 1 - the best confidence of any box the detector gave (strips and boxes under the threshold
   included; 0 when none).

The answer follows the kind: a blank frame reads "none of these: no animal in the photo", a person "none of these: a
person", a vehicle "none of these: a vehicle"; an animal frame keeps the model's answer (a class, "not sure", or
"none of these: an animal unlike any training photo"; where the model said "no animal in the photo" and the detector
found one, the reason becomes "an animal unlike any training photo").

Measured on the shared camera-trap frames with MobileNetV2 features and the detector at 640 px: ENA24 21/21 animal
frames and speciesnet's 8/8 species frames have a box of at least 0.1; the empty frames blank, blank2, blank3 none
above 0.05; the heron burst (a white heron at night) 1 frame of 10 (0.118, the others 0-0.07; rolled up by event it
is still an animal event); the detector fires on human.jpg (0.51) and vehicle.jpg (0.32) and on a camera's logo strip
(2968.jpg: 0.24 on the Bushnell logo; dropping strip boxes changed none of the figures above). vehicle.jpg's box crop
has 0.92 of its ImageNet probability on vehicles, every animal crop at most 0.06; whole frames: vehicle.jpg 0.94, every
other frame at most 0.08.

The person's body (rule 3), measured on the best box's crop (whatever its confidence) of: positives speciesnet's
human.jpg (a small person walking through a garden), scikit-image's astronaut and camera (upper bodies), 40 LFW faces;
negatives every animal frame of the camera-trap set (ENA24 21, speciesnet's 8 species frames, the heron burst 10), 300
animals3 photos (100 cats, dogs, pandas), and the crops of the 2nd to 5th counted boxes of the camera-trap frames (17,
mostly elephants). ImageNet's person categories on human.jpg's crop read 0.13 (a bear's crop 0.44 "abaya"); OpenCV on
the crop upscaled to 512 px: HOG people (weight >= 0.5) misses human.jpg and fires on 33/300 pets, the Haar full-body
and upper-body cascades miss every positive and fire on 6 and 9 animal crops. runtime.person_detector (0.08 s a crop):

  person score >= 0.5          human.jpg 0.75, camera 0.52, astronaut no (0.23: its face square), LFW 0/40 (no legs);
                               camera-trap animal crops 0/56 (at most 0.35), pets 1/300: dogs_00040 (0.66), two
                               children beside a dog (the next, a dog, 0.495)
  without BlazeFace's face     camera-trap animal crops 4/56 (frontal elephants up to 0.71), pets 8/300 (the
                               children 0.66; upright dogs, cats and pandas up to 0.60)
  ImageNet animal share < 0.5  human.jpg 0.29, astronaut and camera 0.00; every pet crop scoring 0.35 or more 0.60 to
                               1.00, so with it (rule 3) 0 of the 356 animal crops is a person (the best score of an
                               animal crop under 0.5 animal share: 0.27, an elephant), human.jpg and camera are found.

Cost: the detector takes about 0.5 s a frame on a CPU, 9x MobileNetV2's features (0.05 s); the person detector 0.08 s
a crop, asked only of counted boxes whose crop does not look like an animal: the judge runs only when asked (`zoolens
predict ... --camera-traps`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from zoolens.data.images import open_image
from zoolens.data.transforms import cropped_pixels
from zoolens.errors import ImageError
from zoolens.inference.model import Model
from zoolens.inference.prediction import (
    ANIMAL,
    BLANK,
    CLASS,
    ERROR,
    NONE_OF_THESE,
    PERSON,
    VEHICLE,
    Prediction,
    with_article,
)
from zoolens.models import open_set
from zoolens.models.imagenet_groups import group_indices
from zoolens.runtime.animal_detector import INPUT_SIZE, Detection

log = logging.getLogger(__name__)

# The detector's threshold: every ENA24 and speciesnet animal (the weakest 0.17), no box on the three empty frames
# (none above 0.05); the animal detector's own default.
BOX_THRESHOLD = 0.1
# Boxes are asked for down to this confidence, only to say how sure a blank frame is (rule 6).
ANY_BOX = 0.01
# Share of the frame's height at its top and at its bottom where cameras print a logo or their data; a box wholly
# inside either is not an animal (2968.jpg: 0.24 on the Bushnell logo).
STRIP = 0.15
CROP_MARGIN = 0.15  # around the best box, on each side of the square crop (room for the animal's edges)
# Of the ImageNet probability on VEHICLE_CATEGORIES: a vehicle. vehicle.jpg's crop 0.92 and frame 0.94; every animal
# crop at most 0.06, every other frame at most 0.08.
VEHICLE_SHARE = 0.5
# Rule 3's body: a counted box (of the PERSON_BOXES best) is a person when the ImageNet head puts under ANIMAL_SHARE
# of its crop's probability on animals and the person detector's score (runtime.person_detector) is PERSON_SCORE or
# more. Measured (the module's text): human.jpg 0.29 and 0.75; every pet crop scoring 0.35 or more reads 0.60 or
# more animal; the animal crops under 0.5 animal score at most 0.27.
ANIMAL_SHARE = 0.5
PERSON_SCORE = 0.5
PERSON_BOXES = 3
# A person found by a face (the Haar check is a yes or a no, with no probability): a detection at the usual display
# thresholds of Timelapse and AddaxAI, claiming no more than a coin's certainty.
FACE_CONFIDENCE = 0.5
# What the ImageNet network sees when a vehicle is there (names checked against models.available.imagenet_categories()
# by tests/test_frame_judge.py).
VEHICLE_CATEGORIES = (
    "ambulance", "beach wagon", "cab", "convertible", "jeep", "limousine", "minivan", "Model T", "racer",
    "sports car", "police van", "pickup", "tow truck", "trailer truck", "moving van", "garbage truck", "fire engine",
    "go-kart", "golfcart", "half track", "tractor", "harvester", "forklift", "snowplow", "motor scooter", "moped",
    "mountain bike", "school bus", "trolleybus", "minibus", "recreational vehicle", "snowmobile", "tank", "thresher",
    "car wheel", "grille", "streetcar", "passenger car", "freight car", "steam locomotive", "electric locomotive",
    "mobile home",
)


# Class names (any case) a model's blank class goes by.
BLANK_CLASS_NAMES = ("blank", "blanks", "empty", "empty frame", "empty frames", "nothing", "no animal", "none")
# A box the detector is this sure of outweighs a model's blank class: the detector's usual "confident" level, that of
# the event roll-up (camera_trap_formats.ANIMAL_THRESHOLD).
SURE_BOX = 0.5


@dataclass(frozen=True)
class Judgement:
    kind: str
    confidence: float
    looks_like: str | None = None  # the ImageNet category a vehicle looks like


def in_strip(box: Detection, strip: float = STRIP) -> bool:
    """Whether a box lies wholly inside the top or the bottom `strip` of the frame."""
    return box.y + box.h <= strip or box.y >= 1.0 - strip


def counted_boxes(boxes: list[Detection], threshold: float = BOX_THRESHOLD) -> list[Detection]:
    """Rule 2: the boxes that count, best first."""
    return [box for box in boxes if box.conf >= threshold and not in_strip(box)]


def square_crop(image: Image.Image, box: Detection, margin: float = CROP_MARGIN) -> Image.Image:
    """The square around a box with `margin` of its longer side on each side, moved inside the frame where it can be
    (clipped where the frame is smaller)."""
    width, height = image.size
    side = max(box.w * width, box.h * height) * (1 + 2 * margin)
    side = max(1.0, min(side, width, height))
    centre_x, centre_y = (box.x + box.w / 2) * width, (box.y + box.h / 2) * height
    left = min(max(centre_x - side / 2, 0.0), width - side)
    top = min(max(centre_y - side / 2, 0.0), height - side)
    return image.crop((round(left), round(top), round(left + side), round(top + side)))


class FrameJudge:
    """`judge(paths, predictions)`: each frame's kind and kind_confidence, and its answer made to follow the kind.

    `detector`: anything with `detect(images, threshold)` -> per image a list of Detection, best first (default: the
    camera-trap AnimalDetector, which raises a one-line ZoolensError naming what to install when it cannot run).
    `person_detector`: anything with `score(crop)` -> a PersonScore (default: runtime.person_detector's BlazePose,
    with the same kind of one-line ZoolensError)."""

    def __init__(self, model: Model, detector=None, person_detector=None):
        if detector is None:
            from zoolens.runtime.animal_detector import AnimalDetector

            detector = AnimalDetector()
        self.model = model
        self.detector = detector
        self.blank_classes = {name for name in model.classes if name.strip().lower() in BLANK_CLASS_NAMES}
        check = model.open_set
        self.imagenet = check.imagenet if check is not None else None
        self.person_detector = None
        if self.imagenet is not None:
            categories = self.imagenet.categories
            self.vehicles = [i for i, name in enumerate(categories) if name in set(VEHICLE_CATEGORIES)]
            self.person = self.imagenet.person_indices()
            self.animals = sorted({i for indices in group_indices().values() for i in indices})
            if person_detector is None:
                from zoolens.runtime.person_detector import PersonDetector

                person_detector = PersonDetector()
            self.person_detector = person_detector
        else:
            log.warning("%s has no ImageNet head (trained with the animal check off, from scratch, or on classes "
                        "that are not animals): its frames are judged blank or animal only, a person only by its "
                        "face check; retrain it with zoolens train (frozen) to have vehicles and people's bodies found",
                        getattr(model, "path", None) or "this model")

    def judge(self, paths: list[Path | str], predictions: list[Prediction]) -> list[Prediction]:
        """The predictions of these frames (in the same order), judged; a frame that cannot be opened again keeps
        its answer with no kind."""
        judged = list(predictions)
        images: dict[int, Image.Image] = {}
        for i, (path, prediction) in enumerate(zip(paths, predictions)):
            if prediction.verdict == ERROR:
                continue  # rule 1
            try:
                images[i] = open_image(Path(path), min_side=INPUT_SIZE)
            except ImageError as error:
                log.warning("%s: not judged (%s)", path, error.reason)
        if not images:
            return judged
        order = list(images)
        found = self.detector.detect([images[i] for i in order], ANY_BOX)
        for i, boxes in zip(order, found):
            judgement = self.judgement(images[i], predictions[i], boxes)
            judged[i] = answer_for(predictions[i], judgement, self.blank_classes)
        return judged

    def judgement(self, image: Image.Image, prediction: Prediction, boxes: list[Detection]) -> Judgement:
        counted = counted_boxes(boxes)
        if prediction.verdict == NONE_OF_THESE and prediction.reason == open_set.PERSON:  # rule 3
            return Judgement(PERSON, self.person_confidence(image))
        crops = [square_crop(image, box) for box in counted[:PERSON_BOXES]]
        probabilities = [self.imagenet_probabilities(crop) for crop in crops]
        body = self.body_score(crops, probabilities)
        if body is not None:  # rule 3, a person's body
            return Judgement(PERSON, body)
        blank_model = self.blank_class_judgement(prediction, counted)  # rule 3b
        if blank_model is not None:
            return blank_model
        if counted:  # rule 4
            share, looks_like = self.vehicle_share(probabilities[0])
            if share >= VEHICLE_SHARE:
                return Judgement(VEHICLE, share, looks_like)
            return Judgement(ANIMAL, counted[0].conf)
        share, looks_like = self.vehicle_share(self.imagenet_probabilities(image))  # rule 5
        if share >= VEHICLE_SHARE:
            return Judgement(VEHICLE, share, looks_like)
        return Judgement(BLANK, 1.0 - max((box.conf for box in boxes), default=0.0))  # rule 6

    def blank_class_judgement(self, prediction: Prediction, counted: list[Detection]) -> Judgement | None:
        """Rule 3b: what a model with a blank class says, where it decides (None: the other rules decide)."""
        if not self.blank_classes or prediction.verdict != CLASS:
            return None
        sure_box = any(box.conf >= SURE_BOX for box in counted)
        if prediction.label in self.blank_classes and not sure_box:
            return Judgement(BLANK, prediction.confidence)
        if prediction.label not in self.blank_classes and not counted:
            return Judgement(ANIMAL, prediction.confidence)
        return None

    def imagenet_probabilities(self, image: Image.Image) -> np.ndarray | None:
        if self.imagenet is None:
            return None
        # Pixels straight from the image open_image gave (features_of_images would open it again: its EXIF, garbage in
        # some camera frames, read a second time).
        features = self.model.features_of_pixels(cropped_pixels(image, self.model.preprocessing)[None])
        # The open-set check's features are the last ones of a model's (its own backbone's, or the pretrained one
        # beside a fine-tuned backbone): as wide as the ImageNet head's input.
        return self.imagenet.probabilities(features[:, -self.imagenet.weight.shape[1]:])[0]

    def body_score(self, crops: list[Image.Image], probabilities: list[np.ndarray | None]) -> float | None:
        """Rule 3's body: the person detector's score of the first box crop that holds a person (under ANIMAL_SHARE of
        its ImageNet probabilities on animals, a score of PERSON_SCORE or more); None when none does, or without an
        ImageNet head."""
        if self.person_detector is None:
            return None
        for crop, crop_probabilities in zip(crops, probabilities):
            if float(crop_probabilities[self.animals].sum()) >= ANIMAL_SHARE:
                continue  # the person detector is never asked about a crop that looks like an animal
            score = self.person_detector.score(crop).score
            if score >= PERSON_SCORE:
                return score
        return None

    def vehicle_share(self, probabilities: np.ndarray | None) -> tuple[float, str | None]:
        """The share of these ImageNet probabilities on vehicles, and the vehicle they most look like; (0, None)
        without an ImageNet head (None)."""
        if probabilities is None:
            return 0.0, None
        best = self.vehicles[int(np.argmax(probabilities[self.vehicles]))]
        return float(probabilities[self.vehicles].sum()), self.imagenet.categories[best]

    def person_confidence(self, image: Image.Image) -> float:
        probabilities = self.imagenet_probabilities(image)
        share = float(probabilities[self.person].sum()) if probabilities is not None else 0.0
        return share if share >= open_set.PERSON_SHARE else FACE_CONFIDENCE


def answer_for(prediction: Prediction, judgement: Judgement, blank_classes: set[str] = frozenset()) -> Prediction:
    """The frame's answer made to follow its kind (see the module's text); `blank_classes`: the model's classes that
    mean an empty frame."""
    confidence = float(min(1.0, max(0.0, judgement.confidence)))
    if judgement.kind == ANIMAL:
        if prediction.verdict == CLASS and prediction.label in blank_classes:
            return replace(prediction, label=None, verdict=NONE_OF_THESE, reason=open_set.UNLIKE_TRAINING,
                           nearest=prediction.label, kind=ANIMAL, kind_confidence=confidence)
        if prediction.verdict == NONE_OF_THESE and prediction.reason == open_set.NO_ANIMAL:
            return replace(prediction, reason=open_set.UNLIKE_TRAINING, kind=ANIMAL, kind_confidence=confidence)
        return replace(prediction, kind=ANIMAL, kind_confidence=confidence)
    reason = {BLANK: open_set.NO_ANIMAL, PERSON: open_set.PERSON, VEHICLE: open_set.VEHICLE}[judgement.kind]
    turned_away = prediction.verdict == NONE_OF_THESE
    detail = (f"it looks like {with_article(judgement.looks_like)}" if judgement.looks_like
              else prediction.detail if turned_away else None)
    return replace(prediction, label=None, verdict=NONE_OF_THESE, reason=reason,
                   nearest=prediction.nearest if prediction.nearest is not None else prediction.label,
                   detail=detail, kind=judgement.kind, kind_confidence=confidence)
