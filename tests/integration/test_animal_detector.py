"""The camera-trap animal detector (zamba's MegadetectorLite YOLOX-tiny as an ONNX engine) on the real frames: what it
finds, that it agrees with zamba's own PyTorch pipeline, that its export is made once and checked, and that without
its wheels it says so in one line. Figures from benchmarks/camera_trap_detector.py (threshold 0.1): ENA24 21/21,
speciesnet's species frames 8/8, the heron burst 1/10, the three empty frames 0/3."""

import importlib.metadata
import importlib.util
import logging
import os
import shutil

import numpy as np
import pytest
from helpers import run_without_torch

from zoolens.errors import ZoolensError
from zoolens.runtime import animal_detector, features
from zoolens.runtime.animal_detector import DEFAULT_THRESHOLD, AnimalDetector, available

if not available() and os.environ.get("CI") != "true":  # CI installs them (make setup): there the tests must run
    pytest.skip("zamba and yolox-datamint are not installed (make setup installs them)", allow_module_level=True)


@pytest.fixture(scope="module")
def camera_traps():
    from zoolens.data.shared import ensure_shared_dataset

    return ensure_shared_dataset("camera-traps")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A cache holding the detector's export, made here (the count of exports it took is returned with it)."""
    cache = tmp_path_factory.mktemp("detector-cache")
    exports = []
    real_export = features.export_checked
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ZOOLENS_CACHE", str(cache))
        patch.setattr(features, "_ENGINES", {})
        patch.setattr(features, "export_checked", lambda *a: exports.append(a) or real_export(*a))
        AnimalDetector()
    return cache, len(exports)


@pytest.fixture
def detector(exported, monkeypatch):
    monkeypatch.setenv("ZOOLENS_CACHE", str(exported[0]))
    monkeypatch.setattr(features, "_ENGINES", {})
    return AnimalDetector()


def images(paths):
    from zoolens.data.images import open_image

    return [open_image(path) for path in paths]


def frames_with_an_animal(detector, paths) -> int:
    return sum(bool(found) for found in detector.detect(images(paths)))


def test_animals_are_found_in_ena24_and_the_species_frames(detector, camera_traps):
    ena24 = sorted((camera_traps / "ena24").glob("*.jpg"))
    species = [camera_traps / "speciesnet-test" / f"{name}.jpg" for name in
               ("african_elephants", "african_elephants_bw", "african_elephants_cmyk", "american_black_bear",
                "african_elephants_with_exif_orientation", "domestic_cattle", "domestic_dog", "ocelot")]
    assert len(ena24) == 21
    assert frames_with_an_animal(detector, ena24) >= 20  # 21 measured; the weakest (596.jpg, a squirrel) at 0.17
    assert frames_with_an_animal(detector, species) == 8


def test_the_heron_burst_is_mostly_missed_at_640_px(detector, camera_traps):
    """Measured, not wished: the night heron of the Camtrap DP example scores 0.12 at best (frame 1), nothing in the
    others. A judge must not rely on this detector alone for its "animal" (the burst and the classifier too)."""
    burst = sorted((camera_traps / "camtrap-dp-example" / "media").glob("*.JPG"))
    found = frames_with_an_animal(detector, burst)
    assert len(burst) == 10 and 1 <= found <= 3


def test_no_box_on_the_empty_frames(detector, camera_traps):
    blanks = [camera_traps / "speciesnet-test" / f"{name}.jpg" for name in ("blank", "blank2", "blank3")]
    assert detector.detect(images(blanks), threshold=DEFAULT_THRESHOLD / 2) == [[], [], []]  # none above 0.05


def reference_detections(frame):
    """zamba's pipeline (MegadetectorLiteYoloX.detect_image) in PyTorch: yolox's own model from its experiment,
    yolox's postprocess (torchvision's NMS), boxes scaled back as zamba does; (x1, y1, x2, y2) fractions, scores."""
    import torch
    from PIL import Image, ImageOps
    from yolox.exp import Exp
    from yolox.utils.boxes import postprocess

    experiment = Exp()
    experiment.depth, experiment.width, experiment.num_classes = 0.33, 0.375, 1
    model = experiment.get_model()
    model.load_state_dict(torch.load(animal_detector.weights_file(), weights_only=True, map_location="cpu")["model"])
    padded = ImageOps.pad(frame, (640, 640), method=Image.BICUBIC, color=None, centering=(0, 0))
    pixels = np.moveaxis(np.asarray(padded, dtype=np.float32), 2, 0)[None].copy()
    with torch.no_grad():
        output = postprocess(model.eval()(torch.from_numpy(pixels)), 1, DEFAULT_THRESHOLD, 0.45)[0]
    if output is None:
        return np.zeros((0, 4)), np.zeros(0)
    output = output.numpy()
    ratio = min(640 / frame.width, 640 / frame.height)
    boxes = output[:, :4] / ratio / np.array([frame.width, frame.height] * 2)
    return boxes, output[:, 4] * output[:, 5]


def test_boxes_and_confidences_are_zambas(detector, camera_traps):
    """md_annotations.json's ENA24 boxes are placeholders (centred 0.3 x 0.3 squares on no animal; our best box
    overlaps them at IoU 0 in 13 of 21 frames, at most 0.29), so the reference here is zamba's own pipeline."""
    paths = [camera_traps / "ena24" / name for name in ("2480.jpg", "2595.jpg", "2968.jpg", "9455.jpg")]
    paths.append(camera_traps / "speciesnet-test" / "african_elephants.jpg")
    frames = images(paths)
    for frame, ours in zip(frames, detector.detect(frames)):
        boxes, scores = reference_detections(frame)
        assert len(ours) == len(boxes) > 0
        order = np.argsort(-scores, kind="stable")
        for mine, box, score in zip(ours, boxes[order], scores[order]):
            assert abs(mine.conf - score) < 1e-3
            mine_corners = np.array([mine.x, mine.y, mine.x + mine.w, mine.y + mine.h])
            assert np.abs(mine_corners - np.clip(box, 0, 1)).max() < 2e-3


def test_the_export_is_made_once_and_then_reused(exported, monkeypatch, camera_traps):
    cache, exports = exported
    assert exports == 1
    (onnx_file,) = (cache / "onnx").iterdir()
    stamp = onnx_file.stat().st_mtime_ns
    monkeypatch.setenv("ZOOLENS_CACHE", str(cache))
    monkeypatch.setattr(features, "_ENGINES", {})  # a new process, as far as the engines know
    monkeypatch.setattr(features, "export_checked", lambda *a: pytest.fail("exported again"))
    found = AnimalDetector().detect(images([camera_traps / "ena24" / "2480.jpg"]))
    assert len(found[0]) == 1 and found[0][0].conf > 0.8
    assert onnx_file.stat().st_mtime_ns == stamp


def test_a_poisoned_export_is_named_and_exported_again(exported, tmp_path, monkeypatch, caplog, camera_traps):
    cache = tmp_path / "cache"
    shutil.copytree(exported[0], cache)
    (onnx_file,) = (cache / "onnx").iterdir()
    onnx_file.write_bytes(onnx_file.read_bytes()[: onnx_file.stat().st_size // 2])  # a torn copy
    monkeypatch.setenv("ZOOLENS_CACHE", str(cache))
    monkeypatch.setattr(features, "_ENGINES", {})
    with caplog.at_level(logging.WARNING, logger="zoolens.runtime.features"):
        found = AnimalDetector().detect(images([camera_traps / "ena24" / "2480.jpg"]))
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 1 and str(onnx_file) in warned[0] and "exported again" in warned[0]
    assert len(found[0]) == 1 and found[0][0].conf > 0.8


def test_detecting_needs_no_torch_once_exported(exported, camera_traps, detector):
    frame = camera_traps / "ena24" / "2480.jpg"
    code = ("from zoolens.runtime.animal_detector import AnimalDetector\nfrom zoolens.data.images import open_image\n"
            "print([round(d.conf, 4) for d in AnimalDetector().detect([open_image(sys.argv[1])])[0]])")
    done = run_without_torch(code, frame, env={"ZOOLENS_CACHE": str(exported[0])})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == str([round(d.conf, 4) for d in detector.detect(images([frame]))[0]])


def test_without_its_wheels_the_detector_says_what_to_install_in_one_line(monkeypatch, tmp_path):
    real_distribution, real_find_spec = importlib.metadata.distribution, importlib.util.find_spec

    def distribution(name):
        if name == "zamba":
            raise importlib.metadata.PackageNotFoundError(name)
        return real_distribution(name)

    monkeypatch.setattr(importlib.metadata, "distribution", distribution)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "yolox" else
                        real_find_spec(name, *a))
    monkeypatch.setenv("ZOOLENS_CACHE", str(tmp_path))
    assert not available()
    with pytest.raises(ZoolensError) as error:
        AnimalDetector()
    message = str(error.value)
    assert "\n" not in message
    assert "zamba==2.7.2" in message and "yolox-datamint==0.3.1" in message and "pip install --no-deps" in message
