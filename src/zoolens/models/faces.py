"""Human faces by OpenCV's Haar cascades: seed 004's face detector, and "is this a person" for open-set answers.

"Is this a person" (`has_person`) is asked of every photo turned away without an animal, so it must cost what the
network costs (issue 31). The Haar cascades over a whole photo cost 0.1-0.3 s (frontal, then profile both ways round:
32 + 2 x 114 ms on a 224 px crop, more on a whole photo scaled to 1024 px), 10-30x MobileNetV2's features. So the photo
is first screened by MediaPipe's BlazeFace (short range, 128 x 128, the .tflite file inside the mediapipe 0.10.14 wheel
that `make setup` installs, run with LiteRT: 3-4 ms), which proposes where faces may be, and the same cascades then
confirm a face only in the square around each proposal (CONFIRM_SIDE px: 1-5 ms). BlazeFace alone is no person check:
at its own threshold it fires on half of animals3's cats, dogs and pandas; the cascades reject those.

Measured (one process, one thread; before -> after; LFW 300 faces, animals3 300 photos, skimage astronaut/camera),
on the network's 224 px centre crop (the batch job's until 2026-12-08) | on the whole photo (the CLI, the apps,
the batch job, Ray):
faces found on LFW 244 -> 263 | 270 -> 271; astronaut and camera man both, before and after; false persons on
animals3 7 -> 6 | 11 -> 2; on 170 blank frames, objects and vehicles 8 -> 1 | 8 -> 2; CPU per photo without a face
177 -> 5 ms | 280 -> 7 ms. The margin and side were chosen among 2-3x and 80-160 px on these counts.
Without mediapipe or LiteRT the whole photo goes through the cascades as before (slower, said once in the log).
"""

from __future__ import annotations

import logging
import threading
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from zoolens.errors import ZoolensError
from zoolens.models import mediapipe_models

log = logging.getLogger(__name__)

FACE_CASCADE_FILE = "haarcascade_frontalface_alt.xml"
PROFILE_CASCADE_FILE = "haarcascade_profileface.xml"
FACE_SCALE_FACTOR = 1.35  # seed 004's tuned values (OpenCV defaults: 1.1 and 3)
FACE_MIN_NEIGHBORS = 4
FACE_MAX_SIDE = 1024  # larger photos are scaled down before the cascade runs: same faces, a fraction of the time
FACE_PAD = 0.15  # grey border around the photo, as a share of its longer side (see find_faces)


def _cascade(name: str):
    import cv2

    cascade = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / name))
    if cascade.empty():
        raise ZoolensError(f"OpenCV could not load {name} from {cv2.data.haarcascades}")
    return cascade


def _clip_box(box, size) -> tuple[int, int, int, int]:
    x, y, w, h = box
    left, top = max(0.0, x), max(0.0, y)
    right, bottom = min(float(size[0]), x + w), min(float(size[1]), y + h)
    return round(left), round(top), round(right - left), round(bottom - top)


def padded_grey(image: Image.Image) -> tuple[np.ndarray, float, int]:
    """The photo in grey, scaled to at most FACE_MAX_SIDE, with a grey border: (pixels, scale, border).
    A face that fills the whole photo (a tight portrait crop) leaves a cascade no margin around it; the
    border gives it one (LFW crops: 78 % -> 93 % found, no more hits on animals)."""
    scale = min(1.0, FACE_MAX_SIDE / max(image.size))
    grey = image.convert("L")
    if scale < 1.0:
        grey = grey.resize((round(image.width * scale), round(image.height * scale)), Image.BILINEAR)
    pad = round(FACE_PAD * max(grey.size))
    return np.asarray(ImageOps.expand(grey, border=pad, fill=128)), scale, pad


class FaceDetector:
    """Human faces by OpenCV's frontal-face Haar cascade."""

    def __init__(self, scale_factor: float = FACE_SCALE_FACTOR, min_neighbors: int = FACE_MIN_NEIGHBORS):
        self.cascade = _cascade(FACE_CASCADE_FILE)
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors

    def find_faces(self, image: Image.Image) -> list[tuple[int, int, int, int]]:
        """Face boxes (x, y, width, height) in the image's own pixels, largest first."""
        pixels, scale, pad = padded_grey(image)
        boxes = self.cascade.detectMultiScale(pixels, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors)
        faces = [_clip_box(((x - pad) / scale, (y - pad) / scale, w / scale, h / scale), image.size)
                 for x, y, w, h in boxes]
        return sorted(faces, key=lambda box: -box[2] * box[3])

    def has_face(self, image: Image.Image) -> bool:
        return bool(self.find_faces(image))


# The screen: BlazeFace short range, as MediaPipe's face_detection_short_range graph runs it.
SCREEN_MODEL = "mediapipe/modules/face_detection/face_detection_short_range.tflite"
SCREEN_SIZE = 128
SCREEN_ANCHORS = ((8, 2), (16, 6))  # per stride, anchors per cell (MediaPipe's SsdAnchorsCalculator options)
SCREEN_PAD = 0.15  # black border around the photo, as a share of its longer side (as FACE_PAD, for tight portraits)
SCREEN_THRESHOLD = 0.5  # BlazeFace's score from which a place is confirmed by the cascades (MediaPipe's own: 0.5)
SCREEN_CANDIDATES = 3  # places confirmed at most, best first
CONFIRM_MARGIN = 2.5  # the square the cascades look at: this many times the proposed face's side, around its centre
CONFIRM_SIDE = 144  # px: a larger square is scaled down to this before the cascades run (a face of ~58 px)


class PersonDetector:
    """A face seen from the front (seed 004's cascade) or in profile, either way round. Asked only about photos
    already found to hold no animal, to tell "a person" from "no animal" (skimage's camera man is in profile).
    With `screen` (BlazeFace, `face_screen()`), the cascades look only where it proposes a face."""

    def __init__(self, screen: FaceScreen | None = None):
        self.front = FaceDetector()
        self.profile = _cascade(PROFILE_CASCADE_FILE)
        self.screen = screen

    def has_person(self, image: Image.Image) -> bool:
        if self.screen is None:
            return self.front.has_face(image) or self.in_profile(padded_grey(image)[0])
        return any(self.face_in(np.asarray(region)) for region in self.screen.regions(image))

    def face_in(self, pixels: np.ndarray) -> bool:
        """Whether either cascade finds a face in grey pixels (no border added: a proposal's square has room)."""
        return bool(len(self.front.cascade.detectMultiScale(pixels, scaleFactor=self.front.scale_factor,
                                                            minNeighbors=self.front.min_neighbors))
                    ) or self.in_profile(pixels)

    def in_profile(self, pixels: np.ndarray) -> bool:
        return any(len(self.profile.detectMultiScale(np.ascontiguousarray(view), scaleFactor=1.1, minNeighbors=4))
                   for view in (pixels, pixels[:, ::-1]))


class FaceScreen:
    """Where faces may be in a photo: BlazeFace (short range) through LiteRT. One photo at a time (a lock: a LiteRT
    interpreter is not shared between threads)."""

    def __init__(self, model: Path):
        self.interpreter = mediapipe_models.interpreter(model)
        self.input = self.interpreter.get_input_details()[0]["index"]
        outputs = self.interpreter.get_output_details()
        self.boxes, self.scores = (next(o["index"] for o in outputs if (o["shape"][-1] == 1) == want)
                                   for want in (False, True))
        self.anchors = mediapipe_models.anchor_centres(SCREEN_SIZE, SCREEN_ANCHORS)
        self.lock = threading.Lock()

    def proposals(self, image: Image.Image) -> list[tuple[float, float, float]]:
        """(centre x, centre y, side) of each place BlazeFace scores SCREEN_THRESHOLD or more, in the photo's pixels,
        best first, at most SCREEN_CANDIDATES, none inside a better one."""
        side = max(image.size) * (1 + 2 * SCREEN_PAD)
        scale = SCREEN_SIZE / side
        small = image.convert("RGB").resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                                            Image.BILINEAR, reducing_gap=2.0)
        canvas = np.zeros((SCREEN_SIZE, SCREEN_SIZE, 3), np.float32) - 1.0
        left, top = (SCREEN_SIZE - small.width) // 2, (SCREEN_SIZE - small.height) // 2
        canvas[top : top + small.height, left : left + small.width] = np.asarray(small, np.float32) / 127.5 - 1.0
        with self.lock:
            self.interpreter.set_tensor(self.input, canvas[None])
            self.interpreter.invoke()
            boxes = self.interpreter.get_tensor(self.boxes)[0]
            logits = self.interpreter.get_tensor(self.scores)[0][:, 0]
        found: list[tuple[float, float, float]] = []
        for best in np.argsort(-logits):
            if logits[best] < SCREEN_LOGIT or len(found) == SCREEN_CANDIDATES:
                break
            x, y = (boxes[best, :2] + self.anchors[best] * SCREEN_SIZE - (left, top)) / scale
            size = float(max(boxes[best, 2:4])) / scale
            if any(abs(x - fx) < fs / 2 and abs(y - fy) < fs / 2 for fx, fy, fs in found):
                continue
            found.append((float(x), float(y), size))
        return found

    def regions(self, image: Image.Image):
        """The grey square around each proposal (grey beyond the photo's edges), at most CONFIRM_SIDE px."""
        for x, y, size in self.proposals(image):
            half = max(1.0, size * CONFIRM_MARGIN / 2)
            box = (round(x - half), round(y - half), round(x + half), round(y + half))
            inside = (max(0, box[0]), max(0, box[1]), min(image.width, box[2]), min(image.height, box[3]))
            if inside[2] <= inside[0] or inside[3] <= inside[1]:
                continue
            square = Image.new("L", (box[2] - box[0], box[3] - box[1]), 128)
            square.paste(image.crop(inside).convert("L"), (inside[0] - box[0], inside[1] - box[1]))
            if square.width > CONFIRM_SIDE:
                square = square.resize((CONFIRM_SIDE, CONFIRM_SIDE), Image.BILINEAR, reducing_gap=2.0)
            yield square


SCREEN_LOGIT = float(np.log(SCREEN_THRESHOLD / (1 - SCREEN_THRESHOLD)))  # compared before the sigmoid
# The side a photo opened only for this check needs (open_input(path, min_side=PERSON_MIN_SIDE)): a JPEG decodes at
# a fraction of its size (Pillow's draft), and a face a seventh of the photo still fills CONFIRM_SIDE.
PERSON_MIN_SIDE = 512


def screen_model() -> Path | None:
    """BlazeFace's file inside the installed mediapipe wheel (found without importing mediapipe), or None when
    mediapipe or LiteRT is not installed."""
    return None if mediapipe_models.missing_packages((SCREEN_MODEL,)) else mediapipe_models.model_file(SCREEN_MODEL)


def face_screen() -> FaceScreen | None:
    model = screen_model()
    if model is None:
        log.info("the person check runs OpenCV's cascades over whole photos (0.1-0.3 s a photo turned away): "
                 "%s to screen them first", mediapipe_models.INSTALL)
        return None
    return FaceScreen(model)


@cache
def _person_detector() -> PersonDetector:
    return PersonDetector(face_screen())


def has_person(image: Image.Image) -> bool:
    """Whether a face is in the photo; the detectors load once per process, on the first question."""
    return _person_detector().has_person(image)
