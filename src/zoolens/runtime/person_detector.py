"""A person's body in a crop: MediaPipe's BlazePose and BlazeFace, three of the models that ship inside the `mediapipe`
0.10.14 wheel (newer wheels ship none), run as MediaPipe's solutions run them, with LiteRT (`ai-edge-litert`, Google's
runtime of these very .tflite files: nothing converted, nothing to check, and its dependencies are ones zoolens
already has).

1. the person detector (224 x 224, pixels in [-1, 1]) on the crop: its best anchor's score, the face box it
   decodes to, and two body keypoints (the middle of the hips, and a point on the circle around the whole body);
2. the landmark model (256 x 256, pixels in [0, 1]) on the square those keypoints give (centred on the hips, 2.5 x the
   body's radius, turned upright, as MediaPipe's pose_detection_to_roi does): its pose presence, and how visible it
   finds the hips, knees and ankles (the mean of their six visibilities);
3. the full-range face detector (192 x 192, pixels in [-1, 1]) on the square of FACE_SCALE x the face box the person
   detector found: its best score (BlazePose's detector finds a body by its head, and takes an elephant's or a dog's
   for one; BlazeFace is a second, human-only opinion of that head).

A crop's score is the least of the four: a person is found by the detector, the landmark model agrees there is a
pose and sees legs (a face alone gives no legs), and the head is a human face. Measured in inference/frame_judge.py.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np
from PIL import Image

from zoolens.errors import ZoolensError
from zoolens.models import mediapipe_models
from zoolens.models.mediapipe_models import INSTALL, anchor_centres, interpreter
DETECTOR_IN_MEDIAPIPE = "mediapipe/modules/pose_detection/pose_detection.tflite"
LANDMARKS_IN_MEDIAPIPE = "mediapipe/modules/pose_landmark/pose_landmark_full.tflite"
FACES_IN_MEDIAPIPE = "mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite"
MODELS_IN_MEDIAPIPE = (DETECTOR_IN_MEDIAPIPE, LANDMARKS_IN_MEDIAPIPE, FACES_IN_MEDIAPIPE)
DETECTOR_SIZE = 224
LANDMARKS_SIZE = 256
FACES_SIZE = 192
FACE_SCALE = 1.5  # the face box's square, enlarged so (human.jpg's head: 0.80; at 2.5 x dogs' heads reached 0.61)
# The detector's anchors (MediaPipe's pose_detection_cpu SsdAnchorsCalculator): per stride, anchors per cell.
ANCHOR_LAYERS = ((8, 2), (16, 2), (32, 6))
ROI_SCALE = 1.25  # MediaPipe's enlargement of the body's square
LEG_LANDMARKS = slice(23, 29)  # left/right hip, knee, ankle in BlazePose's 33 landmarks
LANDMARK_VALUES = 5  # x, y, z, visibility, presence


@dataclass(frozen=True)
class PersonScore:
    detection: float  # the person detector's best score
    presence: float  # the landmark model's pose presence on the body's square
    legs: float  # the mean visibility of the hips, knees and ankles
    face: float  # the face detector's best score on the head the person detector found

    @property
    def score(self) -> float:
        return min(self.detection, self.presence, self.legs, self.face)


def missing_packages() -> list[str]:
    return mediapipe_models.missing_packages(MODELS_IN_MEDIAPIPE)


def unavailable_message(missing: list[str]) -> str:
    return f"the camera-trap person detector needs {', '.join(missing)}: {INSTALL}"


def available() -> bool:
    return not missing_packages()


def sigmoid(values: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(np.asarray(values, np.float64), -50, 50)))


def body_square(pixels: np.ndarray, hips: np.ndarray, body: np.ndarray) -> np.ndarray:
    """The LANDMARKS_SIZE square of the crop around the body, upright: centred on the hips, ROI_SCALE x the diameter
    of the circle through `body` (both as fractions of the crop), turned so that hips -> body points up."""
    import cv2

    height, width = pixels.shape[:2]
    centre = hips * (width, height)
    offset = (body - hips) * (width, height)
    side = max(1.0, 2 * math.hypot(*offset) * ROI_SCALE)
    angle = math.pi / 2 - math.atan2(-offset[1], offset[0])
    scale, cos, sin = side / LANDMARKS_SIZE, math.cos(angle), math.sin(angle)
    half = LANDMARKS_SIZE / 2
    # output (u, v) -> crop: centre + rotation(angle) @ ((u, v) - half) * scale
    to_crop = np.array([[scale * cos, -scale * sin, centre[0] - scale * (cos - sin) * half],
                        [scale * sin, scale * cos, centre[1] - scale * (sin + cos) * half]], np.float32)
    return cv2.warpAffine(pixels, to_crop, (LANDMARKS_SIZE, LANDMARKS_SIZE),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT)


def face_square(pixels: np.ndarray, centre: np.ndarray, size: float) -> np.ndarray:
    """The FACES_SIZE square of the crop around a face box (centre and longer side as fractions of the crop),
    FACE_SCALE x its side, black beyond the crop's edges."""
    import cv2

    height, width = pixels.shape[:2]
    side = max(1.0, size * max(width, height) * FACE_SCALE)
    scale = side / FACES_SIZE
    left, top = centre[0] * width - side / 2, centre[1] * height - side / 2
    to_crop = np.array([[scale, 0, left], [0, scale, top]], np.float32)
    return cv2.warpAffine(pixels, to_crop, (FACES_SIZE, FACES_SIZE), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT)


class PersonDetector:
    """`score(crop)`: how sure BlazePose is that the crop (an animal detector's box, square, with room around it) holds
    a person's body. Loads the three models once; one crop at a time (a lock: LiteRT's interpreters are not shared)."""

    def __init__(self):
        missing = missing_packages()
        if missing:
            raise ZoolensError(unavailable_message(missing))
        self.interpreters = [interpreter(mediapipe_models.model_file(name)) for name in MODELS_IN_MEDIAPIPE]
        self.lock = threading.Lock()

    def run(self, which: int, pixels: np.ndarray) -> list[np.ndarray]:
        interpreter = self.interpreters[which]
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], pixels[None].astype(np.float32))
        interpreter.invoke()
        return [interpreter.get_tensor(output["index"])[0] for output in interpreter.get_output_details()]

    def score(self, crop: Image.Image) -> PersonScore:
        import cv2

        pixels = np.asarray(crop if crop.mode == "RGB" else crop.convert("RGB"))
        small = cv2.resize(pixels, (DETECTOR_SIZE, DETECTOR_SIZE), interpolation=cv2.INTER_AREA)
        with self.lock:
            boxes, scores = self.run(0, small.astype(np.float32) / 127.5 - 1.0)
            best = int(np.argmax(scores[:, 0]))
            anchor = anchor_centres(DETECTOR_SIZE, ANCHOR_LAYERS)[best]
            keypoints = boxes[best, 4:12].reshape(4, 2) / DETECTOR_SIZE + anchor
            square = body_square(pixels, keypoints[0], keypoints[1])
            outputs = self.run(1, square.astype(np.float32) / 255.0)
            # the face box: its centre's offset from the anchor and its size, in input pixels (anchors of size 1)
            head = face_square(pixels, boxes[best, :2] / DETECTOR_SIZE + anchor, float(boxes[best, 2:4].max()) /
                               DETECTOR_SIZE)
            _, face_scores = self.run(2, head.astype(np.float32) / 127.5 - 1.0)
        landmarks = outputs[0].reshape(-1, LANDMARK_VALUES)
        return PersonScore(detection=float(sigmoid(scores[best, 0])), presence=float(outputs[1].ravel()[0]),
                           legs=float(sigmoid(landmarks[LEG_LANDMARKS, 3]).mean()),
                           face=float(sigmoid(face_scores[:, 0].max())))
