"""Why did the network say that? Grad-CAM and saliency maps (captum), drawn over the photo it saw.

    from zoolens.evaluation.explain import explain
    for e in explain(Model.load("my-model"), ["cat.jpg"], method="both"):
        e.save_figure("cat_explained.png")

Grad-CAM needs the backbone's last spatial feature map; `gradcam_layer` picks it per architecture. A model on an
ensemble of backbones ("mobilenet_v2+efficientnet_lite2") is explained whole (its answer, its saliency), with the
Grad-CAM map of one member's feature map (the first, unless `Explainable.from_model(model, member=...)`), named in
every title.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from zoolens.choices import EXPLAIN_CHOICES, EXPLAIN_METHODS
from zoolens.data.images import source_label
from zoolens.data.transforms import Preprocessing, cropped_pixels, decode_for_network, network_transform
from zoolens.errors import ConfigError, ImageError, ZoolensError, setting
from zoolens.files import output_folder
from zoolens.inference.prediction import CLASS, Prediction, as_photo
from zoolens.models.backbones import Backbone, declared_gradcam_layer
from zoolens.models.registry import family_of_network
from zoolens.plotting import plain_text
from zoolens.progress import progress_bar

METHODS = EXPLAIN_METHODS
METHOD_TITLES = {"gradcam": "Grad-CAM", "saliency": "saliency"}


# ---- which layer Grad-CAM looks at --------------------------------------------------------------
def _unwrap(model: nn.Module) -> nn.Module:
    """The torchvision/timm network inside a zoolens Classifier or Backbone."""
    backbone = getattr(model, "backbone", None)
    if isinstance(backbone, Backbone):
        model = backbone
    return model.trunk if isinstance(model, Backbone) else model


def _family_gradcam_layer(model: nn.Module) -> nn.Module | None:
    """The last feature map of a torchvision/timm network whose family models/catalogue.py declares."""
    family = family_of_network(model)
    return family.gradcam_layer(model) if family is not None else None


def _last_spatial_module(model: nn.Module, input_size: int) -> nn.Module | None:
    """For any other network: the last module to finish that outputs an (N, C, H, W) map with H, W > 1,
    preferably with as many channels as the pooled features (a parent finishes after its children, so
    this is the whole last stage rather than its last convolution); else, for CNNs that flatten into
    dense layers, the last such map at all. None for transformers: a map followed by token sequences
    (N, L, C) is only the patch embedding, and channels-last (N, H, W, C) maps are not taken."""
    finished: list[tuple[nn.Module, tuple[int, ...]]] = []

    def record(module, _inputs, output):
        if isinstance(output, torch.Tensor):
            finished.append((module, tuple(output.shape)))

    hooks = [m.register_forward_hook(record) for m in model.modules() if m is not model and not isinstance(m, nn.Identity)]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            pooled = model(torch.zeros(1, 3, input_size, input_size))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    channels = getattr(model, "num_features", None) or (pooled.shape[1] if pooled.dim() == 2 else None)
    spatial = [i for i, (_, shape) in enumerate(finished) if len(shape) == 4 and min(shape[2:]) > 1]
    chosen = next((i for i in reversed(spatial) if finished[i][1][1] == channels), None)
    if chosen is None:
        chosen = next((i for i in reversed(spatial) if finished[i][1][3] != channels), None)
    if chosen is None or any(len(shape) == 3 for _, shape in finished[chosen + 1 :]):
        return None
    return finished[chosen][0]


def gradcam_layer(model: nn.Module, input_size: int = 224) -> nn.Module:
    """The layer whose activations Grad-CAM weighs: the backbone's last convolutional feature map.

    `model` is a zoolens Classifier or Backbone, or a torchvision/timm network (trunk or 1000-class)."""
    backbone = getattr(model, "backbone", model)
    declared = declared_gradcam_layer(backbone) if isinstance(backbone, Backbone) else None
    network = _unwrap(model)
    layer = declared or _family_gradcam_layer(network) or _last_spatial_module(network, input_size)
    if layer is None:
        raise ZoolensError(
            f"Grad-CAM needs a convolutional feature map and {type(network).__name__} has none; "
            f"use {setting('method')} saliency"
        )
    return layer


# ---- what gets explained -------------------------------------------------------------------------
@dataclass
class Explainable:
    """A network that maps normalised images to logits, with what is needed to read its answers."""

    network: nn.Module
    classes: list[str]
    preprocessing: Preprocessing
    temperature: float = 1.0
    name: str = ""
    answers: object = None  # what gives the photos' answers (a Model or an ImageNetClassifier): `.predict(images)`
    member: int | None = None  # an ensemble's: the member whose feature map Grad-CAM weighs

    @classmethod
    def from_model(cls, model, member: int | str = 0) -> Explainable:
        """A zoolens Model, or the path of a model folder. `member`: of an ensemble, the member (its position or name)
        whose last feature map Grad-CAM weighs in the whole ensemble's answer."""
        if isinstance(model, (str, Path)):
            from zoolens.inference.model import Model

            model = Model.load(model)
        name = model.path.name if getattr(model, "path", None) else model.network.backbone.info.name
        record = getattr(model, "record", None)
        members = [described.name for described in record.backbone.members] if record is not None else []
        chosen = None
        if members:
            chosen = members.index(member) if member in members else member
            if not isinstance(chosen, int) or not 0 <= chosen < len(members):
                raise ZoolensError(f"{member!r}: not a member of {'+'.join(members)}")
        return cls(model.network, model.classes, model.preprocessing, model.temperature, name, model, chosen)

    @property
    def gradcam_of(self) -> str | None:
        """The ensemble member Grad-CAM looks at, named (None for one network)."""
        if self.member is None:
            return None
        backbone = self.network.backbone
        return f"{backbone.members[self.member].info.name}, one member of {backbone.info.name}"

    def gradcam_layer(self) -> nn.Module:
        network = self.network if self.member is None else self.network.backbone.members[self.member]
        return gradcam_layer(network, self.preprocessing.input_size)

    @classmethod
    def imagenet(cls, backbone: str | None = None) -> Explainable:
        """The pretrained 1000-class ImageNet network itself (what `zoolens predict --imagenet` uses)."""
        from zoolens.choices import DEFAULT_BACKBONE
        from zoolens.inference.imagenet import ImageNetClassifier
        from zoolens.models.backbones import build_imagenet_classifier

        backbone = backbone or DEFAULT_BACKBONE
        network, preprocessing = build_imagenet_classifier(backbone)
        answers = ImageNetClassifier(backbone)
        return cls(network, answers.categories, preprocessing, 1.0, f"ImageNet {backbone}", answers)


def _as_explainable(model_or_classifier) -> Explainable:
    if isinstance(model_or_classifier, Explainable):
        return model_or_classifier
    if hasattr(model_or_classifier, "network") and hasattr(model_or_classifier, "classes"):
        return Explainable.from_model(model_or_classifier)
    if isinstance(model_or_classifier, (str, Path)):
        return Explainable.from_model(model_or_classifier)
    raise TypeError(f"cannot explain a {type(model_or_classifier).__name__}: pass a Model, a model folder or an Explainable")


@dataclass
class Explanation:
    source: str
    image: Image.Image | None  # the centre crop the network saw, at its input size
    label: str | None
    confidence: float
    class_index: int = -1
    heatmaps: dict[str, np.ndarray] = field(default_factory=dict)  # method -> (H, W) float32 in [0, 1]
    error: str | None = None
    prediction: Prediction | None = None  # the answer every other surface gives for this photo
    gradcam_of: str | None = None  # an ensemble's member whose feature map the Grad-CAM map is of

    @property
    def title(self) -> str:
        return self.answer + (f" (Grad-CAM of {self.gradcam_of})" if self.gradcam_of and "gradcam" in self.heatmaps
                              else "")

    @property
    def answer(self) -> str:
        mapped = f"{self.label} ({self.confidence:.1%})"
        if self.prediction is None:
            return mapped
        if self.prediction.verdict == CLASS and self.prediction.label == self.label:
            return self.prediction.describe()
        return f"{self.prediction.describe()}; map for {mapped}"

    def overlay(self, method: str) -> Image.Image:
        return overlay_heatmap(self.image, self.heatmaps[method], method)

    def save_figure(self, path: str | Path) -> Path:
        return save_explanation_figure(self, Path(path))


# ---- the maps ------------------------------------------------------------------------------------
def network_view(image: Image.Image, prep: Preprocessing) -> Image.Image:
    """The photo as the network sees it (shorter side resized, centre crop: `transforms.cropped_pixels`), before
    normalisation."""
    return Image.fromarray(cropped_pixels(image, prep))


def _normalise_map(heat: torch.Tensor, top_quantile: float | None = None) -> np.ndarray:
    """(H, W) non-negative map scaled to [0, 1]; a quantile as the top keeps one hot pixel from
    washing out the rest (saliency is spiky)."""
    heat = heat.detach().float().clamp(min=0)
    top = torch.quantile(heat.flatten(), top_quantile) if top_quantile else heat.max()
    if top <= 0:
        return np.zeros(tuple(heat.shape), dtype=np.float32)
    return (heat / top).clamp(max=1).numpy().astype(np.float32)


def gradcam_maps(network: nn.Module, layer: nn.Module, batch: torch.Tensor, targets: torch.Tensor) -> list[np.ndarray]:
    from captum.attr import LayerAttribution, LayerGradCam

    cam = LayerGradCam(network, layer)
    coarse = cam.attribute(batch, target=targets, relu_attributions=True)
    fine = LayerAttribution.interpolate(coarse, tuple(batch.shape[2:]), interpolate_mode="bilinear")
    return [_normalise_map(row[0]) for row in fine]


def saliency_maps(network: nn.Module, batch: torch.Tensor, targets: torch.Tensor) -> list[np.ndarray]:
    from captum.attr import Saliency

    gradients = Saliency(network).attribute(batch.clone().requires_grad_(True), target=targets, abs=True)
    return [_normalise_map(row.amax(0), top_quantile=0.99) for row in gradients]


@contextmanager
def _gradients_on(network: nn.Module):
    """Evaluation mode with autograd on, whatever the caller had; restored afterwards. Parameters keep
    their requires_grad flags: gradients flow from the input, so a frozen backbone explains too."""
    was_training = network.training
    network.eval()
    try:
        with torch.enable_grad():
            yield network
    finally:
        network.train(was_training)


def _load(item, prep: Preprocessing) -> tuple[str, Image.Image]:
    """Its name, and the photo decoded as every answer decodes it (`transforms.decode_for_network`)."""
    name = getattr(item, "filename", None) if isinstance(item, Image.Image) else None
    photo = as_photo(item)
    return name or source_label(photo), decode_for_network(photo, prep)


def _explain_batch(target: Explainable, layer: nn.Module | None, images: list[Image.Image], methods, classes_wanted):
    transform = network_transform(target.preprocessing)
    batch = torch.stack([transform(image) for image in images])
    with _gradients_on(target.network):
        with torch.no_grad():
            probabilities = torch.softmax(target.network(batch) / target.temperature, dim=1)
        targets = probabilities.argmax(1) if classes_wanted is None else torch.as_tensor(classes_wanted)
        maps = {}
        if "gradcam" in methods:
            maps["gradcam"] = gradcam_maps(target.network, layer, batch, targets)
        if "saliency" in methods:
            maps["saliency"] = saliency_maps(target.network, batch, targets)
    return probabilities, targets, maps


def _methods(method: str) -> tuple[str, ...]:
    if method == "both":
        return METHODS
    if method not in METHODS:
        raise ConfigError("method", f"{method!r}: choose from {', '.join(EXPLAIN_CHOICES)}")
    return (method,)


def explain(model_or_classifier, images, method: str = "gradcam", targets: list[int] | None = None,
            batch_size: int = 16, progress: bool = False) -> list[Explanation]:
    """Heat maps for photos (paths, PIL images or bytes; one or a list), for the predicted class or for
    `targets` (class indices, one per photo). Unusable photos come back with `error` set, in order."""
    target = _as_explainable(model_or_classifier)
    methods = _methods(method)
    items = list(images) if isinstance(images, (list, tuple)) else [images]
    if targets is not None and len(targets) != len(items):
        raise ValueError(f"{len(targets)} targets for {len(items)} images")
    layer = target.gradcam_layer() if "gradcam" in methods else None
    results: list[Explanation] = []
    bar = progress_bar(len(items), "explaining", "img", enabled=progress)
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        loaded, positions, chunk_results = [], [], []
        for item in chunk:
            try:
                source, image = _load(item, target.preprocessing)
            except ImageError as error:
                chunk_results.append(Explanation(error.path, None, None, 0.0, error=error.reason))
                continue
            positions.append(len(chunk_results))
            loaded.append(image)
            chunk_results.append(Explanation(source, network_view(image, target.preprocessing), None, 0.0))
        if loaded:
            wanted = None if targets is None else [
                targets[start + i] for i in range(len(chunk)) if chunk_results[i].error is None
            ]
            probabilities, chosen, maps = _explain_batch(target, layer, loaded, methods, wanted)
            answers = target.answers.predict(loaded) if target.answers is not None else [None] * len(loaded)
            for n, position in enumerate(positions):
                result = chunk_results[position]
                result.prediction = answers[n]
                result.class_index = int(chosen[n])
                result.label = target.classes[result.class_index]
                result.confidence = float(probabilities[n, result.class_index])
                result.heatmaps = {name: maps[name][n] for name in methods}
                result.gradcam_of = target.gradcam_of
        results.extend(chunk_results)
        bar.update(len(chunk))
    bar.close()
    return results


# ---- pictures ------------------------------------------------------------------------------------
def overlay_heatmap(image: Image.Image, heat: np.ndarray, method: str = "gradcam") -> Image.Image:
    """Grad-CAM as a translucent jet map over the whole photo; saliency only where it is strong."""
    from matplotlib import colormaps
    from scipy.ndimage import gaussian_filter  # here, not at the top: every `zoolens` command imports this module

    if heat.shape != (image.height, image.width):
        heat = np.asarray(Image.fromarray(heat).resize(image.size, Image.Resampling.BILINEAR))
    photo = np.asarray(image.convert("RGB"), dtype=np.float32) / 255
    if method == "saliency":
        # Raw input gradients are pixel-sized specks; a slight blur makes the regions readable.
        heat = gaussian_filter(heat, sigma=1.5)
        heat = heat / max(float(heat.max()), 1e-8)
        colour = colormaps["hot"](heat)[..., :3]
        alpha = np.clip(heat * 1.5, 0, 0.85)[..., None]
    else:
        colour = colormaps["jet"](heat)[..., :3]
        alpha = 0.45
    blended = photo * (1 - alpha) + colour * alpha
    return Image.fromarray(np.clip(blended * 255, 0, 255).astype(np.uint8))


@plain_text
def save_explanation_figure(explanation: Explanation, path: Path) -> Path:
    """The photo as the network saw it beside one overlay per method; the answer in the title."""
    from zoolens.plotting import plt, save_figure

    methods = list(explanation.heatmaps)
    figure, axes = plt.subplots(1, 1 + len(methods), figsize=(3.4 * (1 + len(methods)), 3.9), squeeze=False)
    panels = [(explanation.image, "photo (network's view)")]
    panels += [(explanation.overlay(name), METHOD_TITLES[name]) for name in methods]
    for axis, (picture, caption) in zip(axes[0], panels):
        axis.imshow(picture)
        axis.set_title(caption, fontsize=10)
        axis.axis("off")
    shown_name = Path(explanation.source).name.encode("utf-8", "backslashreplace").decode("utf-8")  # non-UTF-8 names
    figure.suptitle(f"{shown_name}: {explanation.title}", fontsize=12)
    return save_figure(figure, path)


def figure_name(source: str, method: str, taken: set[str]) -> str:
    """`<photo stem>_<method>.png`, numbered when two photos share a stem."""
    stem = Path(source).stem if not source.startswith("<") else "image"
    name, n = f"{stem}_{method}.png", 2
    while name in taken:
        name, n = f"{stem}-{n}_{method}.png", n + 1
    taken.add(name)
    return name


def write_explanations(explanations: list[Explanation], out: str | Path, method: str) -> list[Path | None]:
    """One PNG per usable photo in `out`; None where the photo was unusable."""
    out = output_folder(out)
    taken: set[str] = set()
    return [
        None if e.error else e.save_figure(out / figure_name(e.source, method, taken)) for e in explanations
    ]


def heat_share(heat: np.ndarray, box: tuple[float, float, float, float]) -> tuple[float, float]:
    """(share of the map's mass inside `box`, the box's share of the area) for a box given as
    fractions (left, top, right, bottom): a uniform map gives equal numbers, an attentive one more mass."""
    height, width = heat.shape
    left, top, right, bottom = (round(box[0] * width), round(box[1] * height), round(box[2] * width), round(box[3] * height))
    total = float(heat.sum())
    inside = float(heat[top:bottom, left:right].sum())
    area = (right - left) * (bottom - top) / (width * height)
    return (inside / total if total > 0 else 0.0), area
